"""What the DPO pages show, read from the audit trail (and nothing else for the DPO's pages).

A *transfer* is one message for one recipient. The flow diagram counts each transfer once, in the
period of its first decision, by its fate over all its decisions (a message permitted on arrival
and blocked at delivery after a withdrawal counts as blocked); the lists show every decision
entry. Dry runs are never counted. A statutory override is reviewed once per transfer: its first
override decision is the one the review names.

Reviews of statutory overrides and console verifications are audit events appended to the chain
(``dpo_review``, ``chain_verified``): the chain stays the one record, and nothing is edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casebridge.canonical_model import Outcome, Purpose, WithholdReason
from casebridge.consent.audit import AuditEntry, AuditTrail, entry_from_row
from casebridge.consent.claims import StatutoryClaimRow, claims_for
from casebridge.consent.engine import LOCAL_ZONE
from casebridge.consent.store import AuditEntryRow
from casebridge.db import Database, utc_text
from casebridge.errors import ConflictError
from casebridge.gateway.console.i18n import WordedInputError, WordedNotFound
from casebridge.gateway.console.personal import personal_data_in
from casebridge.gateway.console.store import ReviewClaimRow

E = AuditEntryRow
OUTCOMES = tuple(str(o) for o in Outcome)
PURPOSES = tuple(str(p) for p in Purpose)
REASONS = tuple(str(r) for r in WithholdReason)
REVIEW_KIND = "dpo_review"
VERIFIED_KIND = "chain_verified"
MAX_COMMENT = 500
PAGE = 50


# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Calendar days in the agencies' zone, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        """The first instant of the period."""
        return datetime.combine(self.first, time(), LOCAL_ZONE)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), LOCAL_ZONE)

    def query(self) -> dict[str, str]:
        """The period as query parameters."""
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def presets(today: date | None = None) -> dict[str, Period]:
    """The period presets offered beside every period form: this week (from Monday), the last
    30 days (today included)."""
    today = today or datetime.now(LOCAL_ZONE).date()
    return {"this_week": Period(today - timedelta(days=today.weekday()), today),
            "last_30": Period(today - timedelta(days=29), today)}


def parse_period(first: str | None, last: str | None, *, today: date | None = None) -> Period:
    """A period from ``YYYY-MM-DD`` texts; default the last 30 days. InputError if malformed."""
    today = today or datetime.now(LOCAL_ZONE).date()
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=30)
    except ValueError:
        raise WordedInputError("error.period.format") from None
    if start > end:
        raise WordedInputError("error.period.order")
    if (end - start).days > 3660:
        raise WordedInputError("error.period.long")
    return Period(start, end)


def _in(period: Period) -> list[Any]:
    return [E.at >= utc_text(period.since), E.at < utc_text(period.until)]


_DECISION = [E.kind == "decision", or_(E.stage.is_(None), E.stage != "dry_run")]


# --- flows ------------------------------------------------------------------------------------


@dataclass
class Edge:
    """Transfers from one sender to one recipient, by outcome of their latest decision."""

    sender: str
    recipient: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def total(self) -> int:
        """All transfers on this edge."""
        return sum(self.counts.values())


#: Which decision names a transfer's fate when it was decided more than once (on arrival, at
#: delivery, on replay): a block anywhere means nothing arrived; a partial on arrival stays partial
#: although the delivery check of the minimised copy permits everything that is left in it.
_FATE = case(
    (E.outcome == "block", 4), (E.outcome == "override", 3), (E.outcome == "partial", 2),
    else_=1,
)
_FATE_NAMES = {4: "block", 3: "override", 2: "partial", 1: "permit"}


def flows(session: Session, period: Period) -> list[Edge]:
    """Every sender → recipient edge with transfers first decided in ``period``, by fate."""
    transfers = (
        select(E.sender.label("sender"), E.recipient.label("recipient"),
               func.max(_FATE).label("fate"))
        .where(*_DECISION)
        .group_by(E.sender, E.message_id, E.recipient)
        .having(func.min(E.at) >= utc_text(period.since), func.min(E.at) < utc_text(period.until))
        .subquery()
    )
    stmt = (
        select(transfers.c.sender, transfers.c.recipient, transfers.c.fate, func.count())
        .group_by(transfers.c.sender, transfers.c.recipient, transfers.c.fate)
    )
    edges: dict[tuple[str, str], Edge] = {}
    for sender, recipient, fate, count in session.execute(stmt):
        key = (sender or "?", recipient or "?")
        edge = edges.setdefault(key, Edge(*key))
        edge.counts[_FATE_NAMES[int(fate)]] += int(count)
    return sorted(edges.values(), key=lambda e: (e.sender, e.recipient))


# --- entry lists ------------------------------------------------------------------------------


def entry(session: Session, seq: int) -> AuditEntry:
    """One entry; NotFound if there is none."""
    row = session.get(AuditEntryRow, seq)
    if row is None:
        raise WordedNotFound("error.no_entry", seq=seq)
    return entry_from_row(row)


@dataclass(frozen=True, slots=True)
class EntryPage:
    """Entries newest first, and where the next page starts (None: no more)."""

    entries: list[AuditEntry]
    before: int | None


def _page(session: Session, where: list[Any], before: int | None) -> EntryPage:
    if before is not None:
        where = [*where, E.seq < before]
    rows = list(session.scalars(select(E).where(*where).order_by(E.seq.desc()).limit(PAGE + 1)))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return EntryPage([entry_from_row(r) for r in rows], rows[-1].seq if more and rows else None)


def edge_decisions(
    session: Session, sender: str, recipient: str, period: Period, before: int | None = None
) -> EntryPage:
    """Every decision from ``sender`` to ``recipient`` in ``period`` (all stages)."""
    where = [*_DECISION, *_in(period), E.sender == sender, E.recipient == recipient]
    return _page(session, where, before)


#: the outcomes the withheld list shows and filters by
WITHHELD_OUTCOMES = ("block", "partial", "override")


@dataclass(frozen=True, slots=True)
class WithheldFilter:
    """Filters of the blocked-partial-statutory list (None: any)."""

    agency: str | None = None
    purpose: str | None = None
    reason: str | None = None
    outcome: str | None = None


def check_filter(agency: str | None, purpose: str | None, reason: str | None,
                 outcome: str | None = None) -> WithheldFilter:
    """Validated filters; the error names the filter that is not one of its values."""
    if purpose and purpose not in PURPOSES:
        raise WordedInputError("error.choice", name="purpose")
    if reason and reason not in REASONS:
        raise WordedInputError("error.choice", name="reason")
    if outcome and outcome not in WITHHELD_OUTCOMES:
        raise WordedInputError("error.choice", name="outcome")
    if agency and len(agency) > 64:
        raise WordedInputError("error.too_long", name="agency", limit=64)
    return WithheldFilter(agency or None, purpose or None, reason or None, outcome or None)


def withheld(
    session: Session, period: Period, filters: WithheldFilter, before: int | None = None
) -> EntryPage:
    """Blocked, partial and statutory decisions in ``period`` matching ``filters``, newest
    first."""
    outcomes = (filters.outcome,) if filters.outcome else WITHHELD_OUTCOMES
    where = [*_DECISION, *_in(period), E.outcome.in_(outcomes)]
    if filters.agency:
        where.append(or_(E.sender == filters.agency, E.recipient == filters.agency))
    if filters.purpose:
        where.append(E.purpose == filters.purpose)
    if filters.reason:
        # withheld is canonical JSON: [["category","reason"],…]; reasons are a closed vocabulary
        where.append(E.withheld.contains(f',"{filters.reason}"]', autoescape=True))
    return _page(session, where, before)


# --- incidents: forged senders, refusals at the door, dead letters -----------------------------

#: the incident kinds the filter offers; every kind starting with ``dead_letter`` (a dead letter,
#: its replay) and a replay that was skipped are listed under "dead_letter"
INCIDENT_KINDS = ("forged_sender", "message_refused", "dead_letter")
_DEAD_LETTER_KINDS = ("replay_skipped",)


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Filters of the incidents list (None: any)."""

    kind: str | None = None
    agency: str | None = None


