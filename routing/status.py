"""Referral status and the closed loop: where a referral stands, and which are overdue.

A referral is recorded when it is delivered to a recipient (requested at the time it was queued);
status updates (FHIR Task, job centre Rueckmeldung) that name it in ``correlation_id`` advance it,
when they are delivered to the referrer, through
:meth:`casebridge.canonical_model.Referral.advance`, which enforces the lifecycle. A move the
lifecycle forbids (backwards, after an end) is kept in the history as ``ignored``, so nothing a
recipient reported is silently dropped. A referral with no answer at all within its route's
response time -- counted in working days, Monday to Friday -- is overdue (Wiedervorlage).
Public holidays are not counted out: the deadline is at most a few days early, never late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from casebridge.canonical_model import (
    MessageType,
    Referral,
    ReferralStatus,
    StatusChange,
    TransferEnvelope,
)
from casebridge.db import Database
from casebridge.errors import NotFound
from casebridge.logging import get_logger
from casebridge.routing.store import ReferralRow, ReferralStatusRow

log = get_logger(__name__)


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` working days (Mon–Fri), same time of day."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


@dataclass(frozen=True, slots=True)
class ReferralView:
    """A referral as ``casebridge status`` shows it."""

    referral: Referral
    due_at: datetime
    response_days: int
    answered_at: datetime | None
    ignored: list[StatusChange]

    def overdue(self, now: datetime) -> bool:
        """No answer yet and the response time has passed."""
        return self.answered_at is None and now > self.due_at

    def as_report(self, now: datetime) -> dict[str, object]:
        """A JSON-ready summary (metadata only)."""
        r = self.referral
        return {
            "referral_id": r.message_id,
            "sender": r.sender,
            "recipients": list(r.recipients),
            "purpose": str(r.purpose),
            "requested_at": r.requested_at.isoformat(),
            "status": str(r.status),
            "due_at": self.due_at.isoformat(),
            "response_days": self.response_days,
            "overdue": self.overdue(now),
            "history": [
                {"status": str(c.status), "at": c.at.isoformat(), "reported_by": c.reported_by,
                 "message_id": c.message_id}
                for c in r.history
            ],
            "ignored": [
                {"status": str(c.status), "at": c.at.isoformat(), "reported_by": c.reported_by,
                 "message_id": c.message_id}
                for c in self.ignored
            ],
        }


def record_referral(
    session: Session, envelope: TransferEnvelope, recipients: list[str], *,
    at: datetime, response_days: int,
) -> bool:
    """Start tracking a referral delivered to ``recipients``; False if already tracked (then the
    recipients are added)."""
    if envelope.message_type != MessageType.REFERRAL or not recipients:
        return False
    existing = session.get(ReferralRow, envelope.message_id)
    if existing is not None:
        known = set(json.loads(existing.recipients))
        if existing.sender == envelope.sender and not set(recipients) <= known:
            existing.recipients = json.dumps(sorted(known | set(recipients)))
        return False
    session.add(
        ReferralRow(
            referral_id=envelope.message_id, sender=envelope.sender,
            recipients=json.dumps(sorted(recipients)), purpose=str(envelope.purpose),
            requested_at=at, due_at=add_working_days(at, response_days),
            response_days=response_days, status=str(ReferralStatus.REQUESTED),
            answered_at=None, updated_at=at,
        )
    )
    return True


def _referral(row: ReferralRow, changes: list[ReferralStatusRow]) -> ReferralView:
    referral = Referral(
        message_id=row.referral_id, sender=row.sender, recipients=json.loads(row.recipients),
        purpose=row.purpose, requested_at=row.requested_at,  # type: ignore[arg-type]
    )
    ignored = []
    for change in changes:
        step = StatusChange(
            status=change.status, at=change.at,  # type: ignore[arg-type]
            reported_by=change.reported_by, message_id=change.message_id,
        )
        if change.effect == "applied":
            referral = referral.advance(step)
        else:
            ignored.append(step)
    return ReferralView(referral, row.due_at, row.response_days, row.answered_at, ignored)


def apply_status_update(session: Session, envelope: TransferEnvelope, *, at: datetime) -> str:
    """Correlate a status update with its referral and advance it.

    Returns ``applied``, ``ignored`` (lifecycle forbids the move), ``uncorrelated`` (no such
    referral) or ``not_a_recipient`` (the reporter was not sent that referral: not applied).
    """
    if envelope.status is None or envelope.correlation_id is None:
        return "uncorrelated"
    row = session.get(ReferralRow, envelope.correlation_id, with_for_update=True)
    if row is None:
        return "uncorrelated"
    if envelope.sender not in json.loads(row.recipients):
        log.warning("status update from an agency the referral was not sent to",
                    referral_id=row.referral_id, sender=envelope.sender)
        return "not_a_recipient"
    changes = _changes(session, row.referral_id)
    view = _referral(row, changes)
    new = StatusChange(
        status=envelope.status.status, at=at, reported_by=envelope.sender,
        message_id=envelope.message_id,
    )
    try:
        advanced = view.referral.advance(new)
        effect = "applied"
    except ValueError:
        effect = "ignored"
    session.add(
        ReferralStatusRow(
            referral_id=row.referral_id, status=str(new.status), at=at,
            reported_by=new.reported_by, message_id=new.message_id, effect=effect,
        )
    )
    if effect == "applied":
        row.status = str(advanced.status)
        row.answered_at = row.answered_at or at
    row.updated_at = at
    return effect


def _changes(session: Session, referral_id: str) -> list[ReferralStatusRow]:
    return list(
        session.scalars(
            select(ReferralStatusRow)
            .where(ReferralStatusRow.referral_id == referral_id)
            .order_by(ReferralStatusRow.id)
        )
    )


class ReferralStatusService:
    """Read referrals: one by id, and the overdue ones (for ``casebridge status``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, referral_id: str) -> ReferralView | None:
        """The referral with this id (the referral message's id), or None."""
        with self.db.session() as session:
            row = session.get(ReferralRow, referral_id)
            if row is None:
                return None
            return _referral(row, _changes(session, referral_id))

    def require(self, referral_id: str) -> ReferralView:
        """The referral; NotFound if casebridge never queued it."""
        view = self.get(referral_id)
        if view is None:
            raise NotFound(f"referral '{referral_id}' is not known to casebridge")
        return view

    def overdue(
        self, *, now: datetime | None = None, sender: str | None = None
    ) -> list[ReferralView]:
        """Referrals without any answer whose response time has passed, oldest first."""
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            stmt = (
                select(ReferralRow)
                .where(ReferralRow.answered_at.is_(None), ReferralRow.due_at < now)
                .order_by(ReferralRow.due_at)
            )
            if sender is not None:
                stmt = stmt.where(ReferralRow.sender == sender)
            return [_referral(row, []) for row in session.scalars(stmt)]
