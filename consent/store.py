"""The consent store: clients, their identifiers, consents, withdrawals, and the audit tables.

Consents are immutable rows: the directive is kept as canonical JSON (what was recorded, exactly)
with a few indexed columns for look-up. A withdrawal is a new row; nothing is updated or deleted,
so a consent's history can be proven from the store. The decision path needs two indexed look-ups
only: identifiers → client (unique ``(system, value)``) and client → consents (``client_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.orm import Mapped, Session, mapped_column

from casebridge.canonical_model import (
    ConsentDirective,
    ConsentStatus,
    ConsentWithdrawal,
    Outcome,
    Purpose,
)
from casebridge.codes import (
    AuditKind,
    AuditStage,
    DeadReason,
    EventOutcome,
    ReplayResult,
    SubjectRole,
)
from casebridge.db import Base, Database, UtcDateTime, code_column
from casebridge.errors import ConflictError, ConsentImportError, InputError, NotFound, Problem

if TYPE_CHECKING:
    from casebridge.consent.engine import ConsentState

# --- tables -----------------------------------------------------------------------------------


class ClientRow(Base):
    """A canonical client: an id, and the birth date consents recorded (for the minor rule)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ClientIdentifierRow(Base):
    """One agency identifier of a client; an identifier belongs to at most one client."""

    __tablename__ = "client_identifiers"
    __table_args__ = (UniqueConstraint("system", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    system: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: How the link was made: ``consent:<id>`` or ``manual:<who>`` (links are deliberate).
    linked_by: Mapped[str] = mapped_column(String(255))


class ClientNameRow(Base):
    """A normalised name + birth date of a client, only for proposing candidates to a person."""

    __tablename__ = "client_names"
    __table_args__ = (
        UniqueConstraint("client_id", "name_normalised", "birth_date"),
        Index("ix_client_names_lookup", "name_normalised", "birth_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    name_normalised: Mapped[str] = mapped_column(String(255))
    birth_date: Mapped[date | None] = mapped_column(Date)


class ConsentRow(Base):
    """A recorded consent directive (never updated)."""

    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    status: Mapped[str] = code_column(ConsentStatus)
    given_at: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    content_hash: Mapped[str] = mapped_column(String(64))
    directive_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(255))


class WithdrawalRow(Base):
    """The withdrawal of a consent (append-only; at most one per consent)."""

    __tablename__ = "consent_withdrawals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.consent_id"), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    by: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEntryRow(Base):
    """One hash-chained audit entry; columns are exactly what :mod:`.audit` hashes."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_client_id", "client_id", "seq"),
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_message_id", "message_id"),
        Index("ux_audit_entries_chain", "chain", "chain_seq", unique=True),
    )

    #: Global order (what the console, API and reports show); gaps are possible (see .audit).
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The hash chain the entry belongs to and its place there (what ``prev_hash`` links).
    chain: Mapped[int] = mapped_column(Integer)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[str] = mapped_column(String(27))
    at: Mapped[str] = mapped_column(String(27))
    kind: Mapped[str] = code_column(AuditKind, minimum=32)
    stage: Mapped[str | None] = code_column(AuditStage, minimum=32)
    sender: Mapped[str | None] = mapped_column(String(64))
    recipient: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = code_column(Purpose, minimum=32)
    client_id: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(128))
    #: a decision's outcome, or the reason or result of a routing event
    outcome: Mapped[str | None] = code_column(Outcome, DeadReason, ReplayResult, EventOutcome)
    released: Mapped[str] = mapped_column(Text)  # JSON list
    withheld: Mapped[str] = mapped_column(Text)  # JSON list of [category, reason]
    consents: Mapped[str] = mapped_column(Text)  # JSON list
    legal_basis: Mapped[str | None] = mapped_column(String(64))
    review_required: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[str] = mapped_column(Text)  # JSON object of metadata, never payload
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DataSubjectRow(Base):
    """A person whose data a transfer carried, known to casebridge by a pseudonymous reference.

    Household members, guardians, the child of a notification and entrusters appear inside
    another client's file, often without an identifier of their own. The audit entry records
    only ``ref``; this row keeps what lets a person find it again (normalised name, birth date,
    identifiers seen) and, once a case worker confirmed it deliberately, the client it is.
    """

    __tablename__ = "data_subjects"
    __table_args__ = (Index("ix_data_subjects_lookup", "name_normalised", "birth_date"),)

    ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: How the person was first seen: guardian, household_member, child, entruster, client.
    role: Mapped[str] = code_column(SubjectRole, minimum=32)
    #: The client whose file the person was seen in (None: that client was not registered).
    scope_client_id: Mapped[str | None] = mapped_column(String(64))
    seen_by: Mapped[str] = mapped_column(String(64))  # the sending agency
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    name_normalised: Mapped[str | None] = mapped_column(String(255))
    birth_date: Mapped[date | None] = mapped_column(Date)
    #: The confirmed link (never set by matching): the client this person is.
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.client_id"), index=True)
    linked_by: Mapped[str | None] = mapped_column(String(255))
    linked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DataSubjectIdentifierRow(Base):
    """An agency identifier seen with a data subject (for look-up by identifier)."""

    __tablename__ = "data_subject_identifiers"
    __table_args__ = (
        UniqueConstraint("ref", "system", "value"),
        Index("ix_data_subject_identifiers_lookup", "system", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(ForeignKey("data_subjects.ref"), index=True)
    system: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class RegistrySecretRow(Base):
    """Secrets of the registry (the key of the pseudonymous references), made by the migration."""

    __tablename__ = "registry_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class AuditHeadRow(Base):
    """The head of one chain (``id`` is the chain number): last ``chain_seq`` and hash. Its row
    is the lock that chain's appenders queue on, and it lets ``verify`` notice entries cut off
    the end of the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    #: Entries 1..legacy_end of this chain were hashed before chains existed (revision 0010),
    #: without the chain fields; only chain 0 has any.
    legacy_end: Mapped[int] = mapped_column(BigInteger, server_default="0")


#: Global entry numbers on PostgreSQL (SQLite appenders hold the database's write lock and take
#: max(seq) + 1).
AUDIT_SEQUENCE = DbSequence("audit_entry_seq", metadata=Base.metadata)


# --- values -----------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Sorted, compact, UTF-8 JSON: equal content always gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def directive_json(directive: ConsentDirective) -> str:
    """The canonical JSON form a directive is stored in."""
    return canonical_json(directive.model_dump(mode="json"))


@lru_cache(maxsize=65536)
def parse_directive(text: str) -> ConsentDirective:
    # Stored directives never change, so parsing each text once per process is safe and keeps
    # the decision path free of repeated validation.
    return ConsentDirective.model_validate_json(text, strict=False)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A stored consent with its client and (if any) withdrawal."""

    directive: ConsentDirective
    client_id: str
    recorded_at: datetime
    source: str | None
    withdrawal: ConsentWithdrawal | None

    @property
    def consent_id(self) -> str:
        """The consent id."""
        return self.directive.consent_id

    def state_at(self, now: datetime) -> str:
        """Where the consent stands at ``now``: withdrawn, its status if not active,
        not_yet_valid, expired, or active (what the API and the CLI show)."""
        d = self.directive
        if self.withdrawal is not None and self.withdrawal.at <= now:
            return "withdrawn"
        if str(d.status) != "active":
            return str(d.status)
        if now < d.effective_from:
            return "not_yet_valid"
        if d.valid_until is not None and now > d.valid_until:
            return "expired"
        return "active"

    def history(self) -> list[dict[str, str]]:
        """What happened to this consent, oldest first: recorded, then withdrawn."""
        events = [
            {"event": "given", "at": self.directive.given_at.isoformat()},
            {"event": "recorded", "at": self.recorded_at.isoformat()},
        ]
        if self.withdrawal is not None:
            events.append(
                {"event": "withdrawn", "at": self.withdrawal.at.isoformat(),
                 "by": self.withdrawal.by}
            )
        return events


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What recording one directive did."""

    consent_id: str
    client_id: str
    created: bool  # False: the identical consent was already on record


# --- the store --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class ConsentStore:
    """Record, withdraw, list and load consents (one transaction per call)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, directive: ConsentDirective, *, source: str | None = None) -> RecordResult:
        """Record one directive and link its client's identifiers (idempotent for equal content)."""
        with self.db.session() as session:
            return record_directive(session, directive, source=source)

    def record_many(
        self, directives: Sequence[ConsentDirective], *, source: str | None = None
    ) -> list[RecordResult]:
        """Record several directives in one transaction: all or none."""
        with self.db.session() as session:
            return [record_directive(session, d, source=source) for d in directives]

    def import_fhir(self, raw: bytes, *, source: str) -> list[RecordResult]:
        """Import a FHIR Consent or collection Bundle; the whole file or nothing."""
        from casebridge.consent.fhir import parse_consents

        return self.record_many(parse_consents(raw, source=source), source=source[-255:])

    def import_fhir_files(self, files: Sequence[tuple[str, bytes]]) -> list[RecordResult]:
        """Import several files (each a FHIR Consent or collection Bundle) in one transaction.

        Every consent of every file is recorded, or none: ConsentImportError lists each refused
        file's problems as ``FILE:ELEMENT: what is wrong`` (a consent id used in two files is a
        problem too), so one run reports everything that needs fixing.
        """
        from casebridge.consent.fhir import parse_consents

        parsed: list[tuple[str, ConsentDirective]] = []
        problems: list[Problem] = []
        refused: list[str] = []
        seen: dict[str, str] = {}
        for source, raw in files:
            try:
                directives = parse_consents(raw, source=source)
            except InputError as exc:
                refused.append(source)
                problems.extend(
                    [Problem(f"{source}:{p.location}", p.message) for p in exc.problems]
                    or [Problem("", exc.message)]
                )
                continue
            for directive in directives:
                other = seen.setdefault(directive.consent_id, source)
                if other != source:
                    refused.append(source)
                    problems.append(Problem(f"{source}:Consent[{directive.consent_id}].id",
                                            f"the id is also used in {other}"))
                parsed.append((source, directive))
        if problems:
            files_refused = len(dict.fromkeys(refused))
            raise ConsentImportError(
                f"consent import refused, nothing imported: {files_refused} of {len(files)} "
                f"file(s) with problems",
                problems=problems,
            )
        with self.db.session() as session:
            return [record_directive(session, d, source=source[-255:]) for source, d in parsed]

    def withdraw(
        self, consent_id: str, *, at: datetime | None = None, by: str
    ) -> ConsentWithdrawal:
        """Withdraw a consent at ``at`` (default now); a second withdrawal is a ConflictError."""
        at = at or _now()
        if at.tzinfo is None:
            raise InputError("--at: the time needs a UTC offset (e.g. 2026-11-20T10:00:00+01:00)")
        try:
            withdrawal = ConsentWithdrawal(consent_id=consent_id, at=at, by=by)
        except ValidationError:
            raise InputError("withdrawal: 'by' must name who withdrew the consent") from None
        with self.db.session(immediate=True) as session:
            if session.get(ConsentRow, consent_id) is None:
                raise NotFound(f"consent '{consent_id}' is not on record")
            done = select(WithdrawalRow.id).where(WithdrawalRow.consent_id == consent_id)
            if session.scalar(done) is not None:
                raise ConflictError(f"consent '{consent_id}' is already withdrawn")
            session.add(
                WithdrawalRow(consent_id=consent_id, at=at, by=withdrawal.by, recorded_at=_now())
            )
        return withdrawal

    def get(self, consent_id: str) -> ConsentRecord | None:
        """One consent with its withdrawal, or None."""
        with self.db.session() as session:
            rows = _load(session, [ConsentRow.consent_id == consent_id])
        return rows[0] if rows else None

    def require(self, consent_id: str) -> ConsentRecord:
        """One consent; NotFound if it is not on record."""
        record = self.get(consent_id)
        if record is None:
            raise NotFound(f"consent '{consent_id}' is not on record")
        return record

    def list_for_client(self, client_id: str) -> list[ConsentRecord]:
        """Every consent of a client (withdrawn ones included), oldest first."""
        with self.db.session() as session:
            return _load(session, [ConsentRow.client_id == client_id])

    def states_for_client(self, session: Session, client_id: str) -> list[ConsentState]:
        """The engine's view of a client's consents (one indexed query)."""
        return states_for_client(session, client_id)


def _load(session: Session, where: Iterable[Any]) -> list[ConsentRecord]:
    stmt = (
        select(ConsentRow, WithdrawalRow)
        .outerjoin(WithdrawalRow, WithdrawalRow.consent_id == ConsentRow.consent_id)
        .where(*where)
        .order_by(ConsentRow.recorded_at, ConsentRow.consent_id)
    )
    records = []
    for row, wd in session.execute(stmt):
        directive = parse_directive(row.directive_json)
        withdrawal = (
            None if wd is None else ConsentWithdrawal(consent_id=row.consent_id, at=wd.at, by=wd.by)
        )
        records.append(
            ConsentRecord(directive, row.client_id, row.recorded_at, row.source, withdrawal)
        )
    return records


def states_for_client(session: Session, client_id: str) -> list[ConsentState]:
    """Every consent of ``client_id`` with its withdrawal time, as the engine takes them."""
    from casebridge.consent.engine import ConsentState

    stmt = (
        select(ConsentRow.directive_json, WithdrawalRow.at)
        .outerjoin(WithdrawalRow, WithdrawalRow.consent_id == ConsentRow.consent_id)
        .where(ConsentRow.client_id == client_id)
    )
    return [
        ConsentState(parse_directive(text), withdrawn_at=at)
        for text, at in session.execute(stmt)
    ]


def record_directive(
    session: Session, directive: ConsentDirective, *, source: str | None = None
) -> RecordResult:
    """Record ``directive`` in ``session``: idempotent for identical content, else ConflictError."""
    from casebridge.consent.registry import link_for_consent

    text = directive_json(directive)
    digest = hashlib.sha256(text.encode()).hexdigest()
    existing = session.get(ConsentRow, directive.consent_id)
    if existing is not None:
        if existing.content_hash != digest:
            raise ConflictError(
                f"consent '{directive.consent_id}' is already on record with different content; "
                "a change is a withdrawal plus a new consent with a new id"
            )
        return RecordResult(directive.consent_id, existing.client_id, created=False)
    client_id = link_for_consent(session, directive)
    session.add(
        ConsentRow(
            consent_id=directive.consent_id,
            client_id=client_id,
            status=str(directive.status),
            given_at=directive.given_at,
            valid_from=directive.effective_from,
            valid_until=directive.valid_until,
            recorded_at=_now(),
            content_hash=digest,
            directive_json=text,
            source=source,
        )
    )
    session.flush()
    return RecordResult(directive.consent_id, client_id, created=True)
