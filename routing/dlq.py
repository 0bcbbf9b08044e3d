"""The dead-letter queue: list, show and replay what could not be delivered.

Listing takes every dead letter without acknowledging it and then hands all of them back, so the
queue is unchanged (order aside). Copies of one message (same delivery id) are one row and are
replayed once. Replaying first looks at the delivery record: a message already delivered is not
sent again -- its copies are removed and the skipped replay is audited. Otherwise it passes the
consent gate again (stage ``replay``) -- a consent withdrawn meanwhile blocks it -- and the
released envelope is republished to its agency's queue, where the worker checks consent once more
at delivery. Dead letters are acknowledged (removed) only after their replacement was confirmed
by the broker; every replay (requeued, blocked by the gate's audited decision, skipped) is in the
audit trail.
Nothing here prints or returns message content: categories and metadata only.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kombu.message import Message
from pydantic import ValidationError
from sqlalchemy import select, update

from casebridge.codes import AuditKind, AuditStage, DeadReason, DeliveryState, ReplayResult
from casebridge.errors import NotFound
from casebridge.logging import get_logger
from casebridge.routing.pipeline import decode_envelope
from casebridge.routing.runtime import Routing
from casebridge.routing.store import DeliveryRow
from casebridge.routing.topology import broker_errors, connect, release
from casebridge.routing.worker import Verdict, audit_event

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead message (all its copies in the queue together); metadata, never content."""

    id: str
    message_id: str | None
    sender: str | None
    recipient: str | None
    reason: str
    detail: dict[str, Any]
    #: the last failure (``last_failure``; kept under this name for older readers)
    dead_at: str | None
    attempt: int
    message_type: str | None
    categories: list[str]
    #: copies of this message in the dead-letter queue (a worker restarted mid-dead-letter, a
    #: replay that failed again); they are listed, replayed and removed as one
    copies: int = 1
    first_failure: str | None = None
    #: delivery attempts recorded for it (pushes tried, over every replay); at least the copies
    attempts: int = 1

    def as_report(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id, "message_id": self.message_id, "sender": self.sender,
            "recipient": self.recipient, "reason": self.reason, "detail": self.detail,
            "dead_at": self.dead_at, "first_failure": self.first_failure,
            "last_failure": self.dead_at, "attempt": self.attempt, "attempts": self.attempts,
            "copies": self.copies, "message_type": self.message_type,
            "categories": self.categories,
        }


_BROKER_REASONS = {"delivery_limit": DeadReason.BROKER_DELIVERY_LIMIT,
                   "rejected": DeadReason.BROKER_REJECTED, "expired": DeadReason.BROKER_EXPIRED}


def _describe(message: Message) -> DeadLetter:
    headers = dict(message.headers or {})
    try:
        detail = json.loads(str(headers.get("dead_detail") or "{}"))
    except ValueError:
        detail = {}
    message_type, categories = None, []
    try:
        envelope = decode_envelope(message.body)
        message_type = str(envelope.message_type)
        categories = sorted(str(c) for c in envelope.categories)
    except (ValidationError, ValueError):
        pass
    death = headers.get("x-death")
    reason = str(headers.get("dead_reason") or "")
    if not reason:
        broker = death[0].get("reason") if isinstance(death, list) and death else None
        reason = str(_BROKER_REASONS.get(str(broker), DeadReason.UNKNOWN))
        if broker is not None:
            detail = {"broker_reason": str(broker), **detail}
    ident = str(headers.get("delivery_id") or message.properties.get("message_id") or "?")
    dead_at = _opt(headers.get("dead_at"))
    return DeadLetter(
        id=ident, message_id=_opt(headers.get("message_id")), sender=_opt(headers.get("sender")),
        recipient=_opt(headers.get("recipient")), reason=reason, detail=detail,
        dead_at=dead_at, attempt=int(headers.get("attempt") or 1),
        message_type=message_type, categories=categories, first_failure=dead_at,
    )


