"""The console's own tables: server-side sessions and the one-review-per-override guard.

Sessions live in the database, not in a signed cookie: the cookie carries only a random token
(stored as its SHA-256), so logging out or disabling a principal ends a session at once, and
every gateway process behind a load balancer sees the same sessions without a shared secret.

A DPO review is recorded in the audit trail (the source of truth); :class:`ReviewClaimRow` only
makes "reviewed once" hold when two reviews race, through its primary key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from casebridge.db import Base, UtcDateTime


class ConsoleSessionRow(Base):
    """A logged-in console session."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReviewClaimRow(Base):
    """An override entry somebody reviewed (or is reviewing right now)."""

    __tablename__ = "console_review_claims"

    reviewed_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reviewer: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: seq of the ``dpo_review`` audit event, once appended
    review_seq: Mapped[int | None] = mapped_column(BigInteger)
