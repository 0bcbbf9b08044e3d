"""Code columns fit their whole vocabulary: ``audit_entries.outcome`` also holds routing events'
reasons (``retries_exhausted`` has 17 characters), so it is widened from 16 to 32.

The width is the one :func:`casebridge.db.code_column` derives from the vocabularies the column
holds (see :mod:`casebridge.codes`); the schema-drift test keeps model and migrations equal.

Revision ID: 0006_code_widths
Revises: 0005_dpo_console
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_code_widths"
down_revision = "0005_dpo_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen the audit outcome (PostgreSQL enforces it; SQLite keeps the declared type only)."""
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column("outcome", type_=sa.String(32), existing_type=sa.String(16),
                           existing_nullable=True)


def downgrade() -> None:
    """Narrow it again (fails on PostgreSQL if a longer code was stored, as it must)."""
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column("outcome", type_=sa.String(16), existing_type=sa.String(32),
                           existing_nullable=True)