def _merge(copies: builtins.list[DeadLetter], recorded_attempts: int | None) -> DeadLetter:
    """One row for every copy of one message: the last failure's reason and detail."""
    ordered = sorted(copies, key=lambda d: d.dead_at or "")
    last = ordered[-1]
    times = [d.dead_at for d in ordered if d.dead_at]
    return replace(
        last, copies=len(copies), first_failure=times[0] if times else None,
        dead_at=times[-1] if times else None, attempt=max(d.attempt for d in copies),
        attempts=max(recorded_attempts or 0, len(copies)),
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What replaying one dead message did: ``requeued``, ``blocked``, ``kept`` or
    ``skipped_delivered`` (and why)."""

    id: str
    result: str
    reason: str | None = None


class DeadLetters:
    """Operations on the dead-letter queue of one :class:`Routing`."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    @contextmanager
    def _taken(self) -> Iterator[list[Message]]:
        """Every dead letter, taken without ack; whatever is not acked is handed back."""
        conn = connect(self.routing.url)
        taken: list[Message] = []
        try:
            with broker_errors("reading the dead-letter queue", conn):
                self.routing.topology.declare(conn)
                queue = self.routing.topology.dead_queue(conn.default_channel)
                while (message := queue.get(no_ack=False)) is not None:
                    taken.append(message)
            yield taken
        finally:
            with broker_errors("returning dead letters", conn):
                for message in taken:
                    if not message.acknowledged:
                        message.requeue()
            release(conn)

    def _grouped(
        self, messages: builtins.list[Message]
    ) -> dict[str, tuple[DeadLetter, builtins.list[Message]]]:
        """Messages by dead-letter id, in order of first appearance, each with its summary."""
        groups: dict[str, builtins.list[tuple[DeadLetter, Message]]] = {}
        for message in messages:
            letter = _describe(message)
            groups.setdefault(letter.id, []).append((letter, message))
        rows = self._rows(list(groups))
        return {
            ident: (_merge([d for d, _ in items], rows.get(ident, (None, None))[1]),
                    [m for _, m in items])
            for ident, items in groups.items()
        }

    def _rows(self, ids: builtins.list[str]) -> dict[str, tuple[str, int]]:
        """State and recorded attempts of these delivery ids."""
        if not ids:
            return {}
        with self.routing.db.session() as session:
            found = session.execute(
                select(DeliveryRow.delivery_id, DeliveryRow.state, DeliveryRow.attempts)
                .where(DeliveryRow.delivery_id.in_(ids))
            ).all()
        return {row[0]: (row[1], row[2]) for row in found}

    def list(self) -> builtins.list[DeadLetter]:
        """One row per dead message, oldest first."""
        with self._taken() as messages:
            return [letter for letter, _ in self._grouped(messages).values()]

    def show(self, ident: str) -> DeadLetter:
        """One dead letter by id; NotFound if it is not in the queue."""
        for letter in self.list():
            if letter.id == ident:
                return letter
        raise NotFound(f"dead letter '{ident}' is not in the dead-letter queue")

    def replay(
        self, ids: Iterable[str] | None = None, *,
        progress: Callable[[int, int], None] | None = None,
    ) -> builtins.list[ReplayOutcome]:
        """Replay the dead messages ``ids`` (None: all), each once; see the module docstring."""
        wanted = None if ids is None else set(ids)
        outcomes: builtins.list[ReplayOutcome] = []
        publisher = self.routing.publisher()
        with self._taken() as messages:
            groups = self._grouped(messages)
            chosen = [g for ident, g in groups.items() if wanted is None or ident in wanted]
            if wanted is not None:
                missing = wanted - set(groups)
                if missing:
                    raise NotFound(f"dead letter '{sorted(missing)[0]}' is not in the queue")
            for n, (letter, copies) in enumerate(chosen, start=1):
                outcomes.append(self._replay_one(letter, copies, publisher))
                if progress is not None:
                    progress(n, len(chosen))
        return outcomes

    def _replay_one(
        self, letter: DeadLetter, copies: builtins.list[Message], publisher: Any
    ) -> ReplayOutcome:
        message = copies[-1]
        try:
            envelope = decode_envelope(message.body)
        except (ValidationError, ValueError):
            return ReplayOutcome(letter.id, str(ReplayResult.KEPT), str(DeadReason.UNDECODABLE))
        recipient = envelope.recipients[0]
        verdict = Verdict("replay", delivery_id=letter.id, recipient=recipient,
                          envelope=envelope)
        state = self._rows([letter.id]).get(letter.id, (None, 0))[0]
        if state == DeliveryState.DELIVERED:
            # delivered meanwhile (or before it was dead-lettered again): never send it twice
            audit_event(self.routing.gate, str(AuditKind.REPLAY_SKIPPED),
                        replace(verdict, reason=str(ReplayResult.SKIPPED_DELIVERED)),
                        stage=str(AuditStage.REPLAY))
            _ack(copies)
            log.info("replay skipped: already delivered", message_id=envelope.message_id,
                     recipient=recipient, copies=len(copies))
            return ReplayOutcome(letter.id, str(ReplayResult.SKIPPED_DELIVERED), "delivered")
        routes = self.routing.routes
        hit = routes.route_for(envelope.sender, recipient, envelope.purpose, envelope.message_type)
        if hit is None:
            return ReplayOutcome(letter.id, str(ReplayResult.KEPT), str(DeadReason.NO_ROUTE))
        now = datetime.now(UTC)
        result = self.routing.gate.check_recipient(
            envelope, recipient, at=now, stage=str(AuditStage.REPLAY),
            policies={recipient: hit.policy}
        )
        released = result.released.get(recipient)
        if released is None:
            self._set_state(letter.id, DeliveryState.BLOCKED, DeadReason.REPLAY_BLOCKED)
            _ack(copies)
            return ReplayOutcome(letter.id, str(ReplayResult.BLOCKED), "consent")
        headers = {
            "delivery_id": letter.id, "message_id": envelope.message_id,
            "sender": envelope.sender, "recipient": recipient, "attempt": letter.attempt + 1,
            "queued_at": now.isoformat(), "replayed_from": letter.reason,
        }
        # queued before the publish: a worker quick enough to deliver it first must not have
        # its delivered mark overwritten
        self._set_state(letter.id, DeliveryState.QUEUED, None)
        publisher.publish(result, recipient, headers=headers)
        _ack(copies)
        audit_event(self.routing.gate, str(AuditKind.DEAD_LETTER_REPLAYED),
                    replace(verdict, reason=str(ReplayResult.REQUEUED)),
                    stage=str(AuditStage.REPLAY))
        log.info("dead letter replayed", message_id=envelope.message_id, recipient=recipient,
                 copies=len(copies))
        return ReplayOutcome(letter.id, str(ReplayResult.REQUEUED))

    def _set_state(self, ident: str, state: str, reason: str | None) -> None:
        with self.routing.db.session(immediate=True) as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id == ident,
                       DeliveryRow.state != str(DeliveryState.DELIVERED))
                .values(state=str(state), reason=None if reason is None else str(reason),
                        updated_at=datetime.now(UTC))
            )


def _ack(copies: builtins.list[Message]) -> None:
    for message in copies:
        message.ack()