def check_incident_filter(kind: str | None, agency: str | None) -> IncidentFilter:
    """Validated incident filters."""
    if kind and kind not in INCIDENT_KINDS:
        raise WordedInputError("error.choice", name="incidents.kind")
    if agency and len(agency) > 64:
        raise WordedInputError("error.too_long", name="agency", limit=64)
    return IncidentFilter(kind or None, agency or None)


def _kind_is(kind: str) -> Any:
    if kind == "dead_letter":
        return or_(E.kind.like("dead\\_letter%", escape="\\"), E.kind.in_(_DEAD_LETTER_KINDS))
    return E.kind == kind


def incidents(
    session: Session, period: Period, filters: IncidentFilter, before: int | None = None
) -> EntryPage:
    """Forged-sender attempts, refused messages and dead-letter events in ``period``."""
    kinds = (filters.kind,) if filters.kind else INCIDENT_KINDS
    where = [or_(*(_kind_is(k) for k in kinds)), *_in(period)]
    if filters.agency:
        # a forged sender's caller is in details (canonical JSON: compact, sorted keys)
        caller = json.dumps({"caller": filters.agency}, separators=(",", ":"))[1:-1]
        where.append(or_(E.sender == filters.agency, E.recipient == filters.agency,
                         E.details.contains(caller, autoescape=True)))
    return _page(session, where, before)


