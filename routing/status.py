"""Referral status and the closed loop: where a referral stands, and which are overdue.

A referral is recorded when it is delivered to a recipient (requested at the time it was queued);
status updates (FHIR Task, job centre Rueckmeldung) that name it in ``correlation_id`` advance it,
when they are delivered to the referrer, through
:meth:`casebridge.canonical_model.Referral.advance`, which enforces the lifecycle. A move the
lifecycle forbids (backwards, after an end) is kept in the history as ``ignored``, so nothing a
recipient reported is silently dropped. A referral with no answer at all within its route's
response time -- counted in working days, Monday to Friday -- is overdue (Wiedervorlage).
Public holidays are not counted out: the deadline is at most a few days early, never late.

Support plans are followed up the same way: when a plan with dated measures is delivered, its
measures are recorded (:func:`record_plan`, metadata only) and a measure whose due date has
passed is listed next to the overdue referrals for the agency responsible for it. Who that is
comes from the measure's ``responsible``: an agency id, or a word naming the kind of one of the
plan's parties (``Jobcenter``, ``Sozialamt``, ``Jugendamt``, ``Träger``); a measure of the client
(``Kunde``, ``Klientin``, ``Eltern`` …) or of anyone else is followed up by the agency whose plan
it is. A newer plan of the same agency for the same client replaces the earlier one's measures
(a measure done is dropped from the plan or gets a new date there).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from casebridge.canonical_model import (
    AgencyKind,
    Measure,
    MessageType,
    Referral,
    ReferralStatus,
    StatusChange,
    SupportPlanData,
    TransferEnvelope,
)
from casebridge.db import Database
from casebridge.errors import NotFound
from casebridge.logging import get_logger
from casebridge.routing.routes import RouteTable
from casebridge.routing.store import MeasureRow, ReferralRow, ReferralStatusRow

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


def upsert(session: Session, model: type[Any]) -> Any:
    """``INSERT … ON CONFLICT`` for ``model``'s table on the session's backend (a Core statement:
    executed with a list of rows it is one set-based statement, not a read-then-write)."""
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def record_referrals(
    session: Session, delivered: Sequence[tuple[TransferEnvelope, str, datetime, int]],
) -> set[str]:
    """:func:`record_referral` for many ``(envelope, recipient, queued at, response days)`` at
    once; returns the ids that were new.

    One ``INSERT … ON CONFLICT DO NOTHING`` for all of them, so two workers delivering copies
    of one referral cannot both insert it; only referrals already tracked are read (locked) to
    add their new recipients.
    """
    wanted: dict[str, tuple[TransferEnvelope, set[str], datetime, int]] = {}
    for envelope, recipient, at, days in delivered:
        if envelope.message_type != MessageType.REFERRAL:
            continue
        first = wanted.setdefault(envelope.message_id, (envelope, set(), at, days))
        if first[0].sender == envelope.sender:
            first[1].add(recipient)
    if not wanted:
        return set()
    rows = [{
        "referral_id": rid, "sender": env.sender, "recipients": json.dumps(sorted(recipients)),
        "purpose": str(env.purpose), "requested_at": at,
        "due_at": add_working_days(at, days), "response_days": days,
        "status": str(ReferralStatus.REQUESTED), "answered_at": None, "updated_at": at,
    } for rid, (env, recipients, at, days) in wanted.items()]
    stmt = upsert(session, ReferralRow).on_conflict_do_nothing(
        index_elements=["referral_id"]).returning(ReferralRow.__table__.c.referral_id)
    inserted = set(session.execute(stmt, rows).scalars())
    known = sorted(set(wanted) - inserted)
    if known:
        existing = session.execute(
            select(ReferralRow.referral_id, ReferralRow.sender, ReferralRow.recipients)
            .where(ReferralRow.referral_id.in_(known)).with_for_update()
        ).all()
        for rid, sender, text_ in existing:
            env, recipients, _, _ = wanted[rid]
            have = set(json.loads(text_))
            if sender == env.sender and not recipients <= have:
                session.execute(update(ReferralRow).where(ReferralRow.referral_id == rid)
                                .values(recipients=json.dumps(sorted(have | recipients))))
    return inserted


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


#: Words for an agency kind in a measure's ``responsible`` (casefolded).
_KIND_WORDS = {
    "jobcenter": AgencyKind.JOBCENTER, "job centre": AgencyKind.JOBCENTER,
    "sozialamt": AgencyKind.SOCIAL_OFFICE, "jugendamt": AgencyKind.YOUTH_OFFICE,
    "träger": AgencyKind.PROVIDER, "traeger": AgencyKind.PROVIDER,
    "leistungserbringer": AgencyKind.PROVIDER, "beratungsstelle": AgencyKind.PROVIDER,
    "provider": AgencyKind.PROVIDER,
}
_CLIENT_WORDS = frozenset({
    "kunde", "kundin", "klient", "klientin", "client", "leistungsberechtigte",
    "leistungsberechtigter", "familie", "eltern", "mutter", "vater", "kind", "jugendlicher",
    "jugendliche", "sorgeberechtigte", "sorgeberechtigter",
})


def responsible_for(
    measure: Measure, envelope: TransferEnvelope, routes: RouteTable
) -> tuple[str, str | None]:
    """(role, agency) of a measure: ``agency`` with its id, else ``client`` or ``other``."""
    text = (measure.responsible or "").strip()
    if text in routes.agencies:
        return "agency", text
    word = text.casefold()
    kind = _KIND_WORDS.get(word)
    if kind is not None:
        parties = [a for a in (envelope.sender, *envelope.recipients)
                   if a in routes.agencies and routes.agencies[a].kind == kind]
        if len(parties) == 1:
            return "agency", parties[0]
    return ("client" if word in _CLIENT_WORDS else "other"), None


def _plan_lock_key(owner: str, key: str) -> int:
    digest = hashlib.sha256(f"routing_measures\x1f{owner}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_plans(session: Session, plans: Sequence[tuple[str, str]]) -> None:
    """Serialise the read-then-replace of these plans' measures across workers until commit:
    two deliveries of plans for the same client would otherwise delete the rows the other one
    is updating (StaleDataError) or both insert theirs. All in one statement, in one order
    (the array's), so two batches never wait for each other crosswise. SQLite writers are
    serialised already."""
    if session.get_bind().dialect.name != "postgresql" or not plans:
        return
    keys = sorted({_plan_lock_key(owner, key) for owner, key in plans})
    session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) "
                         "AS k"), {"keys": keys})


@dataclass(slots=True)
class _PlanState:
    """The measures of one plan owner and client as the batch leaves them."""

    rows: list[dict[str, Any]]  # existing rows have an "id"; new ones not
    replaced: bool = False  # the stored rows are to be deleted


def record_plan(
    session: Session, envelope: TransferEnvelope, recipient: str, *, client_id: str | None,
    routes: RouteTable, at: datetime,
) -> int:
    """Record the dated measures of a plan delivered to ``recipient``; returns how many rows
    the plan has (0: no dated measure, or an older plan than the one recorded)."""
    return record_plans(session, [(envelope, recipient, client_id)], routes=routes, at=at)[0]


def record_plans(
    session: Session, delivered: Sequence[tuple[TransferEnvelope, str, str | None]], *,
    routes: RouteTable, at: datetime,
) -> list[int]:
    """:func:`record_plan` for ``(envelope, recipient, client id)`` delivered in this order,
    with set-based statements: one lock statement, one read of the measures stored for these
    plans' owners and clients, then at most one delete, one insert and one update for all."""
    counts = [0] * len(delivered)
    todo: list[tuple[int, tuple[str, str], TransferEnvelope, str,
                     list[tuple[int, Measure]]]] = []
    for i, (envelope, recipient, client_id) in enumerate(delivered):
        measures = [m for part in envelope.parts if isinstance(part.content, SupportPlanData)
                    for m in part.content.plan.measures]
        dated = [(n, m) for n, m in enumerate(measures, start=1) if m.due is not None]
        if dated:
            key = hashlib.sha256(
                (client_id or f"message:{envelope.message_id}").encode()).hexdigest()
            todo.append((i, (envelope.sender, key), envelope, recipient, dated))
    if not todo:
        return counts
    pairs = sorted({pair for _, pair, _, _, _ in todo})
    _lock_plans(session, pairs)
    states: dict[tuple[str, str], _PlanState] = {pair: _PlanState([]) for pair in pairs}
    stored = session.execute(
        select(_MEASURES.c.id, _MEASURES.c.owner, _MEASURES.c.client_key,
               _MEASURES.c.message_id, _MEASURES.c.plan_created_at, _MEASURES.c.recipients)
        .where(tuple_(_MEASURES.c.owner, _MEASURES.c.client_key).in_(pairs))
        .order_by(_MEASURES.c.id))
    for rid, owner, key, message_id, created, recipients in stored:
        states[(owner, key)].rows.append({
            "id": rid, "message_id": message_id, "plan_created_at": created,
            "recipients": set(json.loads(recipients)), "changed": False})
    for i, pair, envelope, recipient, dated in todo:
        state = states[pair]
        rows = state.rows
        if rows and rows[0]["message_id"] == envelope.message_id:
            for row in rows:
                if recipient not in row["recipients"]:
                    row["recipients"].add(recipient)
                    row["changed"] = True
            counts[i] = len(rows)
            continue
        if rows and rows[0]["plan_created_at"] > envelope.created_at:
            continue  # an older plan delivered late does not replace the newer one
        state.replaced = state.replaced or any("id" in row for row in rows)
        state.rows = []
        for position, measure in dated:
            role, agency = responsible_for(measure, envelope, routes)
            state.rows.append({
                "owner": pair[0], "client_key": pair[1], "message_id": envelope.message_id,
                "plan_created_at": envelope.created_at, "recipients": {recipient},
                "position": position, "goal": measure.goal, "responsible_role": role,
                "responsible_agency": agency, "due": measure.due, "recorded_at": at})
        counts[i] = len(dated)
    gone = [pair for pair, state in states.items() if state.replaced]
    if gone:
        session.execute(delete(_MEASURES).where(
            tuple_(_MEASURES.c.owner, _MEASURES.c.client_key).in_(gone)))
    new = [{**row, "recipients": json.dumps(sorted(row["recipients"]))}
           for state in states.values() for row in state.rows if "id" not in row]
    if new:
        session.execute(insert(_MEASURES), new)
    changed = [{"rid": row["id"], "new_recipients": json.dumps(sorted(row["recipients"]))}
               for state in states.values() for row in state.rows
               if "id" in row and row["changed"]]
    if changed:
        session.execute(update(_MEASURES).where(_MEASURES.c.id == bindparam("rid"))
                        .values(recipients=bindparam("new_recipients")), changed)
    return counts


_MEASURES = cast(Table, MeasureRow.__table__)


@dataclass(frozen=True, slots=True)
class MeasureView:
    """A measure of a delivered plan past its due date (metadata only)."""

    plan_message_id: str
    owner: str
    recipients: list[str]
    position: int
    goal: int | None
    responsible_role: str
    responsible_agency: str | None
    due: date

    @property
    def follow_up_by(self) -> str:
        """The responsible agency, or the plan's owner for the client's and others' measures."""
        return self.responsible_agency or self.owner

    def as_report(self, today: date) -> dict[str, object]:
        """JSON-ready (no text of the measure: the agencies have the plan)."""
        return {
            "plan_message_id": self.plan_message_id, "owner": self.owner,
            "recipients": list(self.recipients), "measure": self.position, "goal": self.goal,
            "responsible_role": self.responsible_role,
            "responsible_agency": self.responsible_agency, "follow_up_by": self.follow_up_by,
            "due": self.due.isoformat(), "days_overdue": (today - self.due).days,
        }


def _measure(row: MeasureRow) -> MeasureView:
    return MeasureView(row.message_id, row.owner, json.loads(row.recipients), row.position,
                       row.goal, row.responsible_role, row.responsible_agency, row.due)


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

    def overdue_measures(
        self, *, today: date | None = None, agency: str | None = None
    ) -> list[MeasureView]:
        """Measures past their due date, earliest first; with ``agency``: those it follows up
        (responsible for, or the owner of the plan of a client's or another's measure)."""
        today = today or datetime.now(UTC).date()
        with self.db.session() as session:
            stmt = select(MeasureRow).where(MeasureRow.due < today).order_by(
                MeasureRow.due, MeasureRow.owner, MeasureRow.message_id, MeasureRow.position)
            if agency is not None:
                stmt = stmt.where(or_(
                    MeasureRow.responsible_agency == agency,
                    (MeasureRow.responsible_agency.is_(None)) & (MeasureRow.owner == agency),
                ))
            return [_measure(row) for row in session.scalars(stmt)]
