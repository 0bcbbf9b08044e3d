"""Routing: deliveries (idempotency), referrals and their status, the pull outbox.

Revision ID: 0003_routing
Revises: 0002_gateway_auth
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0003_routing"
down_revision = "0002_gateway_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create routing's tables."""
    op.create_table(
        "routing_deliveries",
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_routing_deliveries")),
    )
    op.create_index(
        "ix_routing_deliveries_message", "routing_deliveries", ["message_id", "sender"]
    )
    op.create_index("ix_routing_deliveries_state", "routing_deliveries", ["state", "recipient"])
    op.create_table(
        "routing_referrals",
        sa.Column("referral_id", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("response_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answered_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_routing_referrals")),
    )
    op.create_index("ix_routing_referrals_open", "routing_referrals", ["status", "due_at"])
    op.create_table(
        "routing_referral_status",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("effect", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["routing_referrals.referral_id"],
            name=op.f("fk_routing_referral_status_referral_id_routing_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_referral_status")),
    )
    op.create_index(
        op.f("ix_routing_referral_status_referral_id"), "routing_referral_status", ["referral_id"]
    )
    op.create_table(
        "routing_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(32), nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("acked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_outbox")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_routing_outbox_delivery_id")),
    )
    op.create_index(
        "ix_routing_outbox_pending", "routing_outbox", ["agency", "acked_at", "id"]
    )


def downgrade() -> None:
    """Drop routing's tables."""
    for table in (
        "routing_outbox", "routing_referral_status", "routing_referrals", "routing_deliveries",
    ):
        op.drop_table(table)
