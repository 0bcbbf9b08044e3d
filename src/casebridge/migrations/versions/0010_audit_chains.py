"""Audit chains: the trail becomes K hash chains plus checkpoints binding their heads.

Revision ID: 0010_audit_chains
Revises: 0009_data_subjects
Create Date: 2026-12-06

The existing single chain becomes chain 0 unchanged: its entries keep their seq as
``chain_seq`` and their hashes (computed without the chain fields), and the head records how far
that legacy segment goes (``legacy_end``), so ``verify`` checks them exactly as before. Nothing
is rehashed: the chain is never rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_audit_chains"
down_revision = "0009_data_subjects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add chain columns, turn head row 1 into chain 0's head, create the global sequence."""
    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(sa.Column("chain", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE audit_entries SET chain = 0, chain_seq = seq")
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column("chain", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("chain_seq", existing_type=sa.BigInteger(), nullable=False)
        batch.create_index("ux_audit_entries_chain", ["chain", "chain_seq"], unique=True)
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(
            sa.Column("legacy_end", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute("UPDATE audit_head SET id = 0, legacy_end = seq WHERE id = 1")
    if op.get_bind().dialect.name == "postgresql":
        top = op.get_bind().execute(sa.text("SELECT coalesce(max(seq), 0) FROM audit_entries"))
        start = int(top.scalar_one()) + 1
        op.execute(sa.schema.CreateSequence(sa.Sequence("audit_entry_seq", start=start)))


def downgrade() -> None:
    """Back to one chain: only possible while every entry is in chain 0's legacy segment."""
    bind = op.get_bind()
    newer = bind.execute(sa.text(
        "SELECT count(*) FROM audit_entries e WHERE e.chain <> 0 OR e.chain_seq > "
        "(SELECT legacy_end FROM audit_head WHERE id = 0)"
    )).scalar_one()
    if newer:
        raise RuntimeError(
            f"{newer} audit entries were written in chained form; a single-chain store cannot "
            "hold them (restore a backup instead)"
        )
    if bind.dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence("audit_entry_seq")))
    op.execute("DELETE FROM audit_head WHERE id <> 0")
    op.execute("UPDATE audit_head SET id = 1 WHERE id = 0")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("legacy_end")
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_index("ux_audit_entries_chain")
        batch.drop_column("chain_seq")
        batch.drop_column("chain")
