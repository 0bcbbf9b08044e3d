"""The Art. 15 access report: one function over the audit trail, every view renders its result.

:func:`access_report` answers "which of my data went where" for any person casebridge knows as a
client — the client a transfer was about, and every other person whose data it carried
(household members, guardians, the child of a notification, entrusters), found through the
subject references of the audit entries (:mod:`casebridge.consent.subjects`). The command line,
the API (JSON and the printable page) and the console all call it; none computes its own.

A *transfer* is one message for one recipient. It is decided on arrival and again at delivery
(rule 6): the report names it once, with what finally reached the recipient. A block anywhere
means nothing arrived — a copy permitted on arrival and blocked at delivery after a withdrawal
is "not transferred (blocked at delivery: withdrawn)", never released. For a person other than
the client, only the categories that concerned them count: a household member's data went only
if ``household`` was released.

Entries written before the subject index (no ``details.subjects``) still count for their
client; the report lists them with the persons that were not indexed then, by the categories
they carried (``household``: members and guardians; ``entrusted``: the entruster;
``child_protection``: the child).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from casebridge.consent.audit import AuditEntry, AuditTrail
from casebridge.consent.store import AuditEntryRow, ClientRow
from casebridge.consent.subjects import CLIENT, SubjectIndex
from casebridge.db import Database
from casebridge.errors import NotFound

#: Transfer states, as the report names them.
TRANSFERRED, PARTIAL, NOT_TRANSFERRED = "transferred", "partial", "not_transferred"
#: Persons an entry written before the subject index could have carried, by category.
UNINDEXED_BY_CATEGORY = {
    "household": ("household_member", "guardian"),
    "child_protection": ("child",),
    "entrusted": ("entruster",),
}
REPORT_KIND = "report_accessed"


@dataclass(frozen=True, slots=True)
class Withheld:
    """A category of the person's data held back, and why."""

    category: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReportTransfer:
    """One transfer concerning the person, with what finally reached the recipient."""

    at: str  # its first decision
    message_id: str | None
    sender: str | None
    recipient: str | None
    purpose: str | None
    #: How the person was concerned: client, guardian, household_member, child, entruster.
    roles: list[str]
    state: str  # transferred, partial, not_transferred
    #: The person's categories that reached the recipient (empty if not transferred).
    released: list[str]
    withheld: list[Withheld]
    #: Where a block stopped it (inbound, delivery, replay) and the nearest reason; None if not.
    blocked_at: str | None
    blocked_reason: str | None
    consents: list[str]
    legal_basis: str | None
    #: False: recorded before the subject index; only the client is known for it.
    indexed: bool
    #: For an entry recorded before the index: the kinds of persons it may have carried.
    not_indexed: list[str]
    seqs: list[int]


@dataclass(frozen=True, slots=True)
class AccessReport:
    """What went where about one person (Art. 15 GDPR), from the audit trail."""

    client_id: str
    generated_at: str
    chain_head_seq: int
    chain_head_hash: str
    #: The person's pseudonymous references (seen in other clients' files, confirmed links).
    references: list[str]
    transfers: list[ReportTransfer] = field(default_factory=list)

    @property
    def sent(self) -> list[ReportTransfer]:
        """Transfers that released some of the person's data."""
        return [t for t in self.transfers if t.state != NOT_TRANSFERRED]

    @property
    def not_sent(self) -> list[ReportTransfer]:
        """Transfers that released none of it."""
        return [t for t in self.transfers if t.state == NOT_TRANSFERRED]

    def as_json(self) -> dict[str, Any]:
        """The report as JSON (the API's and the command line's form)."""
        return asdict(self)


def client_is_known(db: Database, client_id: str) -> bool:
    """Whether the registry or the audit trail knows ``client_id``."""
    with db.session() as session:
        if session.get(ClientRow, client_id) is not None:
            return True
        hit = select(AuditEntryRow.seq).where(AuditEntryRow.client_id == client_id).limit(1)
        return session.scalar(hit) is not None


def access_report(db: Database, client_id: str) -> AccessReport:
    """The access report of ``client_id``; NotFound if casebridge does not know the client."""
    if not client_is_known(db, client_id):
        raise NotFound(f"client '{client_id}' is not known to casebridge")
    trail = AuditTrail(db)
    head_seq, head_hash = trail.head()
    references = SubjectIndex(db).references_of(client_id)
    mine = {client_id, *references}
    grouped: dict[tuple[str | None, str | None, str | None], list[AuditEntry]] = {}
    for entry in _entries_about(db, client_id, references, head_seq):
        if entry.kind != "decision" or entry.stage == "dry_run":
            continue
        if _concern(entry, client_id, mine) is None:
            continue  # a reference's text matched inside something else: not this person
        grouped.setdefault((entry.sender, entry.message_id, entry.recipient), []).append(entry)
    transfers = [_transfer(decisions, client_id, mine) for decisions in grouped.values()]
    transfers.sort(key=lambda t: t.seqs[0])
    return AccessReport(
        client_id=client_id, generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        chain_head_seq=head_seq, chain_head_hash=head_hash, references=references,
        transfers=transfers,
    )


