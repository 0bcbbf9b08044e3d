"""Routing: dated measures of delivered support plans (follow-up of measures past due).

Revision ID: 0008_plan_measures
Revises: 0007_publications
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0008_plan_measures"
down_revision = "0007_publications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create routing_measures."""
    op.create_table(
        "routing_measures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("client_key", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("plan_created_at", UtcDateTime(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("goal", sa.Integer(), nullable=True),
        sa.Column("responsible_role", sa.String(16), nullable=False),
        sa.Column("responsible_agency", sa.String(64), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_measures")),
    )
    op.create_index("ix_routing_measures_due", "routing_measures", ["due"])
    op.create_index("ix_routing_measures_plan", "routing_measures", ["owner", "client_key"])


def downgrade() -> None:
    """Drop routing_measures."""
    op.drop_index("ix_routing_measures_plan", table_name="routing_measures")
    op.drop_index("ix_routing_measures_due", table_name="routing_measures")
    op.drop_table("routing_measures")
