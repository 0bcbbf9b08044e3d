"""Written justifications of statutory transfers (rule 8), kept for the DPO's review.

An override decision's audit entry records the legal basis but never free text: a justification
describes the client's situation and is personal data, which the append-only chain must not hold.
The text is kept here instead, one row per override entry (keyed by its audit ``seq``), with its
SHA-256 so that the DPO's review event can bind the text it was shown into the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from casebridge.canonical_model import TransferEnvelope
from casebridge.db import Base, Database, UtcDateTime


class StatutoryClaimRow(Base):
    """The justification behind one override decision (one audit entry)."""

    __tablename__ = "statutory_claims"
    __table_args__ = (Index("ix_statutory_claims_message", "message_id", "sender"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    message_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(Text)
    justification_sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


def justification_digest(text: str) -> str:
    """SHA-256 (hex) of a justification's UTF-8 text."""
    return hashlib.sha256(text.encode()).hexdigest()


def record_claims(
    db: Database, envelope: TransferEnvelope, overrides: Iterable[tuple[str, int]]
) -> None:
    """Keep the envelope's justification for each ``(recipient, audit seq)`` of an override."""
    claim = envelope.statutory
    if claim is None:
        return
    now = datetime.now(UTC)
    digest = justification_digest(claim.justification)
    with db.session() as session:
        for recipient, seq in overrides:
            session.add(StatutoryClaimRow(
                audit_seq=seq, message_id=envelope.message_id, sender=envelope.sender,
                recipient=recipient, legal_basis=claim.legal_basis,
                justification=claim.justification, justification_sha256=digest, recorded_at=now,
            ))


def claims_for(db: Database, seqs: Iterable[int]) -> dict[int, StatutoryClaimRow]:
    """The stored claims of the given override entries, by audit seq."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    with db.session() as session:
        rows = session.scalars(
            select(StatutoryClaimRow).where(StatutoryClaimRow.audit_seq.in_(wanted))
        ).all()
        session.expunge_all()
    return {row.audit_seq: row for row in rows}
