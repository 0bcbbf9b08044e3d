"""The tamper-evident audit trail: every consent decision and gateway event, hash-chained.

An entry records metadata only — times, stage, sender, recipient, purpose, the canonical client
id, categories released and withheld with reasons, consent ids, legal basis, outcome, message id —
never payload and never names. Each entry's ``hash`` is SHA-256 over the canonical JSON of its
fields including ``prev_hash``, the hash of its predecessor in its chain (:func:`entry_hash`);
hashing and verification are pure functions over entries, the :class:`AuditTrail` only stores
and streams.

**Chains.** The trail is K hash chains (``CASEBRIDGE_AUDIT_CHAINS``; 1 is one global chain). An
entry goes to the chain a stable hash of its client reference picks (:func:`chain_of`), so all
entries about one client are in one chain, in order. Each chain has its own head row; an
appender locks only the heads of the chains it writes to, in ascending chain order (no deadlock
between processes), so appenders for different clients do not queue on one row. ``seq`` is the
global order the console, API and reports show: a database sequence on PostgreSQL, so it can
have gaps (a rolled-back append) and a slower transaction can commit a smaller ``seq`` after a
larger one became visible; within one chain it always increases with ``chain_seq``.

**Checkpoints.** Every N appended entries or T seconds a process writes a ``checkpoint`` entry
to its own chain (:data:`CHECKPOINT_CHAIN`) binding every chain head's (chain_seq, hash):
cutting the newest entries off one chain *and* rewinding its head row, which the chain alone
cannot show, contradicts the checkpoints written since. ``verify`` checks every chain, every
checkpoint and that every chain has a head.

**Group commit.** Appenders of one process hand their drafts (and their ``along`` work) to one
committer: the first waiting thread commits everyone's queued work in one transaction (one
savepoint per caller, so one caller's failing ``along`` fails only that caller) and each caller
returns once its own entries are durable.

Entries written before revision 0010 form chain 0's legacy segment (``audit_head.legacy_end``):
hashed without the chain fields, verified exactly as they were written.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from casebridge.canonical_model import Outcome, TransferEnvelope
from casebridge.consent.claims import justification_digest
from casebridge.consent.decision import Decision, MessageDecisions
from casebridge.consent.store import AuditEntryRow, AuditHeadRow, canonical_json
from casebridge.db import Database, create_db_engine, utc_text
from casebridge.errors import AuditError
from casebridge.logging import get_logger

log = get_logger(__name__)

GENESIS_HASH = "0" * 64
#: The chain checkpoint entries go to (data chains are 0..K-1).
CHECKPOINT_CHAIN = -1
CHECKPOINT_KIND = "checkpoint"
#: Fields an entry written before revision 0010 was hashed over, besides ``prev_hash``.
LEGACY_HASHED_FIELDS = (
    "at", "client_id", "consents", "details", "kind", "legal_basis", "message_id", "outcome",
    "purpose", "recipient", "recorded_at", "released", "review_required", "seq", "sender",
    "stage", "withheld",
)
#: The fields an entry's hash covers, besides ``prev_hash`` (sorted: the serialisation order).
HASHED_FIELDS = tuple(sorted((*LEGACY_HASHED_FIELDS, "chain", "chain_seq")))
_JSON_FIELDS = frozenset({"consents", "details", "released", "withheld"})
#: Serialisation order: every hashed field plus prev_hash, sorted (canonical JSON key order).
_ORDER = tuple(sorted((*HASHED_FIELDS, "prev_hash")))
_KEY_PREFIXES = tuple(json.dumps(name) + ":" for name in _ORDER)
_LEGACY_ORDER = tuple(sorted((*LEGACY_HASHED_FIELDS, "prev_hash")))
_LEGACY_PREFIXES = tuple(json.dumps(name) + ":" for name in _LEGACY_ORDER)
#: Where each legacy field sits in an encoding in _ORDER.
_LEGACY_PICK = operator.itemgetter(*(_ORDER.index(name) for name in _LEGACY_ORDER))


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
    """What a caller wants recorded; the trail adds seq, chain, recorded_at and the hashes."""

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
    """One stored entry of a chain."""

    seq: int
    chain: int
    chain_seq: int
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
    #: hashed before revision 0010, without the chain fields
    legacy: bool = False

    def fields(self) -> dict[str, Any]:
        """The hashed fields (without ``prev_hash`` and ``hash``)."""
        names = LEGACY_HASHED_FIELDS if self.legacy else HASHED_FIELDS
        return {name: getattr(self, name) for name in names}

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object (for export)."""
        return {
            **self.fields(), "chain": self.chain, "chain_seq": self.chain_seq,
            **({"legacy": True} if self.legacy else {}),
            "prev_hash": self.prev_hash, "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of verifying the trail (a broken chain is a result, not an exception).

    ``first_broken_seq`` is the global ``seq`` of the first entry found broken (for a missing
    entry: one past the last intact entry of its chain); ``chain`` names the chain it is in.
    ``last_seq``/``last_hash`` are the newest verified entry's.
    """

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    chain: int | None = None
    chains: int = 0
    checkpoints: int = 0


# --- pure functions ---------------------------------------------------------------------------


def _serialise(encoded: Sequence[str], legacy: bool = False) -> bytes:
    # Equivalent to canonical_json(fields + prev_hash): sorted keys, compact, UTF-8. Built from
    # values already encoded in _ORDER, so verify can splice stored JSON columns unparsed.
    if legacy:
        return ("{" + ",".join(map(operator.add, _LEGACY_PREFIXES, _LEGACY_PICK(encoded)))
                + "}").encode()
    return ("{" + ",".join(map(operator.add, _KEY_PREFIXES, encoded)) + "}").encode()


def _encode_fields(fields: Mapping[str, Any], prev_hash: str) -> list[str]:
    return [
        json.dumps(prev_hash) if name == "prev_hash" else canonical_json(fields.get(name))
        for name in _ORDER
    ]


def entry_hash(fields: Mapping[str, Any], prev_hash: str, *, legacy: bool = False) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's hashed fields plus ``prev_hash``
    (``legacy``: the form of entries written before chains existed)."""
    missing = set(LEGACY_HASHED_FIELDS if legacy else HASHED_FIELDS) - set(fields)
    if missing:
        raise ValueError(f"entry fields missing: {', '.join(sorted(missing))}")
    return hashlib.sha256(_serialise(_encode_fields(fields, prev_hash), legacy)).hexdigest()


def chain_of(draft: AuditDraft, chains: int) -> int:
    """The chain an entry goes to: a stable hash of the client reference, so one client's
    entries stay in one chain in order. Entries without a client go by their message id (the
    events of one message stay together); entries with neither go to chain 0."""
    key = draft.client_id or draft.message_id
    if chains <= 1 or not key:
        return 0
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % chains


_RENUMBERED = "the global seq does not grow along the chain (entries were renumbered)"


class ChainVerifier:
    """Checks the entries of one chain fed in ``chain_seq`` order; stops at the first break."""

    def __init__(self, chain: int = 0) -> None:
        self.chain = chain
        self.checked = 0
        self.last_chain_seq = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        #: (global seq to report, problem)
        self.broken: tuple[int, str] | None = None

    def feed(
        self, chain_seq: int, seq: int, encoded: Sequence[str], stored_hash: str,
        prev_hash: str, legacy: bool = False,
    ) -> bool:
        """Check one entry given its JSON-encoded fields in serialisation order; False once the
        chain is broken."""
        if self.broken is not None:
            return False
        expected = self.last_chain_seq + 1
        if chain_seq != expected:
            if chain_seq > expected:
                self.broken = (self.last_seq + 1,
                               f"entry {expected} of chain {self.chain} is missing "
                               f"(found {chain_seq} next)")
            else:
                self.broken = (seq, f"entry {expected} of chain {self.chain} is out of order "
                                    f"or duplicated (found {chain_seq} next)")
            return False
        if prev_hash != self.last_hash:
            self.broken = (seq, "prev_hash does not match the preceding entry's hash "
                                "(an entry before it was removed, inserted or reordered)")
            return False
        if seq <= self.last_seq:
            # Appends to one chain take their global seq under its head lock: it only grows.
            self.broken = (self.last_seq + 1, _RENUMBERED)
            return False
        if hashlib.sha256(_serialise(encoded, legacy)).hexdigest() != stored_hash:
            self.broken = (seq, "hash does not match the entry's content (altered)")
            return False
        self.checked += 1
        self.last_chain_seq, self.last_seq, self.last_hash = chain_seq, seq, stored_hash
        return True

    def feed_entry(self, entry: AuditEntry) -> bool:
        """Check one :class:`AuditEntry`."""
        encoded = _encode_fields(entry.fields() | {"chain": entry.chain,
                                                   "chain_seq": entry.chain_seq},
                                 entry.prev_hash)
        return self.feed(entry.chain_seq, entry.seq, encoded, entry.hash, entry.prev_hash,
                         entry.legacy)

    def finish(self, head: tuple[int, str] | None = None) -> VerifyResult:
        """The result; ``head`` (chain_seq, hash) as recorded by appenders catches a cut-off
        tail."""
        if self.broken is None and head is not None and head != (self.last_chain_seq,
                                                                  self.last_hash):
            head_seq = head[0]
            if head_seq > self.last_chain_seq:
                self.broken = (self.last_seq + 1,
                               f"entries {self.last_chain_seq + 1}..{head_seq} of chain "
                               f"{self.chain} are missing from the end")
            else:
                self.broken = (self.last_seq,
                               f"chain {self.chain} does not end where its head says "
                               "(an entry was appended or changed outside casebridge)")
        if self.broken is not None:
            return VerifyResult(False, self.checked, self.broken[0], self.broken[1],
                                self.last_seq, self.last_hash, chain=self.chain, chains=1)
        return VerifyResult(True, self.checked, None, None, self.last_seq, self.last_hash,
                            chains=1)


def _combine(
    results: Iterable[VerifyResult], extra: Iterable[tuple[int, str, int]] = (),
    checkpoints: int = 0,
) -> VerifyResult:
    """One result over all chains: the break with the smallest global seq is reported first
    (the same whichever order chains were checked in); ``extra``: (seq, problem, chain) breaks
    found outside the chains' own links (checkpoints, headless chains)."""
    results = list(results)
    checked = sum(r.checked for r in results)
    breaks: list[tuple[int, str, int, VerifyResult | None]] = [
        (r.first_broken_seq or 0, r.problem or "", r.chain if r.chain is not None else 0, r)
        for r in results if not r.ok]
    breaks += [(seq, problem, chain, None) for seq, problem, chain in extra]
    if breaks:
        seq, problem, chain, result = min(breaks, key=operator.itemgetter(0, 2))
        last = result if result is not None else max(results, key=lambda r: r.last_seq,
                                                      default=VerifyResult(True, 0))
        return VerifyResult(False, checked, seq, problem, last.last_seq, last.last_hash,
                            chain=chain, chains=len(results), checkpoints=checkpoints)
    newest = max(results, key=lambda r: r.last_seq, default=VerifyResult(True, 0))
    return VerifyResult(True, checked, None, None, newest.last_seq, newest.last_hash,
                        chains=len(results), checkpoints=checkpoints)


def _checkpoint_bindings(details: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    heads = details.get("heads")
    if not isinstance(heads, list):
        return []
    return [(int(c), int(s), str(h)) for c, s, h in heads]


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    head: tuple[int, str] | None = None,
    heads: Mapping[int, tuple[int, str]] | None = None,
) -> VerifyResult:
    """Verify stored entries in memory: each chain from its first entry in the order given,
    links, hashes, the recorded heads and every checkpoint.

    ``head``: (chain_seq, hash) of the only chain present; ``heads``: per chain.
    """
    by_chain: dict[int, list[AuditEntry]] = {}
    for entry in entries:
        by_chain.setdefault(entry.chain, []).append(entry)
    if head is not None:
        heads = {next(iter(by_chain), 0): head}
    results, extra = [], []
    for chain, chain_entries in sorted(by_chain.items()):
        verifier = ChainVerifier(chain)
        chain_head = None if heads is None else heads.get(chain)
        if heads is not None and chain_head is None:
            extra.append((chain_entries[0].seq, f"chain {chain} has entries but no head "
                                                "(its head row was removed)", chain))
        for entry in chain_entries:
            if chain_head is not None and entry.chain_seq > chain_head[0]:
                if verifier.broken is None and verifier.last_chain_seq == chain_head[0]:
                    verifier.broken = (entry.seq, f"an entry of chain {chain} lies beyond "
                                                  "its head (inserted outside casebridge)")
                break
            if not verifier.feed_entry(entry):
                break
        results.append(verifier.finish(chain_head))
    if heads is not None:
        for chain, chain_head in heads.items():
            if chain not in by_chain and chain_head[0] > 0:
                results.append(ChainVerifier(chain).finish(chain_head))
    stored = {(e.chain, e.chain_seq): (e.hash, e.seq) for es in by_chain.values() for e in es}
    checkpoints = [e for e in by_chain.get(CHECKPOINT_CHAIN, ()) if e.kind == CHECKPOINT_KIND]
    for cp in checkpoints:
        for chain, chain_seq, digest in _checkpoint_bindings(cp.details):
            found = GENESIS_HASH if chain_seq == 0 else stored.get((chain, chain_seq), (None,))[0]
            problem = _binding_problem(cp.seq, chain, chain_seq, digest, found)
            if problem is not None:
                extra.append((cp.seq, problem, chain))
                break
    return _combine(results, extra, len(checkpoints))


def _binding_problem(
    cp_seq: int, chain: int, chain_seq: int, digest: str, found: str | None
) -> str | None:
    if found == digest:
        return None
    if found is None:
        return (f"checkpoint {cp_seq} binds entry {chain_seq} of chain {chain}, which is "
                "missing (the chain was cut back together with its head)")
    return (f"checkpoint {cp_seq} binds entry {chain_seq} of chain {chain} with a different "
            "hash (the chain was rewritten since)")


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
_MOVE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == bindparam("chain_id"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_NAMES = (*_ORDER, "hash")
_COLUMNS = [_T.c[name] for name in _NAMES]
_SEQ = _ORDER.index("seq")
_CHAIN = _ORDER.index("chain")
_CHAIN_SEQ = _ORDER.index("chain_seq")
_PREV = _ORDER.index("prev_hash")
#: Callers whose work one group commit takes at most (bounds one transaction's length).
GROUP_LIMIT = 256


def entry_from_row(row: AuditEntryRow, legacy_end: int = 0) -> AuditEntry:
    """Decode a stored entry loaded through the ORM."""
    return _row_to_entry([getattr(row, name) for name in _NAMES], legacy_end)


def _row_to_entry(row: Sequence[Any], legacy_end: int = 0) -> AuditEntry:
    values = dict(zip(_NAMES, row, strict=True))
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    values["review_required"] = bool(values["review_required"])
    legacy = values["chain"] == 0 and values["chain_seq"] <= legacy_end
    return AuditEntry(**values, legacy=legacy)


@dataclass(slots=True)
class _Pending:
    """One caller's work waiting for a group commit."""

    drafts: Sequence[tuple[AuditDraft, int]]  # (draft, chain)
    along: Callable[[Connection], None] | None
    done: bool = False
    entries: list[AuditEntry] = field(default_factory=list)
    error: BaseException | None = None
    #: set when the work is done, or when this caller is handed the lead
    wake: threading.Event = field(default_factory=threading.Event)

    def outcome(self) -> list[AuditEntry]:
        if self.error is not None:
            raise self.error
        return self.entries


class _Committer:
    """The group committer of one database in this process (leader/follower).

    A caller that finds no commit running leads: it commits everything queued so far (its own
    work is among it), then hands the lead to the oldest caller still queued. The others sleep
    on an event of their own until their work is done or the lead is theirs, so a commit wakes
    only the callers it served plus one.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.Lock()
        self.queue: list[_Pending] = []
        self.leading = False
        self.known_heads: set[int] = set()
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self.legacy_end: int | None = None

    def submit(self, pending: _Pending) -> list[AuditEntry]:
        with self.lock:
            self.queue.append(pending)
            lead = not self.leading
            self.leading = True
        if not lead:
            pending.wake.wait()
            if pending.done:
                return pending.outcome()
        # This thread leads until its own work is done (FIFO: a later round takes it if the
        # group was full), then passes the lead on.
        successor: _Pending | None = None
        try:
            while not pending.done:
                with self.lock:
                    group = self.queue[:GROUP_LIMIT]
                    del self.queue[:GROUP_LIMIT]
                try:
                    self._commit(group)
                finally:
                    for served in group:
                        served.done = True
                        served.wake.set()
        finally:
            with self.lock:
                if self.queue:
                    successor = self.queue[0]
                else:
                    self.leading = False
            if successor is not None:
                successor.wake.set()
        return pending.outcome()

    def _commit(self, group: list[_Pending]) -> None:
        try:
            self.ensure_heads(sorted({c for p in group for _, c in p.drafts}))
            recorded_at = utc_text(datetime.now(UTC))
            with self.db.connection(immediate=True) as conn:
                live = self._run_along(conn, group)
                written = write_entries(conn, [d for p in live for d in p.drafts], recorded_at)
            position = 0
            for p in live:
                p.entries = written[position:position + len(p.drafts)]
                position += len(p.drafts)
            self.since_checkpoint += len(written)
        except BaseException as exc:
            for p in group:
                if p.error is None:
                    p.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for p in group:
                p.done = True

    @staticmethod
    def _run_along(conn: Connection, group: list[_Pending]) -> list[_Pending]:
        if len(group) == 1:
            # Alone in the transaction: a failing ``along`` rolls it back whole, no savepoint
            # round trips needed.
            if group[0].along is not None:
                group[0].along(conn)
            return group
        live = []
        for p in group:
            if p.along is None:
                live.append(p)
                continue
            savepoint = conn.begin_nested()
            try:
                p.along(conn)
            except Exception as exc:  # noqa: BLE001 - the caller gets its own exception back
                savepoint.rollback()
                p.error = exc
                continue
            savepoint.commit()
            live.append(p)
        return live

    def ensure_heads(self, chains: Sequence[int]) -> None:
        """Create the head rows of chains not written to before (a separate transaction, so
        the append's head locks are only ever taken on existing rows, in order)."""
        missing = [c for c in chains if c not in self.known_heads]
        if not missing:
            return
        with self.db.connection(immediate=True) as conn:
            present = set(conn.execute(
                select(_HEAD.c.id).where(_HEAD.c.id.in_(missing))).scalars())
            for chain in missing:
                if chain in present:
                    continue
                used = conn.execute(select(_T.c.seq).where(_T.c.chain == chain).limit(1)).first()
                if used is not None:
                    raise AuditError(f"the head of audit chain {chain} is missing while the "
                                     "chain has entries; the store is damaged")
                dialect = conn.dialect.name
                make = pg_insert if dialect == "postgresql" else sqlite_insert
                conn.execute(make(_HEAD).values(id=chain, seq=0, hash=GENESIS_HASH,
                                                legacy_end=0).on_conflict_do_nothing())
        self.known_heads.update(missing)

    def checkpoint_due(self, every: int, seconds: float) -> bool:
        return self.since_checkpoint >= every or (
            self.since_checkpoint > 0 and time.monotonic() - self.last_checkpoint >= seconds)


_COMMITTERS: weakref.WeakKeyDictionary[Database, _Committer] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def _forget_committers() -> None:
    # A forked child must not wait on a commit a parent thread was leading.
    global _COMMITTERS_LOCK
    _COMMITTERS_LOCK = threading.Lock()
    _COMMITTERS.clear()


os.register_at_fork(after_in_child=_forget_committers)


def _committer(db: Database) -> _Committer:
    with _COMMITTERS_LOCK:
        found = _COMMITTERS.get(db)
        if found is None:
            found = _COMMITTERS[db] = _Committer(db)
        return found


def _allocate_seqs(conn: Connection, n: int) -> list[int]:
    """``n`` new global entry numbers, ascending (SQLite: the append holds the write lock)."""
    top = conn.execute(select(func.max(_T.c.seq))).scalar_one() or 0
    return list(range(top + 1, top + n + 1))


def _lock_heads_and_number(
    conn: Connection, chains: Sequence[int], n: int
) -> tuple[list[Sequence[Any]], list[int]]:
    """Lock the heads of ``chains`` (ascending) and take ``n`` global numbers, in one round
    trip on PostgreSQL. The numbers are drawn only once every lock is held (the sequence scan's
    filter needs the locked rows first), so within a chain seq grows with chain_seq."""
    if conn.dialect.name != "postgresql":
        locked = conn.execute(
            select(_HEAD.c.id, _HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id.in_(chains))
            .order_by(_HEAD.c.id).with_for_update()
        ).all()
        return [tuple(r) for r in locked], _allocate_seqs(conn, n)
    rows = conn.execute(_LOCK_AND_NUMBER, {"chains": list(chains), "n": n}).all()
    heads: list[Sequence[Any]] = [tuple(r[:3]) for r in rows if r[0] is not None]
    return heads, sorted(int(r[3]) for r in rows if r[0] is None)


_LOCK_AND_NUMBER = text(
    "WITH locked AS MATERIALIZED ("
    " SELECT id, seq, hash FROM audit_head WHERE id = ANY(:chains) ORDER BY id FOR UPDATE),"
    " numbers AS MATERIALIZED ("
    " SELECT nextval('audit_entry_seq') AS s FROM generate_series(1, :n)"
    " WHERE (SELECT count(*) FROM locked) >= 0)"
    " SELECT id, seq, hash, NULL::bigint FROM locked"
    " UNION ALL SELECT NULL, NULL, NULL, s FROM numbers"
)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _encode_json(value: Any) -> str:
    # canonical_json's text, faster for what entries hold: lists of codes, pairs of codes.
    if not value:
        return "[]" if isinstance(value, list) else _CANONICAL(value)
    if isinstance(value, list):
        if all(type(item) is str for item in value):
            return "[" + ",".join(map(encode_basestring, value)) + "]"
        if all(type(item) is list and all(type(x) is str for x in item) for item in value):
            return "[" + ",".join("[" + ",".join(map(encode_basestring, item)) + "]"
                                  for item in value) + "]"
    return _CANONICAL(value)


#: Encoders of the hashed fields in _ORDER when writing (JSON fields from Python values).
_WRITE_ENCODERS = tuple(_encode_json if n in _JSON_FIELDS else _encode_scalar for n in _ORDER)
_JSON_AT = tuple((_ORDER.index(n), n) for n in sorted(_JSON_FIELDS))


_PG_TYPES = {"seq": "bigint", "chain": "integer", "chain_seq": "bigint",
             "review_required": "boolean"}
#: One constant statement (parsed and planned once per connection): the entries as arrays, one
#: per column, and the head moves as a data-modifying CTE; a multi-row VALUES insert instead
#: costs more to compile in SQLAlchemy than the database needs to run it.
_PG_INSERT_WITH_MOVES = text(
    # column names and types are this module's constants, never input
    "WITH moved AS (UPDATE audit_head SET seq = m.seq, hash = m.hash FROM unnest("  # noqa: S608
    "CAST(:move_ids AS integer[]), CAST(:move_seqs AS bigint[]), CAST(:move_hashes AS text[]))"
    " AS m(id, seq, hash) WHERE audit_head.id = m.id RETURNING 1) "
    f"INSERT INTO audit_entries ({', '.join(_NAMES)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {_PG_TYPES.get(name, 'text')}[])" for name in _NAMES)
    + ")"
)


#: The same for one entry (the common single append): scalar parameters cost the driver less
#: than arrays.
_PG_INSERT_ONE = text(
    "WITH moved AS (UPDATE audit_head SET seq = :new_seq, hash = :new_hash"  # noqa: S608
    " WHERE id = :chain_id RETURNING 1) "
    f"INSERT INTO audit_entries ({', '.join(_NAMES)}) VALUES ("
    + ", ".join(f"CAST(:{name} AS {_PG_TYPES.get(name, 'text')})" for name in _NAMES)
    + ")"
)


def _pg_insert_with_moves(
    rows: list[dict[str, Any]], moves: list[dict[str, Any]]
) -> tuple[Any, dict[str, Any]]:
    if len(rows) == 1:
        return _PG_INSERT_ONE, {**rows[0], **moves[0]}
    params: dict[str, Any] = {name: [row[name] for row in rows] for name in _NAMES}
    params["move_ids"] = [m["chain_id"] for m in moves]
    params["move_seqs"] = [m["new_seq"] for m in moves]
    params["move_hashes"] = [m["new_hash"] for m in moves]
    return _PG_INSERT_WITH_MOVES, params


def write_entries(
    conn: Connection, drafts: Sequence[tuple[AuditDraft, int]], recorded_at: str
) -> list[AuditEntry]:
    """Chain and insert (draft, chain) pairs in the open transaction, locking the heads of the
    chains they go to in ascending order; returns the entries in the order of ``drafts``."""
    if not drafts:
        return []
    needed = sorted({chain for _, chain in drafts})
    heads, seqs = _lock_heads_and_number(conn, needed, len(drafts))
    if len(heads) != len(needed):
        lost = sorted(set(needed) - {int(h[0]) for h in heads})
        raise AuditError(f"the head of audit chain {lost[0]} is missing; the store is damaged")
    state = {int(h[0]): (int(h[1]), str(h[2])) for h in heads}
    entries, rows = [], []
    for (draft, chain), seq in zip(drafts, seqs, strict=True):
        chain_seq, prev = state[chain]
        chain_seq += 1
        fields = _fields_of(draft, seq, chain, chain_seq, recorded_at)
        fields["prev_hash"] = prev
        # Each value is encoded once: the hash input and the stored JSON columns share it.
        encoded = [encode(fields[name])
                   for encode, name in zip(_WRITE_ENCODERS, _ORDER, strict=True)]
        digest = hashlib.sha256(_serialise(encoded)).hexdigest()
        row = dict(fields)
        for at, name in _JSON_AT:
            row[name] = encoded[at]
        row["hash"] = digest
        rows.append(row)
        entries.append(AuditEntry(**fields, hash=digest))
        state[chain] = (chain_seq, digest)
    moves = [{"chain_id": chain, "new_seq": seq, "new_hash": digest}
             for chain, (seq, digest) in sorted(state.items())]
    if conn.dialect.name == "postgresql":
        # One round trip: the head moves ride along the insert as a data-modifying CTE.
        conn.execute(*_pg_insert_with_moves(rows, moves))
    else:
        conn.execute(_INSERT_ENTRIES, rows)
        conn.execute(_MOVE_HEAD, moves)
    return entries


class AuditTrail:
    """Append to, stream, verify and report on the audit chains of one database.

    ``chains``, ``checkpoint_every``, ``checkpoint_seconds``: default from the settings
    (``CASEBRIDGE_AUDIT_CHAINS``, ``…_CHECKPOINT_EVERY``, ``…_CHECKPOINT_SECONDS``).
    """

    def __init__(
        self,
        db: Database,
        *,
        chains: int | None = None,
        checkpoint_every: int | None = None,
        checkpoint_seconds: float | None = None,
    ) -> None:
        self.db = db
        if chains is None or checkpoint_every is None or checkpoint_seconds is None:
            from casebridge.settings import get_settings

            settings = get_settings()
            chains = settings.audit_chains if chains is None else chains
            checkpoint_every = (settings.audit_checkpoint_every if checkpoint_every is None
                                else checkpoint_every)
            checkpoint_seconds = (settings.audit_checkpoint_seconds
                                  if checkpoint_seconds is None else checkpoint_seconds)
        if chains < 1:
            raise ValueError("an audit trail has at least one chain")
        self.chains = chains
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds

    def append(
        self, drafts: Sequence[AuditDraft], *, along: Callable[[Connection], None] | None = None,
    ) -> list[AuditEntry]:
        """Append drafts in one transaction; returns the stored entries once they are durable.

        Drafts go to their client's chain (:func:`chain_of`); within one chain they are
        consecutive. ``along`` runs first in the same transaction: a record that must exist
        exactly when these entries do (the gateway's idempotency claim). If it raises, nothing
        of this call is appended and the exception is raised here; other callers committed in
        the same group are not affected.
        """
        if not drafts and along is None:
            return []
        if not drafts:
            assert along is not None
            with self.db.connection(immediate=True) as conn:
                along(conn)
            return []
        committer = _committer(self.db)
        pending = _Pending([(d, chain_of(d, self.chains)) for d in drafts], along)
        entries = committer.submit(pending)
        if committer.checkpoint_due(self.checkpoint_every, self.checkpoint_seconds):
            try:
                self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the caller's entries are durable already
                log.warning("audit checkpoint failed", exc_type=type(exc).__name__)
        return entries

    def checkpoint(self) -> AuditEntry:
        """Write a checkpoint entry binding every chain head's (chain_seq, hash) now."""
        committer = _committer(self.db)
        committer.since_checkpoint = 0
        committer.last_checkpoint = time.monotonic()
        committer.ensure_heads([CHECKPOINT_CHAIN])
        with self.db.connection(immediate=True) as conn:
            conn.execute(select(_HEAD.c.id).where(_HEAD.c.id == CHECKPOINT_CHAIN)
                         .with_for_update())
            heads = conn.execute(
                select(_HEAD.c.id, _HEAD.c.seq, _HEAD.c.hash)
                .where(_HEAD.c.id != CHECKPOINT_CHAIN).order_by(_HEAD.c.id)
            ).all()
            draft = AuditDraft(
                at=datetime.now(UTC), kind=CHECKPOINT_KIND,
                details={"heads": [[int(c), int(s), str(h)] for c, s, h in heads]},
            )
            recorded_at = utc_text(datetime.now(UTC))
            return write_entries(conn, [(draft, CHECKPOINT_CHAIN)], recorded_at)[0]

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
        """Append a non-decision event (e.g. ``forged_sender``, ``dpo_review``) to the trail.

        ``details`` holds metadata only (codes, ids, counts); callers must never put payload or
        names there.
        """
        if kind in ("decision", CHECKPOINT_KIND):
            raise AuditError(f"{kind} entries are not appended with append_event")
        draft = AuditDraft(
            at=at, kind=kind, stage=stage, sender=sender, recipient=recipient, purpose=purpose,
            client_id=client_id, message_id=message_id, outcome=outcome,
            details=dict(details or {}),
        )
        return self.append([draft])[0]

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry (greatest global seq) of the whole trail."""
        with self.db.connection() as conn:
            row = conn.execute(
                select(_T.c.seq, _T.c.hash).order_by(_T.c.seq.desc()).limit(1)
            ).one_or_none()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def heads(self) -> dict[int, tuple[int, str]]:
        """Per chain, (chain_seq, hash) of its newest entry as appenders recorded it."""
        return {c: (s, h) for c, (s, h, _) in self._heads().items()}

    def _heads(self) -> dict[int, tuple[int, str, int]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                select(_HEAD.c.id, _HEAD.c.seq, _HEAD.c.hash, _HEAD.c.legacy_end)
            ).all()
        return {int(r[0]): (int(r[1]), str(r[2]), int(r[3])) for r in rows}

    def _legacy_end(self) -> int:
        committer = _committer(self.db)
        if committer.legacy_end is None:
            # Fixed by the migration: chain 0's legacy segment never grows.
            with self.db.connection() as conn:
                found = conn.execute(
                    select(_HEAD.c.legacy_end).where(_HEAD.c.id == 0)).scalar_one_or_none()
            committer.legacy_end = int(found or 0)
        return committer.legacy_end

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

    def _chain_batches(
        self, chain: int, *, batch: int, start: int = 0, stop: int | None = None
    ) -> Iterator[list[Sequence[Any]]]:
        # Keyset pagination on (chain, chain_seq): the unique index serves each batch.
        last = start
        while True:
            where = [_T.c.chain == chain, _T.c.chain_seq > last]
            if stop is not None:
                where.append(_T.c.chain_seq <= stop)
            with self.db.connection() as conn:
                rows = conn.execute(
                    select(*_COLUMNS).where(*where).order_by(_T.c.chain_seq).limit(batch)
                ).all()
            if not rows:
                return
            yield rows  # type: ignore[misc]
            last = rows[-1][_CHAIN_SEQ]

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        client_id: str | None = None,
        batch: int = 5000,
    ) -> Iterator[AuditEntry]:
        """Stored entries in global order, optionally by decision time and client."""
        where: list[Any] = []
        if since is not None:
            where.append(_T.c.at >= utc_text(since))
        if until is not None:
            where.append(_T.c.at < utc_text(until))
        if client_id is not None:
            where.append(_T.c.client_id == client_id)
        legacy_end = self._legacy_end()
        for rows in self._raw_batches(batch=batch, where=where):
            yield from (_row_to_entry(r, legacy_end) for r in rows)

    def select_entries(self, *where: Any, batch: int = 2000) -> Iterator[AuditEntry]:
        """Stored entries matching SQL conditions on the entry table, in global order."""
        legacy_end = self._legacy_end()
        for rows in self._raw_batches(batch=batch, where=where):
            yield from (_row_to_entry(r, legacy_end) for r in rows)

    def verify(
        self,
        *,
        batch: int = 20000,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
    ) -> VerifyResult:
        """Verify every chain, every checkpoint and that every chain has its head, streaming;
        ``progress(checked, total)`` per batch.

        Long trails are split into contiguous ranges of chains verified in parallel processes
        (hashing is CPU-bound); ``workers=1`` forces one sequential pass. Both report the same
        first break.
        """
        heads = self._heads()
        total = sum(h[0] for h in heads.values())
        if workers is None:
            # One more process than cores: each worker also waits on the database, and that
            # wait overlaps another's hashing (measured: 2 cores, 3 workers fastest on both
            # backends).
            workers = min((os.cpu_count() or 1) + 1, 8) if total >= PARALLEL_VERIFY_MIN else 1
        parts: dict[int, list[_RangeResult]] = {}
        if workers > 1 and total >= workers:
            parts = self._verify_parallel(heads, total, workers, batch, progress)
        results = []
        done = 0
        for chain, (top, top_hash, legacy_end) in sorted(heads.items()):
            verifier = ChainVerifier(chain)
            _merge_parts(verifier, parts.get(chain, ()))
            result = self._verify_chain_rest(verifier, (top, top_hash), legacy_end, batch,
                                             progress, done, total)
            done += result.checked
            results.append(result)
        extra = self._headless_chains(set(heads))
        checkpoints, problems = self._verify_checkpoints(heads, batch)
        return _combine(results, [*extra, *problems], checkpoints)

    def _verify_parallel(
        self,
        heads: Mapping[int, tuple[int, str, int]],
        total: int,
        workers: int,
        batch: int,
        progress: Callable[[int, int], None] | None,
    ) -> dict[int, list[_RangeResult]]:
        url = self.db.engine.url.render_as_string(hide_password=False)
        step = -(-total // workers)
        # Cut the chains, one after another, into ``workers`` shares of about ``step`` entries.
        shares: list[list[tuple[int, int, int, int]]] = [[]]
        room = step
        for chain, (top, _, legacy_end) in sorted(heads.items()):
            lo = 1
            while lo <= top:
                hi = min(top, lo + room - 1)
                shares[-1].append((chain, lo, hi, legacy_end))
                room -= hi - lo + 1
                lo = hi + 1
                if room == 0:
                    shares.append([])
                    room = step
        shares = [s for s in shares if s]
        context = multiprocessing.get_context("fork")
        parts: dict[int, list[_RangeResult]] = {}
        with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
            futures = [pool.submit(_verify_ranges, url, share, batch) for share in shares]
            checked = 0
            for future in futures:
                for part in future.result():
                    parts.setdefault(part.chain, []).append(part)
                    checked += part.checked
                if progress is not None:
                    progress(checked, total)
        return parts

    def _verify_chain_rest(
        self,
        verifier: ChainVerifier,
        head: tuple[int, str],
        legacy_end: int,
        batch: int,
        progress: Callable[[int, int], None] | None,
        done: int,
        total: int,
    ) -> VerifyResult:
        chain = verifier.chain
        while verifier.broken is None:
            for rows in self._chain_batches(chain, batch=batch, start=verifier.last_chain_seq,
                                            stop=head[0]):
                if not _feed_rows(verifier, rows, legacy_end):
                    return verifier.finish()
                if progress is not None:
                    progress(done + verifier.checked, total)
            # Appends that committed meanwhile moved the head: verify them too, then stop.
            newer = self._chain_head(chain)
            if newer is None or newer[0] == head[0]:
                break
            head = newer
        result = verifier.finish(head)
        if result.ok:
            # An entry beyond the head was never appended through the trail (every append moves
            # the head in the same transaction); max is read before the head, so a concurrent
            # legitimate append cannot look like one.
            with self.db.connection() as conn:
                beyond = conn.execute(
                    select(func.max(_T.c.chain_seq)).where(_T.c.chain == chain)
                ).scalar_one() or 0
            now = self._chain_head(chain)
            if now is not None and beyond > now[0]:
                with self.db.connection() as conn:
                    seq = conn.execute(select(_T.c.seq).where(
                        _T.c.chain == chain, _T.c.chain_seq == head[0] + 1)).scalar()
                return VerifyResult(
                    False, result.checked, int(seq or result.last_seq + 1),
                    f"an entry of chain {chain} lies beyond its head "
                    "(inserted outside casebridge)",
                    result.last_seq, result.last_hash, chain=chain, chains=1,
                )
        return result

    def _chain_head(self, chain: int) -> tuple[int, str] | None:
        with self.db.connection() as conn:
            row = conn.execute(
                select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == chain)).one_or_none()
        return None if row is None else (int(row[0]), str(row[1]))

    def _headless_chains(self, known: set[int]) -> list[tuple[int, str, int]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                select(_T.c.chain, func.min(_T.c.seq)).group_by(_T.c.chain)).all()
        return [(int(first), f"chain {chain} has entries but no head "
                             "(its head row was removed)", int(chain))
                for chain, first in rows if int(chain) not in known]

    def _verify_checkpoints(
        self, heads: Mapping[int, tuple[int, str, int]], batch: int
    ) -> tuple[int, list[tuple[int, str, int]]]:
        """Each checkpoint's bindings against the stored chains; (count, problems)."""
        count, problems = 0, []
        details_at = _NAMES.index("details")
        kind_at = _NAMES.index("kind")
        for rows in self._chain_batches(CHECKPOINT_CHAIN, batch=batch):
            wanted: dict[int, dict[int, list[tuple[int, str]]]] = {}
            for row in rows:
                if row[kind_at] != CHECKPOINT_KIND:
                    continue
                count += 1
                for chain, chain_seq, digest in _checkpoint_bindings(json.loads(row[details_at])):
                    if chain_seq == 0:
                        if digest != GENESIS_HASH:
                            problems.append((row[_SEQ], _binding_problem(
                                row[_SEQ], chain, chain_seq, digest, GENESIS_HASH) or "", chain))
                        continue
                    wanted.setdefault(chain, {}).setdefault(chain_seq, []).append(
                        (int(row[_SEQ]), digest))
            for chain, by_seq in wanted.items():
                found: dict[int, str] = {}
                keys = sorted(by_seq)
                for lo in range(0, len(keys), 1000):
                    with self.db.connection() as conn:
                        found.update((int(s), str(h)) for s, h in conn.execute(
                            select(_T.c.chain_seq, _T.c.hash).where(
                                _T.c.chain == chain, _T.c.chain_seq.in_(keys[lo:lo + 1000]))))
                for chain_seq, binders in by_seq.items():
                    for cp_seq, digest in binders:
                        problem = _binding_problem(cp_seq, chain, chain_seq, digest,
                                                   found.get(chain_seq))
                        if problem is not None:
                            problems.append((cp_seq, problem, chain))
        return count, problems

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


#: Trails at least this long are verified by several processes (below it, start-up dominates).
PARALLEL_VERIFY_MIN = 50_000


@dataclass(frozen=True, slots=True)
class _RangeResult:
    chain: int
    lo: int
    checked: int
    first_seq: int  # global seq of the range's first entry (0: none found)
    first_prev: str | None  # prev_hash of the range's first entry, for the seam check
    last_chain_seq: int
    last_seq: int
    last_hash: str
    broken: tuple[int, str] | None


def _merge_parts(verifier: ChainVerifier, parts: Iterable[_RangeResult]) -> None:
    """Advance ``verifier`` over ranges of its chain checked in other processes, checking the
    seams between them in chain order (so the first break is the one a sequential pass finds).
    """
    for part in sorted(parts, key=operator.attrgetter("lo")):
        if part.lo != verifier.last_chain_seq + 1:
            return  # a break before this range already stopped the chain
        if part.first_prev is None:
            # Its first entry is missing; only the parent knows the entry before it.
            verifier.broken = (verifier.last_seq + 1,
                               f"entry {part.lo} of chain {verifier.chain} is missing")
            return
        if part.first_prev != verifier.last_hash:
            verifier.broken = (part.first_seq,
                               "prev_hash does not match the preceding entry's hash "
                               "(an entry before it was removed, inserted or reordered)")
            return
        if part.first_seq <= verifier.last_seq:
            verifier.broken = (verifier.last_seq + 1, _RENUMBERED)
            return
        verifier.checked += part.checked
        if part.broken is not None:
            verifier.broken = part.broken
            verifier.last_chain_seq, verifier.last_seq = part.last_chain_seq, part.last_seq
            verifier.last_hash = part.last_hash
            return
        verifier.last_chain_seq, verifier.last_seq = part.last_chain_seq, part.last_seq
        verifier.last_hash = part.last_hash


def _verify_ranges(
    url: str, share: Sequence[tuple[int, int, int, int]], batch: int
) -> list[_RangeResult]:
    """Verify ranges (chain, lo, hi, legacy_end) of the trail at ``url`` (in a worker)."""
    engine = create_db_engine(url)
    try:
        trail = AuditTrail(Database(engine), chains=1, checkpoint_every=1,
                           checkpoint_seconds=1.0)
        return [_verify_range(trail, *unit, batch) for unit in share]
    finally:
        engine.dispose()


def _verify_range(
    trail: AuditTrail, chain: int, lo: int, hi: int, legacy_end: int, batch: int
) -> _RangeResult:
    verifier = ChainVerifier(chain)
    verifier.last_chain_seq = lo - 1
    first_prev: str | None = None
    first_seq = 0
    for rows in trail._chain_batches(chain, batch=batch, start=lo - 1, stop=hi):
        if first_prev is None and int(rows[0][_CHAIN_SEQ]) != lo:
            break  # the range's first entry is missing: reported by the parent (_merge_parts)
        if first_prev is None:
            # The range's first link points outside it; the parent checks that seam.
            first_prev = verifier.last_hash = rows[0][_PREV]
            first_seq = int(rows[0][_SEQ])
            verifier.last_seq = first_seq - 1
        if not _feed_rows(verifier, rows, legacy_end):
            break
    if verifier.broken is None and verifier.last_chain_seq != hi:
        verifier.broken = (verifier.last_seq + 1,
                           f"entry {verifier.last_chain_seq + 1} of chain {chain} is missing")
    return _RangeResult(chain, lo, verifier.checked, first_seq, first_prev,
                        verifier.last_chain_seq, verifier.last_seq, verifier.last_hash,
                        verifier.broken)


def _feed_rows(verifier: ChainVerifier, rows: Sequence[Sequence[Any]], legacy_end: int) -> bool:
    """Feed stored rows of one chain (in chain_seq order) to ``verifier``; False at the first
    break."""
    for row in rows:
        encoded = list(map(_apply, _ROW_ENCODERS, row))
        chain_seq = int(row[_CHAIN_SEQ])
        legacy = chain_seq <= legacy_end and row[_CHAIN] == 0
        if not verifier.feed(chain_seq, int(row[_SEQ]), encoded, row[-1], row[_PREV], legacy):
            return False
    return True


def _apply(encoder: Callable[[Any], str], value: Any) -> str:
    return encoder(value)


def _fields_of(
    draft: AuditDraft, seq: int, chain: int, chain_seq: int, recorded_at: str
) -> dict[str, Any]:
    return {
        "seq": seq,
        "chain": chain,
        "chain_seq": chain_seq,
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
