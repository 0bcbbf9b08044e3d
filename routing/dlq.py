"""The dead-letter queue: list, show and replay what could not be delivered.

Listing takes every dead letter without acknowledging it and then hands all of them back, so the
queue is unchanged (order aside). Replaying a dead letter passes it through the consent gate again
(stage ``replay``) -- a consent withdrawn meanwhile blocks it -- and republishes the released
envelope to its agency's queue, where the worker checks consent once more at delivery. A dead
letter is acknowledged (removed) only after its replacement was confirmed by the broker.
Nothing here prints or returns message content: categories and metadata only.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu.message import Message
from pydantic import ValidationError

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
    """One dead letter's metadata (never its content)."""

    id: str
    message_id: str | None
    sender: str | None
    recipient: str | None
    reason: str
    detail: dict[str, Any]
    dead_at: str | None
    attempt: int
    message_type: str | None
    categories: list[str]

    def as_report(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id, "message_id": self.message_id, "sender": self.sender,
            "recipient": self.recipient, "reason": self.reason, "detail": self.detail,
            "dead_at": self.dead_at, "attempt": self.attempt, "message_type": self.message_type,
            "categories": self.categories,
        }


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
    reason = str(headers.get("dead_reason") or (
        f"broker:{death[0].get('reason')}" if isinstance(death, list) and death else "unknown"))
    ident = str(headers.get("delivery_id") or message.properties.get("message_id") or "?")
    return DeadLetter(
        id=ident, message_id=_opt(headers.get("message_id")), sender=_opt(headers.get("sender")),
        recipient=_opt(headers.get("recipient")), reason=reason, detail=detail,
        dead_at=_opt(headers.get("dead_at")), attempt=int(headers.get("attempt") or 1),
        message_type=message_type, categories=categories,
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What replaying one dead letter did: ``requeued``, ``blocked`` or ``kept`` (and why)."""

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

    def list(self) -> builtins.list[DeadLetter]:
        """Every dead letter, oldest first."""
        with self._taken() as messages:
            return [_describe(m) for m in messages]

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
        """Replay the dead letters ``ids`` (None: all); see the module docstring."""
        wanted = None if ids is None else set(ids)
        outcomes: builtins.list[ReplayOutcome] = []
        publisher = self.routing.publisher()
        with self._taken() as messages:
            chosen = [m for m in messages if wanted is None or _describe(m).id in wanted]
            if wanted is not None:
                missing = wanted - {_describe(m).id for m in chosen}
                if missing:
                    raise NotFound(f"dead letter '{sorted(missing)[0]}' is not in the queue")
            for n, message in enumerate(chosen, start=1):
                outcomes.append(self._replay_one(message, publisher))
                if progress is not None:
                    progress(n, len(chosen))
        return outcomes

    def _replay_one(self, message: Message, publisher: Any) -> ReplayOutcome:
        letter = _describe(message)
        try:
            envelope = decode_envelope(message.body)
        except (ValidationError, ValueError):
            return ReplayOutcome(letter.id, "kept", "undecodable")
        recipient = envelope.recipients[0]
        routes = self.routing.routes
        hit = routes.route_for(envelope.sender, recipient, envelope.purpose, envelope.message_type)
        if hit is None:
            return ReplayOutcome(letter.id, "kept", "no_route")
        now = datetime.now(UTC)
        result = self.routing.gate.check_recipient(
            envelope, recipient, at=now, stage="replay", policies={recipient: hit.policy}
        )
        released = result.released.get(recipient)
        verdict = Verdict("replay", delivery_id=letter.id, recipient=recipient,
                          envelope=envelope)
        if released is None:
            message.ack()
            self._set_state(letter.id, "blocked", "replay_blocked")
            return ReplayOutcome(letter.id, "blocked", "consent")
        headers = {
            "delivery_id": letter.id, "message_id": envelope.message_id,
            "sender": envelope.sender, "recipient": recipient, "attempt": letter.attempt + 1,
            "queued_at": now.isoformat(), "replayed_from": letter.reason,
        }
        publisher.publish(result, recipient, headers=headers)
        self._set_state(letter.id, "queued", None)
        message.ack()
        audit_event(self.routing.gate, "dead_letter_replayed", verdict, stage="replay")
        log.info("dead letter replayed", message_id=envelope.message_id, recipient=recipient)
        return ReplayOutcome(letter.id, "requeued")

    def _set_state(self, ident: str, state: str, reason: str | None) -> None:
        with self.routing.db.session(immediate=True) as session:
            row = session.get(DeliveryRow, ident)
            if row is not None:
                row.state = state
                row.reason = reason
                row.updated_at = datetime.now(UTC)