# --- statutory overrides and their review -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    """A transfer's first override decision, its justification and (once reviewed) the review.

    ``later`` are the seqs of the same transfer's further override decisions (at delivery).
    """

    entry: AuditEntry
    claim: StatutoryClaimRow | None
    review: AuditEntry | None
    later: tuple[int, ...] = ()


def _reviews(session: Session, message_ids: set[str]) -> dict[int, AuditEntry]:
    if not message_ids:
        return {}
    rows = session.scalars(
        select(E).where(E.kind == REVIEW_KIND, E.message_id.in_(sorted(message_ids)))
        .order_by(E.seq)
    )
    found: dict[int, AuditEntry] = {}
    for row in rows:
        event = entry_from_row(row)
        reviewed = event.details.get("reviewed_seq")
        if isinstance(reviewed, int) and reviewed not in found:
            found[reviewed] = event
    return found


def _grouped(db: Database, where: list[Any]) -> list[Override]:
    with db.session() as session:
        rows = session.scalars(
            select(E).where(*_DECISION, E.outcome == "override", *where).order_by(E.seq)
        )
        firsts: dict[tuple[str | None, str | None, str | None], tuple[AuditEntry, list[int]]] = {}
        for row in rows:
            key = (row.sender, row.message_id, row.recipient)
            if key in firsts:
                firsts[key][1].append(row.seq)
            else:
                firsts[key] = (entry_from_row(row), [])
        reviews = _reviews(session, {k[1] for k in firsts if k[1]})
    claims = claims_for(db, [e.seq for e, _ in firsts.values()])
    found = [Override(e, claims.get(e.seq), reviews.get(e.seq), tuple(later))
             for e, later in firsts.values()]
    return sorted(found, key=lambda o: -o.entry.seq)


def overrides(db: Database) -> list[Override]:
    """Every transfer with a statutory override, newest first, with justification and review."""
    return _grouped(db, [])


def override(db: Database, seq: int) -> Override:
    """The override transfer whose first override decision is ``seq``; NotFound otherwise."""
    with db.session() as session:
        row = session.get(AuditEntryRow, seq)
        if row is None or row.kind != "decision" or row.outcome != "override":
            raise WordedNotFound("error.not_override", seq=seq)
        where = [E.sender == row.sender, E.message_id == row.message_id,
                 E.recipient == row.recipient]
    for found in _grouped(db, where):
        if found.entry.seq == seq:
            return found
    raise WordedNotFound("error.not_first_override", seq=seq)


class PersonalDataInComment(WordedInputError):
    """A review comment naming the person concerned; ``found`` says what, never the value."""

    def __init__(self, found: list[str]) -> None:
        super().__init__("overrides.comment_personal", found=", ".join(found))
        self.found = found


def review_override(db: Database, seq: int, *, reviewer: str, comment: str) -> AuditEntry:
    """Append the DPO's review of override ``seq``; ConflictError if it was reviewed already.

    The claim row's primary key decides between two racing reviews before anything is appended;
    the review itself is an audit event, so it can never be edited afterwards.
    """
    comment = comment.strip()
    if not 0 < len(comment) <= MAX_COMMENT:
        raise WordedInputError("overrides.comment_required")
    target = override(db, seq)
    # the chain is never edited, so personal data must be kept out before the append
    found = personal_data_in(db, comment, target.entry.client_id)
    if found:
        raise PersonalDataInComment(found)
    if target.review is not None:
        raise ConflictError(f"audit entry {seq} has already been reviewed")
    now = datetime.now(UTC)
    # immediate: SQLite takes the write lock at BEGIN, so racing writers wait instead of failing
    try:
        with db.session(immediate=True) as session:
            session.add(ReviewClaimRow(reviewed_seq=seq, reviewer=reviewer, claimed_at=now))
    except IntegrityError:
        raise ConflictError(f"audit entry {seq} has already been reviewed") from None
    e = target.entry
    details: dict[str, str | int | bool | None] = {
        "reviewed_seq": seq, "reviewer": reviewer, "comment": comment,
        "legal_basis": e.legal_basis,
        "justification_sha256": target.claim.justification_sha256 if target.claim else None,
    }
    try:
        event = AuditTrail(db).append_event(
            REVIEW_KIND, at=now, stage="dpo", sender=e.sender, recipient=e.recipient,
            purpose=e.purpose, client_id=e.client_id, message_id=e.message_id, details=details,
        )
    except Exception:
        with db.session(immediate=True) as session:  # the review did not happen: free the claim
            claim = session.get(ReviewClaimRow, seq)
            if claim is not None:
                session.delete(claim)
        raise
    with db.session(immediate=True) as session:
        claim = session.get(ReviewClaimRow, seq)
        if claim is not None:
            claim.review_seq = event.seq
    with db.session() as session:
        return entry(session, event.seq)


# --- verification results ---------------------------------------------------------------------


def last_verification(session: Session) -> AuditEntry | None:
    """The newest ``chain_verified`` event, or None."""
    row = session.scalar(
        select(E).where(E.kind == VERIFIED_KIND).order_by(E.seq.desc()).limit(1)
    )
    return None if row is None else entry_from_row(row)


def active_locks(session: Session, now: datetime, *, days: int = 2) -> list[AuditEntry]:
    """``login_locked`` events whose lock is still in force, newest first.

    Locks last at most the throttle's window; looking back ``days`` bounds the scan.
    """
    rows = session.scalars(
        select(E).where(E.kind == "login_locked", E.at >= utc_text(now - timedelta(days=days)))
        .order_by(E.seq.desc()).limit(500)
    ).all()
    entries = [entry_from_row(row) for row in rows]
    return [e for e in entries if _lock_until(e) > now]


def _lock_until(entry: AuditEntry) -> datetime:
    try:
        return datetime.fromisoformat(str(entry.details.get("until")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)

