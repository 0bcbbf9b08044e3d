"""The inbound path's transactional outbox: messages the gate released, until confirmed.

Revision ID: 0007_publications
Revises: 0006_code_widths
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0007_publications"
down_revision = "0006_code_widths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``routing_publications``."""
    op.create_table(
        "routing_publications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_publications")),
    )
    op.create_index("ix_routing_publications_message", "routing_publications",
                    ["sender", "message_id"])
    op.create_index("ix_routing_publications_pending", "routing_publications",
                    ["published_at", "id"])
    op.create_index("ix_routing_publications_delivery", "routing_publications",
                    ["delivery_id", "published_at"])


def downgrade() -> None:
    """Drop ``routing_publications``."""
    op.drop_table("routing_publications")
