"""DPO console: statutory justifications (consent), console sessions, review claims.

Revision ID: 0005_dpo_console
Revises: 0004_gateway_inbound
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0005_dpo_console"
down_revision = "0004_gateway_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "statutory_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("legal_basis", sa.String(64), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("justification_sha256", sa.String(64), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statutory_claims")),
        sa.UniqueConstraint("audit_seq", name=op.f("uq_statutory_claims_audit_seq")),
    )
    op.create_index("ix_statutory_claims_message", "statutory_claims", ["message_id", "sender"])
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(
        op.f("ix_console_sessions_principal"), "console_sessions", ["principal"]
    )
    op.create_table(
        "console_review_claims",
        sa.Column("reviewed_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
        sa.Column("review_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("reviewed_seq", name=op.f("pk_console_review_claims")),
    )


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("console_review_claims")
    op.drop_index(op.f("ix_console_sessions_principal"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index("ix_statutory_claims_message", table_name="statutory_claims")
    op.drop_table("statutory_claims")
