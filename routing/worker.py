"""Workers: consume an agency's queue, re-check consent, render, deliver, then acknowledge.

:class:`DeliveryService` decides the fate of one broker message and has no broker code:

1. decode the envelope (undecodable → dead letter ``undecodable``);
2. if its delivery id is already ``delivered``, it is a redelivery: acknowledged, not delivered;
3. **pass the consent gate again** (stage ``delivery``): a consent withdrawn while the message
   waited blocks it now, and the gate audits that;
4. render the recipient's native format with its adapter (cannot render → ``render_failed``);
5. push it (retried) or put it in the agency's outbox, and mark it delivered -- in the same
   transaction a delivered referral starts being tracked, a delivered plan's dated measures are
   recorded for follow-up, and a delivered status update advances the referral it answers
   (:mod:`casebridge.routing.status`).

:class:`Worker` is the kombu loop around it: bounded prefetch, manual ack only after step 5 (or
after a dead letter was audited and confirmed by the broker), reconnect when the broker goes
away, pause while the store is unreachable (see :class:`Worker`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from kombu import Consumer
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.message import Message
from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from casebridge.canonical_model import MessageType, TransferEnvelope
from casebridge.codes import AuditKind, AuditStage, DeadReason
from casebridge.consent.gate import ConsentGate
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
from casebridge.routing.delivery import Outbox, PushClient
from casebridge.routing.feedback import Feedback, feedback_envelope, feedback_for
from casebridge.routing.pipeline import Publisher, decode_envelope
from casebridge.routing.preview import render_for
from casebridge.routing.routes import PushDelivery, RouteTable
from casebridge.routing.status import apply_status_update, record_plan, record_referral
from casebridge.routing.store import DeliveryRow, delivery_id
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
_DELIVERY_STATE = select(DeliveryRow.state).where(DeliveryRow.delivery_id == bindparam("did"))


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


class DeliveryService:
    """The delivery-time path of one message (no broker code; see the module docstring)."""

    def __init__(
        self, *, routes: RouteTable, db: Database, gate: ConsentGate,
        push: PushClient | None = None, clock: Callable[[], datetime] = _now,
    ) -> None:
        self.routes = routes
        self.db = db
        self.gate = gate
        self.push = push or PushClient()
        self.clock = clock
        #: Pushes the recipient accepted whose delivery the store could not record (see
        #: :meth:`_record_push`), by delivery id; the worker holds such a message and hands it
        #: back here once the store answers.
        self._unrecorded: dict[str, _Pushed] = {}

    def _state(self, did: str) -> str | None:
        with self.db.snapshot_read() as conn:
            state: str | None = conn.scalar(_DELIVERY_STATE, {"did": did})
        return state

    def _mark(self, envelope: TransferEnvelope, did: str, state: str, *, session: Any = None,
              reason: str | None = None, detail: dict[str, Any] | None = None,
              attempts: int = 0) -> None:
        now = self.clock()

        def write(s: Any) -> None:
            row = s.get(DeliveryRow, did)
            if row is None:
                row = DeliveryRow(
                    delivery_id=did, message_id=envelope.message_id, sender=envelope.sender,
                    recipient=envelope.recipients[0], message_type=str(envelope.message_type),
                    state=state, attempts=0, queued_at=None, updated_at=now,
                )
                s.add(row)
            row.state = state
            row.attempts = (row.attempts or 0) + attempts
            row.updated_at = now
            row.reason = reason
            row.detail = json.dumps(detail, ensure_ascii=False) if detail else None

        if session is not None:
            write(session)
        else:
            with self.db.session(immediate=True) as s:
                write(s)

    def process(self, body: bytes, headers: Mapping[str, Any] | None = None) -> Verdict:
        """Decide, render and deliver one message body; never raises for a message's fault.

        ``headers`` (the broker message's) supply the time the message was queued, which is
        when a referral counts as requested.
        """
        if (headers or {}).get(feedback_module.HEADER):
            return self._feedback(body)
        try:
            envelope = decode_envelope(body)
        except (ValidationError, ValueError):
            return Verdict("dead", reason="undecodable")
        if len(envelope.recipients) != 1:
            return Verdict("dead", reason="not_single_recipient", envelope=envelope)
        recipient = envelope.recipients[0]
        did = delivery_id(envelope.sender, envelope.message_id, recipient)
        base: dict[str, Any] = {"delivery_id": did, "recipient": recipient, "envelope": envelope}
        if self._state(did) in DONE_STATES:
            log.info("redelivery recognised", message_id=envelope.message_id,
                     recipient=recipient)
            self._unrecorded.pop(did, None)
            return Verdict("duplicate", **base)
        pushed = self._unrecorded.get(did)
        if pushed is not None:
            # pushed already, not yet recorded (the store went away): the data has left, so it
            # is recorded as delivered now, neither pushed nor decided a second time
            return self._record_push(pushed, base)
        hit = self.routes.route_for(
            envelope.sender, recipient, envelope.purpose, envelope.message_type
        )
        if hit is None:
            self._mark(envelope, did, "dead", reason="no_route")
            return Verdict("dead", reason="no_route", **base)
        result = self.gate.check_recipient(
            envelope, recipient, at=self.clock(), stage="delivery",
            policies={recipient: hit.policy},
        )
        released = result.released.get(recipient)
        if released is None:
            reasons = sorted({str(w.reason) for d in result.decisions.decisions
                              for w in d.withheld})
            reason = "withdrawn" if "withdrawn" in reasons else (reasons[0] if reasons else "block")
            self._mark(envelope, did, "blocked", reason=reason,
                       detail={"withheld_reasons": reasons})
            log.info("blocked at delivery", message_id=envelope.message_id,
                     recipient=recipient, reason=reason)
            return Verdict("blocked", reason=reason, detail={"withheld_reasons": reasons}, **base)
        queued_at = _queued_at(headers) or self.clock()
        return self._deliver(released, did, base, queued_at=queued_at,
                             response_days=hit.response_days, client_id=result.client_id)

    def _feedback(self, body: bytes) -> Verdict:
        """Deliver a report on a blocked or dead copy to its sender (see routing.feedback).

        It carries no client data, so it is rendered and delivered without a consent check;
        nothing of it is tracked as a referral or status.
        """
        try:
            feedback = Feedback.model_validate_json(body)
            envelope = feedback_envelope(feedback, self.routes)
        except (ValidationError, ValueError, CasebridgeError):
            return Verdict("dead", reason="undecodable")
        did = delivery_id(envelope.sender, envelope.message_id, feedback.sender)
        base: dict[str, Any] = {"delivery_id": did, "recipient": feedback.sender,
                                "envelope": envelope}
        if self._state(did) in DONE_STATES:
            self._unrecorded.pop(did, None)
            return Verdict("duplicate", **base)
        if (pushed := self._unrecorded.get(did)) is not None:
            return self._record_push(pushed, base)
        return self._deliver(envelope, did, base, queued_at=self.clock(), response_days=0,
                             client_id=None, track=False)

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

    def _delivered(self, session: Any, released: TransferEnvelope, did: str, *,
                   attempts: int, queued_at: datetime, response_days: int,
                   client_id: str | None, track: bool = True) -> str | None:
        """Mark delivered and record the referral, the plan's dated measures, or apply the
        status update (one commit); ``track=False`` (feedback) only marks it delivered."""
        self._mark(released, did, "delivered", session=session, attempts=attempts)
        if not track:
            return None
        record_plan(session, released, released.recipients[0], client_id=client_id,
                    routes=self.routes, at=self.clock())
        if released.message_type == MessageType.REFERRAL:
            record_referral(session, released, list(released.recipients), at=queued_at,
                            response_days=response_days)
        elif released.message_type == MessageType.STATUS_UPDATE:
            return apply_status_update(session, released, at=self.clock())
        return None

    def _deliver(self, released: TransferEnvelope, did: str, base: dict[str, Any], *,
                 queued_at: datetime, response_days: int, client_id: str | None,
                 track: bool = True) -> Verdict:
        recipient = released.recipients[0]
        agency = self.routes.agency(recipient)
        try:
            native, media_type = render_for(self.routes, released)
        except AdapterError as exc:
            detail = {"error": exc.code, "problems": exc.lines()[:5]}
            self._mark(released, did, "dead", reason="render_failed", detail=detail)
            return Verdict("dead", reason="render_failed", detail=detail, **base)
        if isinstance(agency.delivery, PushDelivery):
            return self._push(agency.delivery, released, native, media_type, did, base,
                              queued_at=queued_at, response_days=response_days,
                              client_id=client_id, track=track)
        try:
            with self.db.session(immediate=True) as session:
                Outbox.put(
                    session, agency=recipient, delivery_id=did, message_id=released.message_id,
                    sender=released.sender, message_type=str(released.message_type),
                    media_type=media_type, body=native, at=self.clock(),
                )
                effect = self._delivered(session, released, did, attempts=1,
                                         queued_at=queued_at, response_days=response_days,
                                         client_id=client_id, track=track)
        except IntegrityError:
            return Verdict("duplicate", **base)
        return Verdict("delivered", detail={"mode": "pull", "status_effect": effect}, **base)

    def _push(self, target: PushDelivery, released: TransferEnvelope, native: bytes,
              media_type: str, did: str, base: dict[str, Any], *, queued_at: datetime,
              response_days: int, client_id: str | None, track: bool = True) -> Verdict:
        retry = self.routes.retry_policy(self.routes.agency(released.recipients[0]))
        try:
            result = self.push.push(
                target, native, media_type=media_type, delivery_id=did,
                message_id=released.message_id, sender=released.sender, retry=retry,
            )
        except RecipientRefused as exc:
            detail = {"status_code": exc.status_code, "answer": exc.answer}
            self._mark(released, did, "dead", reason="refused", detail=detail)
            return Verdict("dead", reason="refused", detail=detail, **base)
        except RetryableDeliveryError as exc:
            detail = {"last_error": exc.message, "attempts": retry.max_attempts}
            self._mark(released, did, "dead", reason="retries_exhausted", detail=detail,
                       attempts=retry.max_attempts)
            return Verdict("dead", reason="retries_exhausted", detail=detail, **base)
        return self._record_push(_Pushed(released, did, result.status_code, result.attempts,
                                         queued_at, response_days, client_id, track), base)

    def _record_push(self, pushed: _Pushed, base: dict[str, Any]) -> Verdict:
        """Record an accepted push as delivered; if the store is unreachable, remember the push
        so that the held message, handled again, is recorded without a second push."""
        try:
            with self.db.session(immediate=True) as session:
                effect = self._delivered(
                    session, pushed.released, pushed.delivery_id, attempts=pushed.attempts,
                    queued_at=pushed.queued_at, response_days=pushed.response_days,
                    client_id=pushed.client_id, track=pushed.track)
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

    With ``threads > 1`` messages are processed by a thread pool while this thread keeps the
    broker channel (kombu channels are not thread-safe: acks, requeues and dead letters happen
    here only). Consent checks, store round trips and HTTP pushes mostly wait on I/O, so a few
    threads overlap those waits; the prefetch bounds the messages in flight.

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
        agencies: Iterable[str] | None = None, prefetch: int = 16, threads: int = 1,
        on_verdict: Callable[[Verdict], None] | None = None, state_file: Path | None = None,
    ) -> None:
        self.url = url
        #: where :attr:`state` is written for a readiness probe (``casebridge-healthcheck``)
        self.state_file = state_file
        self.topology = topology
        self.service = service
        self.agencies = list(agencies) if agencies else list(topology.agencies)
        self.prefetch = max(prefetch, threads)
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

    def _process(self, message: Message) -> Verdict | str:
        """The fate of one message, ``requeue`` (broker trouble) or ``store_down`` (any
        thread); never raises."""
        try:
            return self.service.process(message.body, message.headers)
        except BrokerUnavailable as exc:
            log.warning("broker unavailable while delivering; requeued",
                        exc_type=type(exc).__name__)
            return _REQUEUE
        except Exception as exc:  # noqa: BLE001 - one message must never stop the worker
            if is_store_outage(exc):
                log.warning("store unreachable while delivering; holding the message",
                            exc_type=type(exc).__name__)
                return _STORE_DOWN
            return _failed(message, exc)

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
        """Process one message (or hand it to the pool) and ack, dead-letter or requeue it."""
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
        if self._pool is None:
            self._finish_safely(message, self._process(message))
            return
        self._inflight += 1
        future = self._pool.submit(self._process, message)

        def done(f: Future[Verdict | str], m: Message = message) -> None:
            self._done.put((m, f.result()))

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

    def _pause_for_store(self, consumer: Consumer) -> None:
        """Stop taking messages until the store answers, then handle the held ones again."""
        consumer.cancel()
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
            for message in held:
                if self._held:  # the store went away again: keep the rest for later
                    self._held.append(message)
                else:
                    self._finish_safely(message, self._process(message))
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
                    self._collect()
                    if self._held:
                        self._pause_for_store(consumer)
                    if self.stop_event.is_set() or (max_messages is not None and (
                        sum(self.counts.values()) - handled_at_start >= max_messages
                    )):
                        self._collect(wait=True)
                        return True
                    try:
                        connection.drain_events(timeout=0.02 if self._inflight else 0.25)
                    except TimeoutError:
                        if not self._inflight and idle_timeout is not None and (
                            time.monotonic() - self._last_message > idle_timeout
                        ):
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
        self.service.push.close()


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
