"""Routing's tables: deliveries (idempotency), referrals and their status, the pull outbox.

- ``routing_deliveries``: one row per message per recipient, keyed by the delivery id. A row in
  state ``delivered`` is the idempotency record: a redelivered broker message whose delivery id is
  already delivered is acknowledged without delivering again. For the pull outbox the outbox row
  and the ``delivered`` state are written in one transaction.
- ``routing_referrals`` / ``routing_referral_status``: a referral's lifecycle as the status
  updates that answered it reported it, and when an answer is due (closed loop).
- ``routing_outbox``: messages waiting for a pull agency; the body is dropped when acknowledged.
- ``routing_measures``: dated measures of delivered support plans, for the follow-up of those
  past their due date (metadata only).

No payload is kept except the rendered body in the outbox until the agency fetched it.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casebridge.canonical_model import (
    MessageType,
    Outcome,
    Purpose,
    ReferralStatus,
    WithholdReason,
)
from casebridge.codes import DeadReason, DeliveryState, ReferralEffect, Responsibility
from casebridge.db import Base, UtcDateTime, code_column


def delivery_id(sender: str, message_id: str, recipient: str) -> str:
    """The stable id of one message for one recipient (idempotency key, dead-letter id)."""
    digest = hashlib.sha256(f"{sender}\x1f{message_id}\x1f{recipient}".encode()).hexdigest()
    return f"d-{digest[:24]}"


class DeliveryRow(Base):
    """One message for one recipient and what became of it."""

    __tablename__ = "routing_deliveries"
    __table_args__ = (
        Index("ix_routing_deliveries_message", "message_id", "sender"),
        Index("ix_routing_deliveries_state", "state", "recipient"),
    )

    delivery_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str] = code_column(MessageType, minimum=32)
    state: Mapped[str] = code_column(DeliveryState)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: reason code of a block or dead letter, e.g. ``withdrawn``, ``retries_exhausted``
    reason: Mapped[str | None] = code_column(DeadReason, WithholdReason, Outcome, minimum=64)
    #: metadata only: HTTP status, the recipient's answer (truncated), never payload
    detail: Mapped[str | None] = mapped_column(Text)


class ReferralRow(Base):
    """A referral sent through casebridge and where it stands."""

    __tablename__ = "routing_referrals"
    __table_args__ = (Index("ix_routing_referrals_open", "status", "due_at"),)

    referral_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[str] = mapped_column(Text)  # JSON list of the recipients it went to
    purpose: Mapped[str] = code_column(Purpose, minimum=32)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    response_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = code_column(ReferralStatus)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReferralStatusRow(Base):
    """One status change of a referral, in the order casebridge received them."""

    __tablename__ = "routing_referral_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(
        ForeignKey("routing_referrals.referral_id"), index=True
    )
    status: Mapped[str] = code_column(ReferralStatus)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    reported_by: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(128))
    #: applied | ignored (a move the lifecycle forbids, e.g. backwards; kept for the record)
    effect: Mapped[str] = code_column(ReferralEffect)


class OutboxRow(Base):
    """A rendered message waiting for a pull agency."""

    __tablename__ = "routing_outbox"
    __table_args__ = (Index("ix_routing_outbox_pending", "agency", "acked_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    message_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str] = code_column(MessageType, minimum=32)
    media_type: Mapped[str] = mapped_column(String(128))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MeasureRow(Base):
    """A dated measure of a support plan that casebridge delivered (follow-up, Wiedervorlage).

    Metadata only: which plan message, its position and goal number there, who follows it up
    and by when -- never the measure's text or the free-text name of whoever is responsible.
    A later plan of the same agency for the same client replaces the earlier one's rows.
    """

    __tablename__ = "routing_measures"
    __table_args__ = (
        Index("ix_routing_measures_due", "due"),
        Index("ix_routing_measures_plan", "owner", "client_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the agency whose plan it is (the sender of the plan message)
    owner: Mapped[str] = mapped_column(String(64))
    #: SHA-256 of the casebridge client id (or of the message id if the client is unresolved)
    client_key: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(128))
    plan_created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: JSON list of the agencies the plan was delivered to
    recipients: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    goal: Mapped[int | None] = mapped_column(Integer)
    #: agency (an agency of the plan is responsible) | client | other
    responsible_role: Mapped[str] = code_column(Responsibility)
    responsible_agency: Mapped[str | None] = mapped_column(String(64))
    due: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PublicationRow(Base):
    """A gate-released message waiting to be published to its recipient's queue (the
    transactional outbox of the inbound path).

    Written only in the transaction of the message's inbound decision and audit entries (see
    :meth:`casebridge.routing.pipeline.Router.route`), so a row exists exactly when the gate
    released the envelope; :class:`casebridge.routing.relay.Relay` publishes it, and marks it
    published (dropping the body) only after the broker confirmed it.
    """

    __tablename__ = "routing_publications"
    __table_args__ = (
        Index("ix_routing_publications_message", "sender", "message_id"),
        Index("ix_routing_publications_pending", "published_at", "id"),
        Index("ix_routing_publications_delivery", "delivery_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40))
    sender: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(128))
    recipient: Mapped[str] = mapped_column(String(64))
    #: the minimised envelope (canonical JSON) until published, then NULL
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[str] = mapped_column(Text)  # JSON object of the broker message's headers
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: publishes tried that the broker did not confirm
    failures: Mapped[int] = mapped_column(Integer, default=0)
