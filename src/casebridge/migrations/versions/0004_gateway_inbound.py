"""Gateway inbound idempotency: one row per message id a sender posted, with its answer.

Revision ID: 0004_gateway_inbound
Revises: 0003_routing
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0004_gateway_inbound"
down_revision = "0003_routing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the inbound message table of the gateway."""
    op.create_table(
        "gateway_inbound",
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("envelope_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("sender", "message_id", name=op.f("pk_gateway_inbound")),
    )


def downgrade() -> None:
    """Drop the inbound message table."""
    op.drop_table("gateway_inbound")
