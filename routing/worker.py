"""Workers: consume agencies' queues, re-check consent, render, deliver, then acknowledge.

:class:`DeliveryService` decides the fate of a batch of broker messages and has no broker code
(:meth:`DeliveryService.process_batch`; :meth:`~DeliveryService.process` is a batch of one):

1. decode each envelope (undecodable → dead letter ``undecodable``);
2. one read of all their delivery states: a copy already ``delivered`` is a redelivery,
   acknowledged and not delivered;
3. **pass the consent gate again** (stage ``delivery``), each client's consents resolved once
   for the batch: a consent withdrawn while the message waited blocks it now;
4. render the recipient's native format with its adapter (cannot render → ``render_failed``);
5. one transaction for the batch: every decision's audit entry, blocked and dead rows, pull
   outbox items with their delivered marks, and what a delivery records -- a delivered referral
   starts being tracked, a delivered plan's dated measures are recorded for follow-up, a
   delivered status update advances the referral it answers (:mod:`casebridge.routing.status`);
6. push (retried, up to ``push_concurrency`` at once) and record each accepted push as
   delivered, concurrent pushes in one shared commit.

A message's own fault is its result alone; see :meth:`DeliveryService.process_batch`.

:class:`Worker` is the kombu loop around it: collects batches (size and linger from the
settings), bounded prefetch, manual ack only after step 5 or 6 (or after a dead letter was
audited and confirmed by the broker), reconnect when the broker goes away, pause while the
store is unreachable (see :class:`Worker`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Any, cast

from kombu import Consumer
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.message import Message
from pydantic import ValidationError
from sqlalchemy import Connection, Table, bindparam, select, text
from sqlalchemy.orm import Session

from casebridge.canonical_model import MessageType, TransferEnvelope
from casebridge.codes import AuditKind, AuditStage, DeadReason
from casebridge.consent.audit import AuditDraft, AuditEntry
from casebridge.consent.gate import ConsentGate, Evaluation
from casebridge.db import Database, is_store_outage
from casebridge.errors import (
    AdapterError,
    BrokerUnavailable,
    CasebridgeError,
    RecipientRefused,
    RetryableDeliveryError,
)
from casebridge.logging import get_logger
from casebridge.routing import feedback as feedback_module
from casebridge.routing.delivery import PushClient
from casebridge.routing.feedback import Feedback, feedback_envelope, feedback_for
from casebridge.routing.pipeline import Publisher, decode_envelope
from casebridge.routing.preview import render_for
from casebridge.routing.routes import PushDelivery, RecipientRoute, RouteTable
from casebridge.routing.status import apply_status_update, record_plans, record_referrals, upsert
from casebridge.routing.store import DeliveryRow, OutboxRow, delivery_id
from casebridge.routing.topology import (
    DELIVERY_LIMIT,
    Topology,
    broker_errors,
    connect,
    release,
)

log = get_logger(__name__)

#: Only a delivery is final: a message blocked earlier is decided again when it comes back (the
#: sender resent it after a new consent, or a replay), which is a new, audited decision.
DONE_STATES = frozenset({"delivered"})
_DELIVERY_STATES = select(DeliveryRow.delivery_id, DeliveryRow.state).where(
    DeliveryRow.delivery_id.in_(bindparam("dids", expanding=True)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one message: delivered, duplicate, blocked or dead (with a reason)."""

    kind: str
    delivery_id: str | None = None
    recipient: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    envelope: TransferEnvelope | None = None


#: At most this many unrecorded pushes are remembered (a worker holds at most its prefetch).
MAX_UNRECORDED = 10_000


@dataclass(frozen=True, slots=True)
class _Pushed:
    """A push the recipient accepted, with what recording it as delivered needs."""

    released: TransferEnvelope
    delivery_id: str
    status_code: int
    attempts: int
    queued_at: datetime
    response_days: int
    client_id: str | None
    track: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _queued_at(headers: Mapping[str, Any] | None) -> datetime | None:
    value = (headers or {}).get("queued_at")
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


