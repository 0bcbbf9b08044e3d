"""The tamper-evident audit trail: every consent decision and gateway event, hash-chained.

An entry records metadata only — times, stage, sender, recipient, purpose, the canonical client
id, categories released and withheld with reasons, consent ids, legal basis, outcome, message id —
never payload and never names. Each entry's ``hash`` is SHA-256 over the canonical JSON of its
fields including ``prev_hash``, the hash of its predecessor (:func:`entry_hash`); hashing and
verification are pure functions over entries, the :class:`AuditTrail` only stores and streams.

Concurrent appenders (threads or processes) serialise on the chain-head row: ``SELECT … FOR
UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite. The head row also lets ``verify`` notice
entries cut off the end of the chain, which the links between entries alone cannot show.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from casebridge.canonical_model import Outcome, TransferEnvelope
from casebridge.consent.claims import justification_digest
from casebridge.consent.decision import Decision, MessageDecisions
from casebridge.consent.store import AuditEntryRow, AuditHeadRow, canonical_json
from casebridge.db import Database, create_db_engine, utc_text
from casebridge.errors import AuditError

GENESIS_HASH = "0" * 64
#: The fields an entry's hash covers, besides ``prev_hash`` (sorted: the serialisation order).
HASHED_FIELDS = (
    "at", "client_id", "consents", "details", "kind", "legal_basis", "message_id", "outcome",
    "purpose", "recipient", "recorded_at", "released", "review_required", "seq", "sender",
    "stage", "withheld",
)
_JSON_FIELDS = frozenset({"consents", "details", "released", "withheld"})
#: Serialisation order: every hashed field plus prev_hash, sorted (canonical JSON key order).
_ORDER = tuple(sorted((*HASHED_FIELDS, "prev_hash")))
_KEY_PREFIXES = tuple(json.dumps(name) + ":" for name in _ORDER)


def _encode_scalar(value: Any) -> str:
    # Same text as json.dumps(value, ensure_ascii=False) for str/int/bool/None, without building
    # an encoder per call (verify runs this for every column of every entry).
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, int):
        return str(value)
    return canonical_json(value)


def _keep(value: Any) -> str:
    return str(value)


# Stored JSON columns already hold canonical JSON, so verify splices them unparsed.
_ROW_ENCODERS = tuple(_keep if n in _JSON_FIELDS else _encode_scalar for n in _ORDER)

#: Stages a decision can be taken at; events may use others (e.g. ``gateway``).
STAGES = ("inbound", "delivery", "replay", "dry_run")


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """What a caller wants recorded; the trail adds seq, recorded_at and the hashes."""

    at: datetime
    kind: str
    stage: str | None = None
    sender: str | None = None
    recipient: str | None = None
    purpose: str | None = None
    client_id: str | None = None
    message_id: str | None = None
    outcome: str | None = None
    released: tuple[str, ...] = ()
    withheld: tuple[tuple[str, str], ...] = ()
    consents: tuple[str, ...] = ()
    legal_basis: str | None = None
    review_required: bool = False
    #: Metadata only. Decisions carry ``subjects`` (see :mod:`casebridge.consent.subjects`):
    #: references and category codes of every person whose data the transfer carried.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored entry of the chain."""

    seq: int
    recorded_at: str
    at: str
    kind: str
    stage: str | None
    sender: str | None
    recipient: str | None
    purpose: str | None
    client_id: str | None
    message_id: str | None
    outcome: str | None
    released: list[str]
    withheld: list[list[str]]
    consents: list[str]
    legal_basis: str | None
    review_required: bool
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def fields(self) -> dict[str, Any]:
        """The hashed fields (without ``prev_hash`` and ``hash``)."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object (for export)."""
        return {**self.fields(), "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of verifying a chain (a broken chain is a result, not an exception)."""

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH


# --- pure functions ---------------------------------------------------------------------------


def _serialise(encoded: Sequence[str]) -> bytes:
    # Equivalent to canonical_json(fields + prev_hash): sorted keys, compact, UTF-8. Built from
    # values already encoded in _ORDER, so verify can splice stored JSON columns unparsed.
    return ("{" + ",".join(map(operator.add, _KEY_PREFIXES, encoded)) + "}").encode()


def _encode_fields(fields: Mapping[str, Any], prev_hash: str) -> list[str]:
    return [
        json.dumps(prev_hash) if name == "prev_hash" else canonical_json(fields[name])
        for name in _ORDER
    ]


def entry_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's hashed fields plus ``prev_hash``."""
    missing = set(HASHED_FIELDS) - set(fields)
    if missing:
        raise ValueError(f"entry fields missing: {', '.join(sorted(missing))}")
    return hashlib.sha256(_serialise(_encode_fields(fields, prev_hash))).hexdigest()


class ChainVerifier:
    """Checks entries fed in ``seq`` order; stops recording at the first break."""

    def __init__(self) -> None:
        self.checked = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        self.broken: tuple[int, str] | None = None

    def feed(self, seq: int, encoded: Sequence[str], stored_hash: str, prev_hash: str) -> bool:
        """Check one entry given its JSON-encoded fields in serialisation order; False once the
        chain is broken."""
        if self.broken is not None:
            return False
        expected = self.last_seq + 1
        if seq != expected:
            what = "missing" if seq > expected else "out of order or duplicated"
            self.broken = (expected, f"entry {expected} is {what} (found seq {seq} next)")
            return False
        if prev_hash != self.last_hash:
            self.broken = (seq, "prev_hash does not match the preceding entry's hash "
                                "(an entry before it was removed, inserted or reordered)")
            return False
        if hashlib.sha256(_serialise(encoded)).hexdigest() != stored_hash:
            self.broken = (seq, "hash does not match the entry's content (altered)")
            return False
        self.checked += 1
        self.last_seq, self.last_hash = seq, stored_hash
        return True

    def feed_entry(self, entry: AuditEntry) -> bool:
        """Check one :class:`AuditEntry`."""
        encoded = _encode_fields(entry.fields(), entry.prev_hash)
        return self.feed(entry.seq, encoded, entry.hash, entry.prev_hash)

    def finish(self, head: tuple[int, str] | None = None) -> VerifyResult:
        """The result; ``head`` (seq, hash) as recorded by appenders catches a cut-off tail."""
        if self.broken is None and head is not None and head != (self.last_seq, self.last_hash):
            head_seq = head[0]
            if head_seq > self.last_seq:
                self.broken = (self.last_seq + 1,
                               f"entries {self.last_seq + 1}..{head_seq} are missing from the end")
            else:
                self.broken = (min(head_seq + 1, self.last_seq),
                               "the chain does not end where the chain head says "
                               "(an entry was appended or changed outside casebridge)")
        if self.broken is not None:
            return VerifyResult(False, self.checked, self.broken[0], self.broken[1],
                                self.last_seq, self.last_hash)
        return VerifyResult(True, self.checked, None, None, self.last_seq, self.last_hash)


def verify_chain(
    entries: Iterable[AuditEntry], *, head: tuple[int, str] | None = None
) -> VerifyResult:
    """Verify a whole chain from seq 1: links, hashes and (if given) the recorded head."""
    verifier = ChainVerifier()
    for entry in entries:
        if not verifier.feed_entry(entry):
            break
    return verifier.finish(head)


def draft_for_decision(
    envelope: TransferEnvelope,
    decision: Decision,
    *,
    stage: str,
    at: datetime,
    client_id: str | None,
    subjects: Sequence[Mapping[str, Any]] | None = None,
) -> AuditDraft:
    """The audit draft of one recipient's decision (metadata only, no payload).

    ``subjects``: every person the envelope carries data of (references, roles, categories);
    None leaves it out, as entries written before the subject index did.
    """
    return AuditDraft(
        at=at,
        kind="decision",
        stage=stage,
        sender=envelope.sender,
        recipient=decision.recipient,
        purpose=str(envelope.purpose),
        client_id=client_id,
        message_id=envelope.message_id,
        outcome=str(decision.outcome),
        released=tuple(sorted(str(c) for c in decision.released)),
        withheld=tuple(sorted((str(w.category), str(w.reason)) for w in decision.withheld)),
        consents=tuple(sorted(decision.consents)),
        legal_basis=decision.legal_basis,
        review_required=decision.review_required,
        # An override binds the justification it relied on into the chain by its hash only:
        # the text is personal data and stays beside the chain (consent.claims).
        details={
            **({"justification_sha256": justification_digest(envelope.statutory.justification)}
               if decision.outcome == Outcome.OVERRIDE and envelope.statutory is not None
               else {}),
            **({} if subjects is None else {"subjects": [dict(s) for s in subjects]}),
        },
    )


# --- storage ----------------------------------------------------------------------------------

# Declarative classes expose __table__ as a FromClause; these are plain Tables (core inserts).
_T = cast(Table, AuditEntryRow.__table__)
_HEAD = cast(Table, AuditHeadRow.__table__)
# Built once: constructing a statement costs about as much as running it on SQLite.
_INSERT_ENTRIES = insert(_T)
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_NAMES = (*_ORDER, "hash")
_COLUMNS = [_T.c[name] for name in _NAMES]
_SEQ = _ORDER.index("seq")
_PREV = _ORDER.index("prev_hash")


def entry_from_row(row: AuditEntryRow) -> AuditEntry:
    """Decode a stored entry loaded through the ORM."""
    return _row_to_entry([getattr(row, name) for name in _NAMES])


def _row_to_entry(row: Sequence[Any]) -> AuditEntry:
    values = dict(zip(_NAMES, row, strict=True))
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    values["review_required"] = bool(values["review_required"])
    return AuditEntry(**values)


class AuditTrail:
    """Append to, stream, verify and report on the audit chain of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self, drafts: Sequence[AuditDraft], *, along: Callable[[Connection], None] | None = None,
    ) -> list[AuditEntry]:
        """Append drafts in one transaction as consecutive entries; returns the stored entries.

        ``along`` runs first in the same transaction: a record that must exist exactly when
        these entries do (the gateway's idempotency claim). If it raises, nothing is appended.
        """
        if not drafts and along is None:
            return []
        recorded_at = utc_text(datetime.now(UTC))
        with self.db.connection(immediate=True) as conn:
            if along is not None:
                along(conn)
                if not drafts:
                    return []
            head = conn.execute(_LOCK_HEAD).one_or_none()
            if head is None:
                raise AuditError("the audit chain head is missing; the store is damaged")
            seq, prev = int(head[0]), str(head[1])
            entries, rows = [], []
            for draft in drafts:
                seq += 1
                fields = _fields_of(draft, seq, recorded_at)
                digest = entry_hash(fields, prev)
                entries.append(AuditEntry(**fields, prev_hash=prev, hash=digest))
                rows.append(_encode_row(fields, prev, digest))
                prev = digest
            conn.execute(_INSERT_ENTRIES, rows)
            conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
        return entries

    def append_decisions(
        self,
        envelope: TransferEnvelope,
        decisions: MessageDecisions,
        *,
        stage: str,
        at: datetime,
        client_id: str | None,
        along: Callable[[Connection], None] | None = None,
        subjects: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[AuditEntry]:
        """One entry per recipient of ``decisions``, appended together (``along``: see
        :meth:`append`; ``subjects``: see :func:`draft_for_decision`)."""
        return self.append([
            draft_for_decision(envelope, d, stage=stage, at=at, client_id=client_id,
                               subjects=subjects)
            for d in decisions.decisions
        ], along=along)

    def append_event(
        self,
        kind: str,
        *,
        at: datetime,
        stage: str | None = None,
        sender: str | None = None,
        recipient: str | None = None,
        purpose: str | None = None,
        client_id: str | None = None,
        message_id: str | None = None,
        outcome: str | None = None,
        details: Mapping[str, str | int | bool | None] | None = None,
    ) -> AuditEntry:
        """Append a non-decision event (e.g. ``forged_sender``, ``dpo_review``) to the chain.

        ``details`` holds metadata only (codes, ids, counts); callers must never put payload or
        names there.
        """
        if kind == "decision":
            raise AuditError("decisions are appended with append_decisions")
        draft = AuditDraft(
            at=at, kind=kind, stage=stage, sender=sender, recipient=recipient, purpose=purpose,
            client_id=client_id, message_id=message_id, outcome=outcome,
            details=dict(details or {}),
        )
        return self.append([draft])[0]

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry as appenders recorded it."""
        with self.db.connection() as conn:
            row = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).one()
        return int(row[0]), str(row[1])

    def count(self) -> int:
        """Number of stored entries."""
        with self.db.connection() as conn:
            return int(conn.execute(select(func.count()).select_from(_T)).scalar_one())

    def _raw_batches(
        self, *, batch: int, start: int = 0, where: Sequence[Any] = ()
    ) -> Iterator[list[Sequence[Any]]]:
        # Keyset pagination on the primary key: each batch is one short indexed query.
        last = start
        while True:
            with self.db.connection() as conn:
                rows = conn.execute(
                    select(*_COLUMNS).where(_T.c.seq > last, *where).order_by(_T.c.seq).limit(batch)
                ).all()
            if not rows:
                return
            yield rows  # type: ignore[misc]
            last = rows[-1][_SEQ]

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        client_id: str | None = None,
        batch: int = 5000,
    ) -> Iterator[AuditEntry]:
        """Stored entries in chain order, optionally by decision time and client."""
        where: list[Any] = []
        if since is not None:
            where.append(_T.c.at >= utc_text(since))
        if until is not None:
            where.append(_T.c.at < utc_text(until))
        if client_id is not None:
            where.append(_T.c.client_id == client_id)
        for rows in self._raw_batches(batch=batch, where=where):
            yield from (_row_to_entry(r) for r in rows)

    def select_entries(self, *where: Any, batch: int = 2000) -> Iterator[AuditEntry]:
        """Stored entries matching SQL conditions on the entry table, in chain order."""
        for rows in self._raw_batches(batch=batch, where=where):
            yield from (_row_to_entry(r) for r in rows)

    def verify(
        self,
        *,
        batch: int = 20000,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
    ) -> VerifyResult:
        """Verify the whole stored chain, streaming; ``progress(checked, total)`` per batch.

        Long chains are split into contiguous ranges verified in parallel processes (hashing is
        CPU-bound); ``workers=1`` forces one sequential pass. Both find the same first break.
        """
        head = self.head()
        if workers is None:
            # One more process than cores: each worker also waits on the database, and that
            # wait overlaps another's hashing (measured: 2 cores, 3 workers fastest on both
            # backends).
            workers = min((os.cpu_count() or 1) + 1, 8) if head[0] >= PARALLEL_VERIFY_MIN else 1
        if workers > 1 and head[0] >= workers:
            return self._verify_parallel(head, workers, batch, progress)
        return self._verify_sequential(head, batch, progress)

    def _verify_parallel(
        self,
        head: tuple[int, str],
        workers: int,
        batch: int,
        progress: Callable[[int, int], None] | None,
    ) -> VerifyResult:
        url = self.db.engine.url.render_as_string(hide_password=False)
        step = -(-head[0] // workers)
        bounds = [(lo, min(lo + step - 1, head[0])) for lo in range(1, head[0] + 1, step)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=len(bounds), mp_context=context) as pool:
            futures = [pool.submit(_verify_range, url, lo, hi, batch) for lo, hi in bounds]
            parts: list[_RangeResult] = []
            for future in futures:
                parts.append(future.result())
                if progress is not None:
                    progress(sum(p.checked for p in parts), head[0])
        checked, last_seq, last_hash = 0, 0, GENESIS_HASH
        for part in parts:
            # Each range was checked on its own; the seams between ranges are checked here, in
            # chain order, so the first break reported is the same as a sequential pass finds.
            if part.first_prev is not None and part.first_prev != last_hash:
                return VerifyResult(
                    False, checked, last_seq + 1,
                    "prev_hash does not match the preceding entry's hash "
                    "(an entry before it was removed, inserted or reordered)",
                    last_seq, last_hash,
                )
            checked += part.checked
            if part.broken is not None:
                return VerifyResult(False, checked, part.broken[0], part.broken[1],
                                    part.last_seq, part.last_hash)
            last_seq, last_hash = part.last_seq, part.last_hash
        # The tail beyond the split (appends meanwhile), the head and what lies beyond it are
        # checked by the sequential pass from where the ranges ended.
        verifier = ChainVerifier()
        verifier.checked, verifier.last_seq, verifier.last_hash = checked, last_seq, last_hash
        return self._verify_sequential(head, batch, progress, verifier=verifier)

    def _verify_sequential(
        self,
        head: tuple[int, str],
        batch: int,
        progress: Callable[[int, int], None] | None,
        *,
        verifier: ChainVerifier | None = None,
    ) -> VerifyResult:
        verifier = verifier or ChainVerifier()
        while True:
            for rows in self._raw_batches(
                batch=batch, start=verifier.last_seq, where=[_T.c.seq <= head[0]]
            ):
                if not _feed_rows(verifier, rows):
                    return verifier.finish()
                if progress is not None:
                    progress(verifier.checked, head[0])
            # Appends that committed meanwhile moved the head: verify them too, then stop.
            newer = self.head()
            if newer[0] == head[0]:
                break
            head = newer
        result = verifier.finish(head)
        if result.ok:
            # An entry beyond the head was never appended through the trail (every append moves
            # the head in the same transaction); max is read before the head, so a concurrent
            # legitimate append cannot look like one.
            with self.db.connection() as conn:
                top = conn.execute(select(func.max(_T.c.seq))).scalar_one() or 0
            if top > self.head()[0]:
                return VerifyResult(
                    False, result.checked, head[0] + 1,
                    "an entry lies beyond the chain head (inserted outside casebridge)",
                    result.last_seq, result.last_hash,
                )
        return result

    def report(self, client_id: str) -> dict[str, Any]:
        """What went where for one client (Art. 15 GDPR), from the audit trail alone."""
        disclosures, refused = [], []
        recipients: dict[str, dict[str, Any]] = {}
        for e in self.entries(client_id=client_id):
            if e.kind != "decision":
                continue
            item = {
                "at": e.at, "stage": e.stage, "message_id": e.message_id, "sender": e.sender,
                "recipient": e.recipient, "purpose": e.purpose, "outcome": e.outcome,
                "categories": e.released, "consents": e.consents, "legal_basis": e.legal_basis,
            }
            if not e.released:
                refused.append({**item, "withheld": [
                    {"category": c, "reason": r} for c, r in e.withheld
                ]})
                continue
            disclosures.append(item)
            summary = recipients.setdefault(str(e.recipient), {
                "categories": set(), "purposes": set(), "consents": set(),
                "first": e.at, "last": e.at,
            })
            summary["categories"].update(e.released)
            summary["purposes"].add(e.purpose)
            summary["consents"].update(e.consents)
            summary["last"] = e.at
        return {
            "client_id": client_id,
            "recipients": {
                name: {k: sorted(v) if isinstance(v, set) else v for k, v in s.items()}
                for name, s in sorted(recipients.items())
            },
            "disclosures": disclosures,
            "withheld_transfers": refused,
        }


#: Chains at least this long are verified by several processes (below it, start-up dominates).
PARALLEL_VERIFY_MIN = 50_000


@dataclass(frozen=True, slots=True)
class _RangeResult:
    checked: int
    first_prev: str | None  # prev_hash of the range's first entry, for the seam check
    last_seq: int
    last_hash: str
    broken: tuple[int, str] | None


def _verify_range(url: str, lo: int, hi: int, batch: int) -> _RangeResult:
    """Verify entries lo..hi of the chain at ``url`` (runs in a worker process)."""
    engine = create_db_engine(url)
    try:
        trail = AuditTrail(Database(engine))
        verifier = ChainVerifier()
        verifier.last_seq = lo - 1
        first_prev: str | None = None
        for rows in trail._raw_batches(batch=batch, start=lo - 1, where=[_T.c.seq <= hi]):
            if first_prev is None:
                # The range's first link points outside it; the parent checks that seam.
                first_prev = verifier.last_hash = rows[0][_PREV]
            if not _feed_rows(verifier, rows):
                break
        if verifier.broken is None and verifier.last_seq != hi:
            verifier.broken = (verifier.last_seq + 1,
                               f"entry {verifier.last_seq + 1} is missing")
        return _RangeResult(verifier.checked, first_prev, verifier.last_seq,
                            verifier.last_hash, verifier.broken)
    finally:
        engine.dispose()


def _feed_rows(verifier: ChainVerifier, rows: Sequence[Sequence[Any]]) -> bool:
    """Feed stored rows (in seq order) to ``verifier``; False at the first break."""
    for row in rows:
        encoded = list(map(_apply, _ROW_ENCODERS, row))
        if not verifier.feed(int(row[_SEQ]), encoded, row[-1], row[_PREV]):
            return False
    return True


def _apply(encoder: Callable[[Any], str], value: Any) -> str:
    return encoder(value)


def _fields_of(draft: AuditDraft, seq: int, recorded_at: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "recorded_at": recorded_at,
        "at": utc_text(draft.at),
        "kind": draft.kind,
        "stage": draft.stage,
        "sender": draft.sender,
        "recipient": draft.recipient,
        "purpose": draft.purpose,
        "client_id": draft.client_id,
        "message_id": draft.message_id,
        "outcome": draft.outcome,
        "released": list(draft.released),
        "withheld": [list(w) for w in draft.withheld],
        "consents": list(draft.consents),
        "legal_basis": draft.legal_basis,
        "review_required": draft.review_required,
        "details": dict(draft.details),
    }


def _encode_row(fields: Mapping[str, Any], prev: str, digest: str) -> dict[str, Any]:
    row = {k: (canonical_json(v) if k in _JSON_FIELDS else v) for k, v in fields.items()}
    row["prev_hash"] = prev
    row["hash"] = digest
    return row
