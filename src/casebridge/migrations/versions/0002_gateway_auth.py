"""Gateway principals and API keys (hashes only).

Revision ID: 0002_gateway_auth
Revises: 0001_consent_store
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0002_gateway_auth"
down_revision = "0001_consent_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the principal and key tables of the gateway."""
    op.create_table(
        "gateway_principals",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agency", sa.String(64), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("cert_subject", sa.String(512), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_principals")),
        sa.UniqueConstraint("cert_subject", name=op.f("uq_gateway_principals_cert_subject")),
    )
    op.create_table(
        "gateway_api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal"], ["gateway_principals.name"],
            name=op.f("fk_gateway_api_keys_principal_gateway_principals"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_gateway_api_keys")),
    )
    op.create_index(
        op.f("ix_gateway_api_keys_principal"), "gateway_api_keys", ["principal"]
    )


def downgrade() -> None:
    """Drop the gateway's tables."""
    op.drop_index(op.f("ix_gateway_api_keys_principal"), table_name="gateway_api_keys")
    op.drop_table("gateway_api_keys")
    op.drop_table("gateway_principals")