@dataclass(slots=True)
class _Job:
    """One message of a batch on its way through :meth:`DeliveryService.process_batch`."""

    index: int
    envelope: TransferEnvelope  # as received (a feedback report: the envelope built for it)
    did: str
    recipient: str
    queued_at: datetime
    feedback: bool = False
    hit: RecipientRoute | None = None
    single: TransferEnvelope | None = None  # addressed to this recipient alone
    evaluation: Evaluation | None = None
    drafts: list[AuditDraft] = field(default_factory=list)
    released: TransferEnvelope | None = None
    native: bytes = b""
    media_type: str = ""
    target: PushDelivery | None = None
    verdict: Verdict | None = None  # decided before the batch commit, final once it committed

    @property
    def base(self) -> dict[str, Any]:
        return {"delivery_id": self.did, "recipient": self.recipient, "envelope": self.envelope}

    def pushed(self, status_code: int, attempts: int) -> _Pushed:
        assert self.released is not None
        return _Pushed(self.released, self.did, status_code, attempts, self.queued_at,
                       0 if self.hit is None else self.hit.response_days,
                       None if self.evaluation is None else self.evaluation.client.client_id,
                       not self.feedback)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A delivery row to write with the batch: blocked or dead before anything was sent."""

    envelope: TransferEnvelope
    did: str
    state: str
    reason: str | None = None
    detail: dict[str, Any] | None = None
    attempts: int = 0


#: Per message: its verdict, or the exception its handling raised (see the Worker).
Result = Verdict | Exception


class _GroupCommit:
    """Records accepted pushes as delivered, many in one transaction (leader/follower).

    A push thread hands in its record and waits; whichever waiting thread gets the leader lock
    commits everything handed in so far. A thread leaves only when its own record committed (or
    failed), so the pushes a worker may have to repeat after a crash stay at most the pushes in
    flight -- one per push thread -- while concurrent pushes share their commits.
    """

    def __init__(self, commit: Callable[[list[_Pushed]], dict[str, str | None]]) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._leader = threading.Lock()
        self._queue: list[_Slot] = []

    def record(self, pushed: _Pushed) -> str | None:
        """Commit ``pushed``; returns its status effect, raises what its commit raised."""
        slot = _Slot(pushed)
        with self._lock:
            self._queue.append(slot)
        while not slot.done:
            with self._leader:
                if slot.done:
                    break
                with self._lock:
                    group, self._queue = self._queue, []
                self._run(group)
        if slot.error is not None:
            raise slot.error
        return slot.effect

    def _run(self, group: list[_Slot]) -> None:
        try:
            effects = self._commit([s.pushed for s in group])
        except Exception as exc:  # noqa: BLE001 - handed to each waiting push thread
            if len(group) == 1 or is_store_outage(exc):
                for slot in group:
                    slot.error, slot.done = exc, True
                return
            for slot in group:  # one record's fault must not fail the others: one by one
                self._run([slot])
            return
        for slot in group:
            slot.effect, slot.done = effects.get(slot.pushed.delivery_id), True


@dataclass(slots=True)
class _Slot:
    pushed: _Pushed
    done: bool = False
    effect: str | None = None
    error: Exception | None = None


class DeliveryService:
    """The delivery-time path of a batch of messages (no broker code; see the module
    docstring and :meth:`process_batch`)."""

    def __init__(
        self, *, routes: RouteTable, db: Database, gate: ConsentGate,
        push: PushClient | None = None, clock: Callable[[], datetime] = _now,
        push_concurrency: int = 1,
    ) -> None:
        self.routes = routes
        self.db = db
        self.gate = gate
        self.push = push or PushClient()
        self.clock = clock
        #: Pushes of a batch sent at once; also the most pushes a crash may make this process
        #: repeat (each stays in flight until its delivery is recorded).
        self.push_concurrency = max(1, push_concurrency)
        self._push_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._recorder = _GroupCommit(self._commit_pushed)
        #: Pushes the recipient accepted whose delivery the store could not record (see
        #: :meth:`_record_push`), by delivery id; the worker holds such a message and hands it
        #: back here once the store answers.
        self._unrecorded: dict[str, _Pushed] = {}

    def close(self) -> None:
        """Stop the push threads and close the HTTP pool."""
        with self._pool_lock:
            pool, self._push_pool = self._push_pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.push.close()

    def _state(self, did: str) -> str | None:
        return self._states([did]).get(did)

    def _states(self, dids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(dids))
        if not wanted:
            return {}
        with self.db.snapshot_read() as conn:
            return {d: s for d, s in conn.execute(_DELIVERY_STATES, {"dids": wanted})}

    def _mark(self, envelope: TransferEnvelope, did: str, state: str, *,
              reason: str | None = None, detail: dict[str, Any] | None = None,
              attempts: int = 0) -> None:
        with self.db.session(immediate=True) as session:
            self._write(session, [_Mark(envelope, did, state, reason, detail, attempts)], [])

    def process(self, body: bytes, headers: Mapping[str, Any] | None = None) -> Verdict:
        """Decide, render and deliver one message body (a batch of one).

        Returns its verdict; raises what its handling raised (a store outage, a bug), as the
        worker's per-message error paths expect.
        """
        result = self.process_batch([(body, headers)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def process_batch(
        self, items: Sequence[tuple[bytes, Mapping[str, Any] | None]]
    ) -> list[Result]:
        """The fate of each message body of a batch, in order; never raises.

        ``headers`` (the broker message's) supply the time a message was queued, which is when a
        referral counts as requested. One snapshot read finds the copies already delivered, each
        client's consents are resolved once, and one transaction writes every decision's audit
        entry with the delivery rows, the pull outbox items and the referral updates; then the
        pushes run (at most :attr:`push_concurrency` at once) and their deliveries are recorded
        in shared commits. A message's own fault (undecodable, cannot render, refused, a bug)
        is its result alone; a store outage before the commit is every undecided message's.
        """
        results: list[Result | None] = [None] * len(items)
        try:
            self._run_batch(items, results)
        except Exception as exc:  # noqa: BLE001 - nothing was sent or committed (see _run_batch)
            pending = [i for i, r in enumerate(results) if r is None]
            if len(pending) <= 1 or is_store_outage(exc) or isinstance(exc, BrokerUnavailable):
                for i in pending:
                    results[i] = exc
            else:
                log.warning("batch failed; handling its messages one by one",
                            exc_type=type(exc).__name__, messages=len(pending))
                for i in pending:
                    results[i] = self.process_batch([items[i]])[0]
        return [r if r is not None else RuntimeError("no result") for r in results]

    def _job(self, index: int, body: bytes, headers: Mapping[str, Any] | None) -> _Job | Verdict:
        if (headers or {}).get(feedback_module.HEADER):
            # A report on a blocked or dead copy for its sender (see routing.feedback): it
            # carries no client data, so it is rendered and delivered without a consent check
            # and nothing of it is tracked as a referral or status.
            try:
                feedback = Feedback.model_validate_json(body)
                envelope = feedback_envelope(feedback, self.routes)
            except (ValidationError, ValueError, CasebridgeError):
                return Verdict("dead", reason="undecodable")
            did = delivery_id(envelope.sender, envelope.message_id, feedback.sender)
            return _Job(index, envelope, did, feedback.sender, self.clock(), feedback=True,
                        released=envelope)
        try:
            envelope = decode_envelope(body)
        except (ValidationError, ValueError):
            return Verdict("dead", reason="undecodable")
        if len(envelope.recipients) != 1:
            return Verdict("dead", reason="not_single_recipient", envelope=envelope)
        recipient = envelope.recipients[0]
        return _Job(index, envelope, delivery_id(envelope.sender, envelope.message_id, recipient),
                    recipient, _queued_at(headers) or self.clock())

    def _run_batch(
        self, items: Sequence[tuple[bytes, Mapping[str, Any] | None]],
        results: list[Result | None],
    ) -> None:
        """Fill ``results``. Raises only before anything was sent or committed, for a fault of
        the batch as a whole (then the caller decides what becomes of the unfinished ones)."""
        jobs: list[_Job] = []
        seen: set[str] = set()
        later: list[int] = []
        for i, (body, headers) in enumerate(items):
            try:
                job = self._job(i, body, headers)
            except Exception as exc:  # noqa: BLE001 - this message's fault
                results[i] = exc
                continue
            if isinstance(job, Verdict):
                results[i] = job
            elif job.did in seen:
                later.append(i)  # a second copy in one batch: after the first one's fate
            else:
                seen.add(job.did)
                jobs.append(job)
        states = self._states(j.did for j in jobs)
        undone: list[_Job] = []
        unrecorded: list[tuple[_Job, _Pushed]] = []
        for job in jobs:
            if states.get(job.did) in DONE_STATES:
                if not job.feedback:
                    log.info("redelivery recognised", message_id=job.envelope.message_id,
                             recipient=job.recipient)
                self._unrecorded.pop(job.did, None)
                results[job.index] = Verdict("duplicate", **job.base)
            elif (pushed := self._unrecorded.get(job.did)) is not None:
                # pushed already, not yet recorded (the store went away): the data has left, so
                # it is recorded as delivered now, neither pushed nor decided a second time
                unrecorded.append((job, pushed))
            else:
                undone.append(job)
        marks, ready = self._decide(undone, results)
        pulls, pushes = self._render(ready, marks, results)
        entries = self._commit_decisions(undone, marks, pulls, results)
        # Committed: from here on every message's fate is its own, whatever happens to another.
        for job in undone:
            if job.drafts and job.evaluation is not None and job.single is not None:
                try:
                    self.gate.record_overrides(job.single, job.evaluation, entries[job.did])
                except Exception as exc:  # noqa: BLE001 - this message's fault or an outage
                    log.error("override justification not kept", exc_type=type(exc).__name__,
                              delivery_id=job.did)
                    if any(p is job for p in pushes):  # not sent: decided again later
                        pushes[:] = [p for p in pushes if p is not job]
                        results[job.index] = exc
        for job, pushed in unrecorded:
            results[job.index] = self._guarded(partial(self._record_push, pushed, job.base))
        self._push_all(pushes, results)
        if later:
            for i, result in zip(later, self.process_batch([items[i] for i in later]),
                                 strict=True):
                results[i] = result

    @staticmethod
    def _guarded(step: Callable[[], Verdict]) -> Result:
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - this message's result
            return exc

    def _decide(self, undone: list[_Job], results: list[Result | None]
                ) -> tuple[list[_Mark], list[_Job]]:
        """Route check and consent decision of each message (nothing written yet)."""
        marks: list[_Mark] = []
        ready: list[_Job] = []
        deciding: list[_Job] = []
        for job in undone:
            if job.feedback:
                ready.append(job)
                continue
            try:
                env = job.envelope
                job.hit = self.routes.route_for(env.sender, job.recipient, env.purpose,
                                                env.message_type)
                if job.hit is not None:
                    job.single = env.for_recipient(job.recipient)
            except Exception as exc:  # noqa: BLE001 - this message's fault
                results[job.index] = exc
                continue
            if job.hit is None:
                marks.append(_Mark(job.envelope, job.did, "dead", reason="no_route"))
                job.verdict = Verdict("dead", reason="no_route", **job.base)
                continue
            deciding.append(job)
        if not deciding:
            return marks, ready
        at = self.clock()
        evaluations = self.gate.evaluate_batch(
            [j.single for j in deciding if j.single is not None], at=at,
            policies=[{j.recipient: j.hit.policy} for j in deciding if j.hit is not None])
        for job, evaluation in zip(deciding, evaluations, strict=True):
            assert job.single is not None
            job.evaluation = evaluation
            try:
                job.drafts = self.gate.drafts(job.single, evaluation, stage="delivery", at=at)
            except Exception as exc:
                if is_store_outage(exc):
                    raise
                results[job.index] = exc
                continue
            released = self.gate.released(job.single, evaluation).get(job.recipient)
            if released is not None:
                job.released = released
                ready.append(job)
                continue
            reasons = sorted({str(w.reason) for d in evaluation.decisions.decisions
                              for w in d.withheld})
            reason = "withdrawn" if "withdrawn" in reasons else (reasons[0] if reasons else "block")
            detail = {"withheld_reasons": reasons}
            marks.append(_Mark(job.envelope, job.did, "blocked", reason=reason, detail=detail))
            job.verdict = Verdict("blocked", reason=reason, detail=detail, **job.base)
            log.info("blocked at delivery", message_id=job.envelope.message_id,
                     recipient=job.recipient, reason=reason)
        return marks, ready

    def _render(self, ready: list[_Job], marks: list[_Mark], results: list[Result | None]
                ) -> tuple[list[_Job], list[_Job]]:
        """Render each released copy in its recipient's format; (pull jobs, push jobs)."""
        pulls: list[_Job] = []
        pushes: list[_Job] = []
        for job in ready:
            assert job.released is not None
            try:
                agency = self.routes.agency(job.recipient)
                job.native, job.media_type = render_for(self.routes, job.released)
            except AdapterError as exc:
                detail = {"error": exc.code, "problems": exc.lines()[:5]}
                marks.append(_Mark(job.released, job.did, "dead", reason="render_failed",
                                   detail=detail))
                job.verdict = Verdict("dead", reason="render_failed", detail=detail, **job.base)
                continue
            except Exception as exc:
                if is_store_outage(exc):
                    raise
                results[job.index] = exc
                continue
            if isinstance(agency.delivery, PushDelivery):
                job.target = agency.delivery
                pushes.append(job)
            else:
                pulls.append(job)
        return pulls, pushes

    def _commit_decisions(
        self, undone: list[_Job], marks: list[_Mark], pulls: list[_Job],
        results: list[Result | None],
    ) -> dict[str, list[AuditEntry]]:
        """One transaction: every decision's audit entries, the blocked and dead rows, the pull
        outbox items with their delivered marks and referral updates. Returns the audit entries
        by delivery id; sets the results of everything it committed."""
        decided = [j for j in undone if j.drafts]
        if not decided and not marks and not pulls:
            return {}
        written: dict[str, set[str] | dict[str, str | None]] = {}

        def along(conn: Connection) -> None:
            with Session(bind=conn, expire_on_commit=False) as session:
                inserted = self._put_outbox(session, pulls)
                delivered = [j.pushed(0, 1) for j in pulls if j.did in inserted]
                written["effects"] = self._write(session, marks, delivered)
                written["inserted"] = inserted
                session.flush()

        drafts = [d for j in decided for d in j.drafts]
        entries = self.gate.audit.append(drafts, along=along)
        by_did: dict[str, list[AuditEntry]] = {}
        position = 0
        for job in decided:
            by_did[job.did] = entries[position:position + len(job.drafts)]
            position += len(job.drafts)
        log.info("consent gate", stage="delivery", decisions=len(decided),
                 seq=[e.seq for e in entries[:1] + entries[-1:]])
        inserted = written.get("inserted", set())
        effects = cast(dict[str, str | None], written.get("effects", {}))
        for job in undone:
            if job.verdict is not None:
                results[job.index] = job.verdict
        for job in pulls:
            if job.did in inserted:
                results[job.index] = Verdict(
                    "delivered", detail={"mode": "pull", "status_effect": effects.get(job.did)},
                    **job.base)
            else:  # another worker put it into the outbox meanwhile
                results[job.index] = Verdict("duplicate", **job.base)
        return by_did

    def _put_outbox(self, session: Session, pulls: list[_Job]) -> set[str]:
        """Insert the pull items; the delivery ids inserted (one already there is a duplicate)."""
        if not pulls:
            return set()
        now = self.clock()
        rows = [{
            "agency": j.recipient, "delivery_id": j.did,
            "message_id": j.released.message_id if j.released else j.envelope.message_id,
            "sender": j.envelope.sender, "message_type": str(j.envelope.message_type),
            "media_type": j.media_type, "body": j.native, "created_at": now, "acked_at": None,
        } for j in sorted(pulls, key=lambda j: j.did)]  # one lock order for every worker
        stmt = upsert(session, OutboxRow).on_conflict_do_nothing(
            index_elements=["delivery_id"]).returning(_OUTBOX.c.delivery_id)
        return set(session.execute(stmt, rows).scalars())

    def _write(self, session: Session, marks: Sequence[_Mark],
               delivered: Sequence[_Pushed]) -> dict[str, str | None]:
        """Write delivery rows (``INSERT … ON CONFLICT``) and, for delivered copies, the
        referrals, plans' measures and status updates; returns the status effects by id."""
        now = self.clock()
        rows: dict[str, dict[str, Any]] = {}
        for m in marks:
            rows[m.did] = _delivery_row(m.envelope, m.did, m.state, now, attempts=m.attempts,
                                        reason=m.reason, detail=m.detail)
        for p in delivered:
            rows[p.delivery_id] = _delivery_row(p.released, p.delivery_id, "delivered", now,
                                                attempts=p.attempts)
        if rows:
            session.execute(_upsert_deliveries(session), [rows[d] for d in sorted(rows)])
        tracked = [p for p in delivered if p.track]
        record_referrals(session, [(p.released, p.released.recipients[0], p.queued_at,
                                    p.response_days) for p in tracked])
        effects: dict[str, str | None] = {}
        record_plans(session, [(p.released, p.released.recipients[0], p.client_id)
                               for p in tracked], routes=self.routes, at=now)
        # status updates lock their referrals: in one order for every worker (no deadlock)
        for p in sorted(tracked, key=lambda p: p.released.correlation_id or ""):
            if p.released.message_type == MessageType.STATUS_UPDATE:
                effects[p.delivery_id] = apply_status_update(session, p.released, at=now)
        return effects

    def _commit_pushed(self, group: list[_Pushed]) -> dict[str, str | None]:
        with self.db.session(immediate=True) as session:
            return self._write(session, [], group)

    def record_dead(self, verdict: Verdict) -> None:
        """Record a copy dead-lettered because its handling failed (the process step did not
        get to record it), so that its sender can read its fate on the status API."""
        if verdict.envelope is None or verdict.delivery_id is None:
            return
        try:
            self._mark(verdict.envelope, verdict.delivery_id, "dead", reason=verdict.reason,
                       detail=verdict.detail)
        except Exception as exc:  # noqa: BLE001 - the dead letter itself is already safe
            log.warning("dead letter not recorded for the status API",
                        exc_type=type(exc).__name__, delivery_id=verdict.delivery_id)

    def _push_all(self, pushes: list[_Job], results: list[Result | None]) -> None:
        # Every push goes through the one pool, also a batch's only one: batches processed at
        # once share it, so no more than push_concurrency pushes are ever in flight.
        if not pushes:
            return
        if self.push_concurrency == 1:
            for job in pushes:
                results[job.index] = self._guarded(partial(self._push, job))
            return
        with self._pool_lock:
            if self._push_pool is None:
                self._push_pool = ThreadPoolExecutor(self.push_concurrency,
                                                     thread_name_prefix="push")
            pool = self._push_pool
        futures = [(job, pool.submit(self._guarded, partial(self._push, job)))
                   for job in pushes]
        for job, future in futures:
            results[job.index] = future.result()

    @contextmanager
    def _pushing(self, did: str) -> Iterator[str | None]:
        """Hold the push of ``did`` to this thread (PostgreSQL: a session advisory lock, freed
        by the server if this process dies) and yield its delivery state read under the lock.

        The gateway's relay may queue a second copy of a message (published, then the store
        failed before the publish was marked); two workers taking both copies at once would
        both push. Under the lock the second one finds the first one's delivery recorded.
        """
        if self.db.dialect != "postgresql":
            yield self._state(did)  # one SQLite file: a single machine's workers
            return
        key = int.from_bytes(hashlib.sha256(f"routing_push\x1f{did}".encode()).digest()[:8],
                             "big", signed=True)
        raw = None
        try:
            raw = self.db.engine.connect()
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(_PUSH_LOCK, {"k": key})
            state = conn.scalar(_DELIVERY_STATE, {"did": did})
        except Exception as exc:
            if not is_store_outage(exc):
                if raw is not None:
                    raw.invalidate()
                    raw.close()
                raise
            # The store went away after the decision was committed: push unlocked, as before
            # the lock existed; the push is recorded (not repeated) once the store is back.
            if raw is not None:
                raw.invalidate()
                raw.close()
            yield None
            return
        try:
            yield state
        finally:
            try:
                conn.execute(_PUSH_UNLOCK, {"k": key})
            except Exception:  # noqa: BLE001 - a connection that may hold the lock is closed
                raw.invalidate()
            raw.close()

    def _push(self, job: _Job) -> Verdict:
        with self._pushing(job.did) as state:
            if state in DONE_STATES:  # the other copy of this message was pushed meanwhile
                log.info("redelivery recognised", message_id=job.envelope.message_id,
                         recipient=job.recipient)
                self._unrecorded.pop(job.did, None)
                return Verdict("duplicate", **job.base)
            return self._push_locked(job)

    def _push_locked(self, job: _Job) -> Verdict:
        assert job.released is not None and job.target is not None
        released = job.released
        retry = self.routes.retry_policy(self.routes.agency(job.recipient))
        try:
            result = self.push.push(
                job.target, job.native, media_type=job.media_type, delivery_id=job.did,
                message_id=released.message_id, sender=released.sender, retry=retry,
            )
        except RecipientRefused as exc:
            detail = {"status_code": exc.status_code, "answer": exc.answer}
            self._mark(released, job.did, "dead", reason="refused", detail=detail)
            return Verdict("dead", reason="refused", detail=detail, **job.base)
        except RetryableDeliveryError as exc:
            detail = {"last_error": exc.message, "attempts": retry.max_attempts}
            self._mark(released, job.did, "dead", reason="retries_exhausted", detail=detail,
                       attempts=retry.max_attempts)
            return Verdict("dead", reason="retries_exhausted", detail=detail, **job.base)
        return self._record_push(job.pushed(result.status_code, result.attempts), job.base)

    def _record_push(self, pushed: _Pushed, base: dict[str, Any]) -> Verdict:
        """Record an accepted push as delivered; if the store is unreachable, remember the push
        so that the held message, handled again, is recorded without a second push."""
        try:
            effect = self._recorder.record(pushed)
        except Exception as exc:
            if is_store_outage(exc):
                if len(self._unrecorded) >= MAX_UNRECORDED:  # bounded by what a worker holds
                    self._unrecorded.pop(next(iter(self._unrecorded)))
                self._unrecorded[pushed.delivery_id] = pushed
            raise
        self._unrecorded.pop(pushed.delivery_id, None)
        return Verdict("delivered", detail={"mode": "push", "status_code": pushed.status_code,
                                            "attempts": pushed.attempts,
                                            "status_effect": effect}, **base)


_OUTBOX = cast(Table, OutboxRow.__table__)
_DELIVERY_STATE = select(DeliveryRow.state).where(DeliveryRow.delivery_id == bindparam("did"))
_PUSH_LOCK = text("SELECT pg_advisory_lock(:k)")
_PUSH_UNLOCK = text("SELECT pg_advisory_unlock(:k)")
_DELIVERIES = cast(Table, DeliveryRow.__table__)


def _delivery_row(envelope: TransferEnvelope, did: str, state: str, now: datetime, *,
                  attempts: int = 0, reason: str | None = None,
                  detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "delivery_id": did, "message_id": envelope.message_id, "sender": envelope.sender,
        "recipient": envelope.recipients[0], "message_type": str(envelope.message_type),
        "state": state, "attempts": attempts, "queued_at": None, "updated_at": now,
        "reason": reason,
        "detail": json.dumps(detail, ensure_ascii=False) if detail else None,
    }


def _upsert_deliveries(session: Session) -> Any:
    """Insert delivery rows; a row already there takes the new state and adds the attempts."""
    stmt = upsert(session, DeliveryRow)
    return stmt.on_conflict_do_update(index_elements=["delivery_id"], set_={
        "state": stmt.excluded.state,
        "attempts": _DELIVERIES.c.attempts + stmt.excluded.attempts,
        "updated_at": stmt.excluded.updated_at,
        "reason": stmt.excluded.reason,
        "detail": stmt.excluded.detail,
    })


_REQUEUE = "requeue"
#: dead-letter reasons of the worker's error path, which DeliveryService has not recorded
_UNRECORDED = frozenset({str(DeadReason.ERROR), str(DeadReason.INTERNAL_ERROR)})
#: The store could not be reached while handling the message: hold it and pause (see Worker).
_STORE_DOWN = "store_down"
#: Longest wait between two probes of an unreachable store.
MAX_PROBE_INTERVAL = 15.0
#: Details of a dead letter that may enter the audit trail (metadata, never the answer's text).
_AUDITED_DETAIL = ("status_code", "error", "exc_type", "attempts")


class Worker:
    """Consumes agencies' queues and hands each message to a :class:`DeliveryService`.

    Messages are handled in batches: the consumer collects up to ``batch_size`` messages (or
    what arrived within ``linger`` seconds of the first, so a lone message waits no longer than
    that) and hands them to :meth:`DeliveryService.process_batch` together -- one state read,
    one consent resolution per client and one commit for the whole batch -- then acks, dead-
    letters or holds each message by its own outcome. With ``threads > 1`` batches are
    processed by a thread pool (and up to ``threads`` pushes run at once) while this thread
    keeps the broker channel (kombu channels are not thread-safe: acks, requeues and dead
    letters happen here only); the prefetch bounds the messages in flight.

    One message never stops the worker: an unexpected error while handling it dead-letters that
    message (reason ``internal_error``, audited, one structured log line) and the loop goes on.
    Only losing the store or the broker stops consumption, and only for as long as it lasts:

    - store unreachable: the messages in hand are *held* (neither acked nor requeued, so the
      quorum queue's delivery limit is not spent on an outage), the consumer is cancelled so no
      more arrive, the store is probed with a growing interval, and after a successful probe the
      held messages are handled again and consumption resumes. Nothing is dead-lettered because
      of an outage. ``state`` says ``paused_store`` meanwhile.
    - broker lost: the channel is gone (the broker returns what we held); reconnect and resume.
    """

    def __init__(
        self, *, url: str, topology: Topology, service: DeliveryService,
        agencies: Iterable[str] | None = None, prefetch: int | None = None, threads: int = 1,
        on_verdict: Callable[[Verdict], None] | None = None, state_file: Path | None = None,
        batch_size: int = 1, linger: float = 0.0,
    ) -> None:
        self.url = url
        #: where :attr:`state` is written for a readiness probe (``casebridge-healthcheck``)
        self.state_file = state_file
        self.topology = topology
        self.service = service
        self.agencies = list(agencies) if agencies else list(topology.agencies)
        self.batch_size = max(1, batch_size)
        self.linger = max(0.0, linger)
        # default: room for the batch being processed and the next one being collected
        self.prefetch = max(prefetch or max(16, 2 * self.batch_size), threads, self.batch_size)
        self.threads = threads
        self.on_verdict = on_verdict
        self.stop_event = threading.Event()
        self.counts: dict[str, int] = {}
        #: consuming | paused_store | reconnecting (for logs and probes)
        self.state = "starting"
        self._dead_publisher: Publisher | None = None
        self._last_message = time.monotonic()
        self._pool: ThreadPoolExecutor | None = None
        self._done: SimpleQueue[tuple[Message, Verdict | str]] = SimpleQueue()
        self._inflight = 0
        self._held: list[Message] = []
        #: messages collected for the next batch, and when the first of them arrived
        self._batch: list[Message] = []
        self._batch_since = 0.0

    def stop(self) -> None:
        """Ask the loop to stop after the messages in hand."""
        self.stop_event.set()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.info("worker state", state=state, previous=self.state, held=len(self._held))
            self.state = state
            if self.state_file is not None:
                write_state(self.state_file, state)

    def _dead(self) -> Publisher:
        if self._dead_publisher is None:
            self._dead_publisher = Publisher(connect(self.url), self.topology)
        return self._dead_publisher

    def _dead_letter(self, message: Message, verdict: Verdict) -> None:
        """Audit, then publish to the DLQ (confirmed); the caller acks after both.

        The audit entry comes first: if the store is down the message is held instead, so a
        dead letter never exists without its entry.
        """
        try:
            audit_event(self.service.gate, str(AuditKind.DEAD_LETTER), verdict)
        except Exception as exc:
            if is_store_outage(exc):
                raise
            # a bug in auditing must not keep the message cycling; say so loudly, go on
            log.error("dead letter not audited", exc_type=type(exc).__name__,
                      delivery_id=verdict.delivery_id, reason=verdict.reason)
        headers = dict(message.headers or {})
        headers.update({
            "dead_reason": verdict.reason or str(DeadReason.UNKNOWN),
            "dead_detail": json.dumps(verdict.detail, ensure_ascii=False)[:4000],
            "dead_at": _now().isoformat(),
        })
        recipient = verdict.recipient or str(headers.get("recipient", "unknown"))
        if verdict.delivery_id:
            headers["delivery_id"] = verdict.delivery_id
        self._dead().publish_dead(message.body, recipient=recipient, headers=headers,
                                  content_type=message.content_type or "application/octet-stream")

    def _tell_sender(self, verdict: Verdict) -> None:
        """Queue feedback for the sender where its format has a feedback message.

        If the broker refuses it, the copy's fate stays on the status API (it was recorded
        with its reason), so the message is not held back for it.
        """
        feedback = feedback_for(self.service.routes, verdict.envelope,
                                recipient=verdict.recipient, state=verdict.kind,
                                reason=verdict.reason, at=_now())
        if feedback is None:
            return
        try:
            self._dead().publish_feedback(feedback)
        except BrokerUnavailable:
            log.warning("feedback to the sender not queued", message_id=feedback.message_id,
                        sender=feedback.sender)
            return
        envelope = verdict.envelope
        assert envelope is not None  # feedback_for gives none without one
        # the reason (a withhold reason or a dead-letter reason) goes into the details: the
        # entry's outcome column holds decision outcomes and routing results only
        self.service.gate.audit.append_event(
            str(AuditKind.SENDER_FEEDBACK), at=feedback.at, stage=str(AuditStage.DELIVERY),
            sender=envelope.sender, recipient=verdict.recipient,
            purpose=str(envelope.purpose), message_id=envelope.message_id,
            details={"delivery_id": verdict.delivery_id, "state": feedback.state,
                     "reason": feedback.reason, "feedback_id": feedback.feedback_id},
        )

    def _process(self, batch: list[Message]) -> list[Verdict | str]:
        """The fate of each message of ``batch``: a verdict, ``requeue`` (broker trouble) or
        ``store_down`` (any thread); never raises."""
        try:
            results: list[Result] = self.service.process_batch(
                [(m.body, m.headers) for m in batch])
        except Exception as exc:  # noqa: BLE001 - process_batch does not raise; belt and braces
            results = [exc] * len(batch)
        outcomes: list[Verdict | str] = []
        for message, result in zip(batch, results, strict=True):
            if isinstance(result, Verdict):
                outcomes.append(result)
            elif isinstance(result, BrokerUnavailable):
                outcomes.append(_REQUEUE)
            elif is_store_outage(result):
                outcomes.append(_STORE_DOWN)
            else:  # one message must never stop the worker
                outcomes.append(_failed(message, result))
        if _REQUEUE in outcomes:
            log.warning("broker unavailable while delivering; requeued",
                        messages=outcomes.count(_REQUEUE))
        if _STORE_DOWN in outcomes:
            log.warning("store unreachable while delivering; holding the messages",
                        messages=outcomes.count(_STORE_DOWN))
        return outcomes

    def _finish(self, message: Message, outcome: Verdict | str) -> None:
        """Ack, dead-letter, hold or requeue on the consumer thread."""
        if outcome == _STORE_DOWN:
            self._held.append(message)
            return
        if isinstance(outcome, str):
            message.requeue()
            return
        if outcome.kind == "dead":
            try:
                self._dead_letter(message, outcome)
            except BrokerUnavailable:
                message.requeue()
                return
            except Exception as exc:
                if not is_store_outage(exc):
                    raise
                self._held.append(message)
                return
        if outcome.kind == "dead" and outcome.reason in _UNRECORDED:
            self.service.record_dead(outcome)
        if outcome.kind in ("blocked", "dead"):
            self._tell_sender(outcome)
        message.ack()
        self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
        if self.on_verdict is not None:
            self.on_verdict(outcome)

    def _finish_safely(self, message: Message, outcome: Verdict | str) -> None:
        try:
            self._finish(message, outcome)
        except (BrokerUnavailable, KombuOperationalError, OSError):
            raise  # the channel is gone: the consume loop reconnects
        except Exception as exc:  # noqa: BLE001 - the loop must survive its own bugs
            log.error("could not finish a message; requeued", exc_type=type(exc).__name__)
            message.requeue()

    def handle(self, message: Message) -> None:
        """Take one message into the batch being collected (dispatched when it is full)."""
        self._last_message = time.monotonic()
        if self._held:  # paused: a message that was on its way is held without processing
            self._held.append(message)
            return
        deliveries = _delivery_count(message)
        if deliveries >= DELIVERY_LIMIT:
            # Its last delivery before RabbitMQ dead-letters it on its own, silently: it crashed
            # (or lost) a worker every time. Dead-letter it here instead, audited, untouched.
            log.error("message redelivered too often; dead-lettered",
                      deliveries=deliveries + 1,
                      delivery_id=_opt_str((message.headers or {}).get("delivery_id")))
            self._finish_safely(message, _verdict(
                message, DeadReason.BROKER_DELIVERY_LIMIT, {"attempts": deliveries + 1}))
            return
        if not self._batch:
            self._batch_since = time.monotonic()
        self._batch.append(message)
        if len(self._batch) >= self.batch_size:
            self._dispatch()

    def _linger_left(self) -> float:
        return self._batch_since + self.linger - time.monotonic()

    def _dispatch(self) -> None:
        """Process the collected batch here (one thread) or hand it to the pool."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._pool is None:
            for message, outcome in zip(batch, self._process(batch), strict=True):
                self._finish_safely(message, outcome)
            return
        self._inflight += len(batch)
        future = self._pool.submit(self._process, batch)

        def done(f: Future[list[Verdict | str]], ms: list[Message] = batch) -> None:
            try:
                outcomes = f.result()
            except BaseException as exc:  # noqa: BLE001 - every message must come back
                outcomes = [_failed(m, exc if isinstance(exc, Exception)
                                    else RuntimeError(type(exc).__name__)) for m in ms]
            for m, o in zip(ms, outcomes, strict=True):
                self._done.put((m, o))

        future.add_done_callback(done)

    def _collect(self, *, wait: bool = False) -> None:
        """Finish what the pool completed (all in-flight messages if ``wait``)."""
        while self._inflight and (wait or not self._done.empty()):
            message, outcome = self._done.get()
            self._inflight -= 1
            self._last_message = time.monotonic()
            self._finish_safely(message, outcome)

    def _drop_inflight(self) -> None:
        # The channel is gone: the broker requeues what we hold. Wait for the pool so nothing
        # is processed twice at once; the redelivery is then recognised by its delivery id.
        while self._inflight:
            self._done.get()
            self._inflight -= 1
        self._held.clear()
        self._batch.clear()

    def _pause_for_store(self, consumer: Consumer) -> None:
        """Stop taking messages until the store answers, then handle the held ones again (in
        batches, as they came)."""
        consumer.cancel()
        self._held.extend(self._batch)  # collected, not yet processed: held with the rest
        self._batch = []
        self._collect(wait=True)
        self._set_state("paused_store")
        interval = 0.5
        while self._held and not self.stop_event.is_set():
            if not self.service.db.reachable():
                self.stop_event.wait(interval)
                interval = min(interval * 2, MAX_PROBE_INTERVAL)
                continue
            log.info("store reachable again; handling held messages", held=len(self._held))
            held, self._held = self._held, []
            for start in range(0, len(held), self.batch_size):
                batch = held[start:start + self.batch_size]
                if self._held:  # the store went away again: keep the rest for later
                    self._held.extend(batch)
                    continue
                for message, outcome in zip(batch, self._process(batch), strict=True):
                    self._finish_safely(message, outcome)
        if self._held:  # stopping while paused: give them back for another worker
            for message in self._held:
                message.requeue()
            self._held.clear()
            return
        consumer.consume()
        self._set_state("consuming")

    def run(self, *, idle_timeout: float | None = None, max_messages: int | None = None) -> None:
        """Consume until stopped, ``idle_timeout`` seconds pass without a message, or
        ``max_messages`` were handled; reconnects when the broker connection is lost."""
        self._last_message = time.monotonic()
        handled_at_start = sum(self.counts.values())
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="delivery")
        try:
            while not self.stop_event.is_set():
                try:
                    if self._consume(idle_timeout, max_messages, handled_at_start):
                        return
                except BrokerUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - the worker never exits on its own
                    log.error("worker loop failed; starting it again",
                              exc_type=type(exc).__name__)
                    self._drop_inflight()
                    self.stop_event.wait(1.0)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _consume(
        self, idle_timeout: float | None, max_messages: int | None, handled_at_start: int
    ) -> bool:
        """One connection's lifetime; True when the run is over, False to reconnect."""
        connection = connect(self.url)
        try:
            connection.ensure_connection(max_retries=3, interval_start=0.5)
            self.topology.declare(connection)
            queues = [self.topology.queue(a) for a in self.agencies]
            with Consumer(connection.default_channel, queues=queues, on_message=self.handle,
                          prefetch_count=self.prefetch, accept=None) as consumer:
                self._set_state("consuming")
                while True:
                    if self._batch and (self._linger_left() <= 0 or self.stop_event.is_set()):
                        self._dispatch()
                    self._collect()
                    if self._held:
                        self._pause_for_store(consumer)
                    if self.stop_event.is_set() or (max_messages is not None and (
                        sum(self.counts.values()) - handled_at_start >= max_messages
                    )):
                        self._dispatch()
                        self._collect(wait=True)
                        return True
                    if self._batch:
                        timeout = min(max(self._linger_left(), 0.001), 0.25)
                    else:
                        timeout = 0.02 if self._inflight else 0.25
                    try:
                        connection.drain_events(timeout=timeout)
                    except TimeoutError:
                        if not self._inflight and not self._batch and idle_timeout is not None \
                                and time.monotonic() - self._last_message > idle_timeout:
                            return True
        except (BrokerUnavailable, KombuOperationalError, *connection.connection_errors,
                *connection.channel_errors) as exc:
            self._drop_inflight()
            self._set_state("reconnecting")
            log.warning("broker connection lost; reconnecting", exc_type=type(exc).__name__)
            time.sleep(1.0)
            if idle_timeout is not None and (
                time.monotonic() - self._last_message > idle_timeout + 30
            ):
                raise BrokerUnavailable("the broker stayed unreachable") from exc
            return False
        finally:
            release(connection)

    def close(self) -> None:
        """Release the dead-letter connection and HTTP pool."""
        if self._dead_publisher is not None:
            release(self._dead_publisher.connection)
            self._dead_publisher = None
        self.service.close()


def write_state(path: Path, state: str) -> None:
    """Replace the worker's state file (read by ``casebridge-healthcheck --worker-state``)."""
    try:
        partial = path.with_name(path.name + ".new")
        partial.write_text(state + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        log.warning("worker state file not written", exc_type=type(exc).__name__)


def audit_event(
    gate: ConsentGate, kind: str, verdict: Verdict, *, stage: str = "delivery"
) -> None:
    """Append a routing event (dead letter, replay) to the audit chain; metadata only."""
    env = verdict.envelope
    gate.audit.append_event(
        kind, at=_now(), stage=stage,
        sender=env.sender if env else None, recipient=verdict.recipient,
        purpose=str(env.purpose) if env else None,
        message_id=env.message_id if env else None,
        outcome=verdict.reason,
        details={"delivery_id": verdict.delivery_id,
                 **{k: verdict.detail[k] for k in _AUDITED_DETAIL if k in verdict.detail}},
    )


def _verdict(message: Message, reason: DeadReason, detail: dict[str, Any]) -> Verdict:
    """A dead-letter verdict for ``message`` as received (its envelope if it decodes)."""
    headers = message.headers or {}
    try:
        envelope: TransferEnvelope | None = decode_envelope(message.body)
    except (ValidationError, ValueError):
        envelope = None
    recipient = (envelope.recipients[0] if envelope is not None and envelope.recipients
                 else _opt_str(headers.get("recipient")))
    return Verdict("dead", delivery_id=_opt_str(headers.get("delivery_id")),
                   recipient=recipient, reason=str(reason), detail=detail, envelope=envelope)


def _delivery_count(message: Message) -> int:
    """Earlier deliveries of ``message`` (quorum queues count them in ``x-delivery-count``)."""
    try:
        return int((message.headers or {}).get("x-delivery-count") or 0)
    except (TypeError, ValueError):
        return 0


def _failed(message: Message, exc: Exception) -> Verdict:
    """The dead-letter verdict for an error the message's handling raised (not an outage)."""
    if isinstance(exc, CasebridgeError):
        return _verdict(message, DeadReason.ERROR, {"error": exc.code})
    verdict = _verdict(message, DeadReason.INTERNAL_ERROR, {"exc_type": type(exc).__name__})
    # the one structured line for a bug (no message content: ids and the type only)
    log.error("unexpected error while delivering; dead-lettered",
              exc_type=type(exc).__name__, delivery_id=verdict.delivery_id,
              message_id=verdict.envelope.message_id if verdict.envelope else None,
              recipient=verdict.recipient)
    return verdict


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def consume_all(worker: Worker, *, idle_timeout: float = 1.0) -> dict[str, int]:
    """Run ``worker`` until its queues stay empty for ``idle_timeout`` seconds (demo, tests)."""
    with broker_errors("consuming"):
        worker.run(idle_timeout=idle_timeout)
    return dict(worker.counts)