def _entries_about(
    db: Database, client_id: str, references: Iterable[str], head_seq: int
) -> Iterator[AuditEntry]:
    # The client's own entries come through the client_id index. A person's entries as another
    # client's household member or guardian are found by their reference in the canonical JSON
    # of ``details`` (no spaces: '"ref":"s-…"'), which a text match finds exactly.
    E = AuditEntryRow
    mentions = [E.details.contains(f'"ref":"{ref}"', autoescape=True)
                for ref in (client_id, *references)]
    yield from AuditTrail(db).select_entries(
        E.seq <= head_seq,
        or_(E.client_id == client_id, and_(E.kind == "decision", or_(*mentions))),
    )


def _concern(
    entry: AuditEntry, client_id: str, mine: set[str]
) -> tuple[set[str], set[str] | None] | None:
    """(roles, categories) of the person in ``entry`` (categories None: every one), or None."""
    subjects = entry.details.get("subjects")
    roles: set[str] = set()
    categories: set[str] = set()
    found = False
    if isinstance(subjects, list):
        for s in subjects:
            if isinstance(s, dict) and s.get("ref") in mine:
                found = True
                roles.update(str(r) for r in s.get("roles", []))
                categories.update(str(c) for c in s.get("categories", []))
    if entry.client_id == client_id:
        return roles | {CLIENT}, None
    return (roles, categories) if found else None


def _transfer(decisions: list[AuditEntry], client_id: str, mine: set[str]) -> ReportTransfer:
    first, last = decisions[0], decisions[-1]
    roles: set[str] = set()
    categories: set[str] | None = set()
    for d in decisions:
        concern = _concern(d, client_id, mine)
        assert concern is not None
        roles |= concern[0]
        if concern[1] is None:
            categories = None
        elif categories is not None:
            categories |= concern[1]

    def wanted(category: str) -> bool:
        return categories is None or category in categories

    block = next((d for d in decisions if d.outcome == "block"), None)
    withheld: dict[str, str] = {}
    for d in decisions:
        for category, reason in d.withheld:
            if wanted(category):
                withheld.setdefault(category, reason)
    released = [] if block is not None else [c for c in last.released if wanted(c)]
    reasons = [r for c, r in block.withheld if wanted(c)] if block is not None else []
    if block is not None and not reasons:
        reasons = [r for _, r in block.withheld]  # the block applies to all it carried
    withheld_list = [Withheld(c, r) for c, r in sorted(withheld.items()) if c not in released]
    state = (NOT_TRANSFERRED if not released
             else PARTIAL if withheld_list else TRANSFERRED)
    indexed = all("subjects" in d.details for d in decisions)
    carried = {c for d in decisions for c in (*d.released, *(w[0] for w in d.withheld))}
    not_indexed = [] if indexed else sorted(
        {kind for category, kinds in UNINDEXED_BY_CATEGORY.items() if category in carried
         for kind in kinds})
    return ReportTransfer(
        at=first.at, message_id=first.message_id, sender=first.sender,
        recipient=first.recipient, purpose=first.purpose, roles=sorted(roles), state=state,
        released=released, withheld=withheld_list,
        blocked_at=block.stage if block is not None else None,
        blocked_reason=reasons[0] if reasons else None,
        consents=sorted({c for d in decisions for c in d.consents}) if released else [],
        legal_basis=next((d.legal_basis for d in reversed(decisions) if d.legal_basis), None)
        if released else None,
        indexed=indexed, not_indexed=not_indexed, seqs=[d.seq for d in decisions],
    )


def record_access(
    db: Database, report: AccessReport, *, by: str, via: str, fmt: str
) -> AuditEntry:
    """Append that ``by`` produced the report (access to a report is itself audited)."""
    return AuditTrail(db).append_event(
        REPORT_KIND, at=datetime.now(UTC), stage=via, client_id=report.client_id,
        details={"by": by[:128], "format": fmt, "covers_seq": report.chain_head_seq,
                 "transfers": len(report.transfers)},
    )
