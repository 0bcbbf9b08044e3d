"""Data subjects: every person whose data a transfer carried, by pseudonymous reference.

Revision ID: 0009_data_subjects
Revises: 0008_plan_measures
Create Date: 2026-12-06

Audit entries written before this revision carry no ``subjects``: they stay as they are (the
chain is never rewritten) and the access report says which persons were not indexed then.
The HMAC key of the references is made here, once per store, so that every process of one
installation derives the same reference for the same person.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from casebridge.db import UtcDateTime

revision = "0009_data_subjects"
down_revision = "0008_plan_measures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the subject tables and the reference key."""
    op.create_table(
        "data_subjects",
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("scope_client_id", sa.String(64), nullable=True),
        sa.Column("seen_by", sa.String(64), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("name_normalised", sa.String(255), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("linked_by", sa.String(255), nullable=True),
        sa.Column("linked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_data_subjects_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_data_subjects")),
    )
    op.create_index(op.f("ix_data_subjects_client_id"), "data_subjects", ["client_id"])
    op.create_index("ix_data_subjects_lookup", "data_subjects", ["name_normalised", "birth_date"])
    op.create_table(
        "data_subject_identifiers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["ref"], ["data_subjects.ref"],
            name=op.f("fk_data_subject_identifiers_ref_data_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_identifiers")),
        sa.UniqueConstraint(
            "ref", "system", "value", name=op.f("uq_data_subject_identifiers_ref_system_value")
        ),
    )
    op.create_index(op.f("ix_data_subject_identifiers_ref"), "data_subject_identifiers", ["ref"])
    op.create_index(
        "ix_data_subject_identifiers_lookup", "data_subject_identifiers", ["system", "value"]
    )
    secrets_table = op.create_table(
        "registry_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_registry_secrets")),
    )
    op.bulk_insert(secrets_table, [{"name": "subject_key", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    """Drop the subject tables (the audit entries keep their references)."""
    op.drop_table("registry_secrets")
    op.drop_index("ix_data_subject_identifiers_lookup", table_name="data_subject_identifiers")
    op.drop_index(op.f("ix_data_subject_identifiers_ref"), table_name="data_subject_identifiers")
    op.drop_table("data_subject_identifiers")
    op.drop_index("ix_data_subjects_lookup", table_name="data_subjects")
    op.drop_index(op.f("ix_data_subjects_client_id"), table_name="data_subjects")
    op.drop_table("data_subjects")
