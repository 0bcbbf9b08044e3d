"""Consent store, client registry and audit trail.

Revision ID: 0001_consent_store
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0001_consent_store"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the consent, registry and audit tables."""
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    op.create_table(
        "client_identifiers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
        sa.Column("linked_by", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"],
            name=op.f("fk_client_identifiers_client_id_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_identifiers")),
        sa.UniqueConstraint("system", "value", name=op.f("uq_client_identifiers_system_value")),
    )
    op.create_index(
        op.f("ix_client_identifiers_client_id"), "client_identifiers", ["client_id"]
    )
    op.create_table(
        "client_names",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name_normalised", sa.String(255), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_client_names_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_names")),
        sa.UniqueConstraint(
            "client_id", "name_normalised", "birth_date",
            name=op.f("uq_client_names_client_id_name_normalised_birth_date"),
        ),
    )
    op.create_index(op.f("ix_client_names_client_id"), "client_names", ["client_id"])
    op.create_index("ix_client_names_lookup", "client_names", ["name_normalised", "birth_date"])
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("given_at", UtcDateTime(), nullable=False),
        sa.Column("valid_from", UtcDateTime(), nullable=False),
        sa.Column("valid_until", UtcDateTime(), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("directive_json", sa.Text(), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_consents_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_client_id"), "consents", ["client_id"])
    op.create_table(
        "consent_withdrawals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.consent_id"],
            name=op.f("fk_consent_withdrawals_consent_id_consents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_withdrawals")),
        sa.UniqueConstraint("consent_id", name=op.f("uq_consent_withdrawals_consent_id")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("sender", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(32), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("released", sa.Text(), nullable=False),
        sa.Column("withheld", sa.Text(), nullable=False),
        sa.Column("consents", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(64), nullable=True),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_client_id", "audit_entries", ["client_id", "seq"])
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_message_id", "audit_entries", ["message_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The chain starts from a fixed genesis hash; the head row exists from the start so
    # appenders always have a row to lock.
    op.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    """Drop everything this revision created."""
    for table in (
        "audit_head", "audit_entries", "consent_withdrawals", "consents", "client_names",
        "client_identifiers", "clients",
    ):
        op.drop_table(table)
