"""The inbound pipeline: native bytes → envelopes → route check → consent gate → broker.

:meth:`Router.submit` is what the gateway calls for every message an agency posts. For each
envelope the adapter produced it checks the route (NoRoute at the door), passes the envelope
through :class:`~casebridge.consent.gate.ConsentGate` (decided and audited per recipient), and
publishes one persistent message per *released* recipient -- the minimised envelope the gate
handed out, never the original. It returns only after the broker confirmed every publish, so a
returned :class:`Accepted` means "nothing of this will be lost".

The released envelopes are written to the outbox (``routing_publications``) in the transaction
of the decision's audit entries, then published by :class:`~casebridge.routing.relay.Relay`.
If publishing fails the call raises BrokerUnavailable, but the decision stands: the rows wait for
the gateway's sweeper or for the sender's repeat, which publishes them without deciding again.

Delivery state, referrals and their status are written by the worker in the same transaction
that records a delivery.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Producer
from sqlalchemy import Connection as DbConnection
from sqlalchemy import insert, select

from casebridge.adapters import get_adapter
from casebridge.canonical_model import MessageType, TransferEnvelope
from casebridge.consent.decision import MessageDecisions
from casebridge.consent.gate import ConsentGate, GateResult
from casebridge.db import Database
from casebridge.errors import BrokerUnavailable, Forbidden, NoRoute
from casebridge.logging import get_logger
from casebridge.routing import feedback as feedback_module
from casebridge.routing.feedback import Feedback
from casebridge.routing.relay import PublishBatcher, Relay
from casebridge.routing.routes import RecipientRoute, RouteTable
from casebridge.routing.store import PublicationRow, delivery_id
from casebridge.routing.topology import Topology, broker_errors, release

log = get_logger(__name__)

CONTENT_TYPE = "application/vnd.casebridge.envelope+json"
_INSERT_PUBLICATION = insert(PublicationRow)
#: Retries of one publish across a lost connection (kombu reconnects and republishes).
PUBLISH_RETRY = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 2.0}
#: Seconds to wait for the broker's confirms of one batch; an unconfirmed row stays pending.
CONFIRM_TIMEOUT = 10.0


class Unconfirmed(BrokerUnavailable):
    """The broker did not confirm a publish in time (the row stays pending)."""


class Refused(BrokerUnavailable):
    """The broker nacked a publish (e.g. a queue at its length limit; the row stays pending)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One row of the inbound outbox to publish: its id and what the broker message carries.

    Built only from a ``routing_publications`` row (read, or just written in the transaction of
    the gate's decision), so nothing reaches a queue that did not come out of the gate.
    """

    row_id: int
    delivery_id: str
    recipient: str
    body: bytes
    headers: Mapping[str, Any]

    @classmethod
    def of(cls, row: PublicationRow) -> Outgoing:
        """The outgoing message of a pending row."""
        if row.body is None:
            raise ValueError(f"publication {row.id} was already published")
        return cls(row.id, row.delivery_id, row.recipient, row.body, json.loads(row.headers))


class _Confirms:
    """A channel of its own in confirm mode: publishes many messages, then awaits their confirms.

    RabbitMQ numbers the publishes of a confirm-mode channel 1, 2, 3, … and acks or nacks each
    (``multiple`` covering every lower number), so a batch costs one wait for the broker, not
    one per message. The channel is used only here, so the numbering is exactly ours.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.channel.confirm_select()
        # py-amqp would otherwise select confirms again and wait per publish (confirm_publish)
        self.channel._confirm_selected = True
        self._next_tag = 1
        #: delivery tag -> index in the current batch's results
        self._waiting: dict[int, int] = {}
        self._results: list[BrokerUnavailable | None] = []
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, tag: int, multiple: bool, outcome: BrokerUnavailable | None) -> None:
        tags = [t for t in self._waiting if t <= tag] if multiple else [tag]
        for t in tags:
            index = self._waiting.pop(t, None)
            if index is not None:
                self._results[index] = outcome

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, None)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, Refused("the broker refused the message (nack)"))

    def publish(
        self, topology: Topology, items: Sequence[Outgoing], timeout: float
    ) -> list[BrokerUnavailable | None]:
        unconfirmed = Unconfirmed("no broker confirm in time")
        self._results = [unconfirmed] * len(items)
        self._waiting = {}
        exchange = topology.exchange.name
        channel = self.channel
        for index, item in enumerate(items):
            message = channel.prepare_message(
                item.body, None, CONTENT_TYPE, "binary", dict(item.headers),
                {"delivery_mode": 2, "message_id": item.delivery_id})
            channel._basic_publish(message, exchange=exchange,
                                   routing_key=topology.routing_key(item.recipient))
            self._waiting[self._next_tag] = index
            self._next_tag += 1
        deadline = time.monotonic() + timeout
        while self._waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                break
        self._waiting = {}  # a confirm arriving later changes nothing: the row stays pending
        return self._results


def encode_envelope(envelope: TransferEnvelope) -> bytes:
    """The message body: the envelope's canonical JSON (sorted keys, UTF-8)."""
    return json.dumps(
        envelope.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def decode_envelope(body: bytes) -> TransferEnvelope:
    """The inverse of :func:`encode_envelope` (validates the canonical model)."""
    return TransferEnvelope.model_validate_json(body, strict=False)


class Publisher:
    """Publishes routed messages, persistent and broker-confirmed, on one connection."""

    def __init__(self, connection: Connection, topology: Topology) -> None:
        self.connection = connection
        self.topology = topology
        with broker_errors("connecting to the broker", connection):
            topology.declare(connection)
            self.producer = Producer(connection.default_channel, exchange=topology.exchange)
        # Recipients whose queue this publisher declared. kombu remembers declared entities as
        # well, but only after a retry wrapper per publish that cost as much as the publish.
        self._declared: set[str] = set()
        self._confirms: _Confirms | None = None
        #: RabbitMQ (confirms); the embedded transports store a message when publish returns
        self.amqp = connection.transport.driver_type == "amqp"

    def publish(
        self, result: GateResult, recipient: str, *, headers: Mapping[str, Any]
    ) -> None:
        """Publish what the consent gate released for ``recipient``; returns once confirmed.

        It takes the gate's result, not an envelope, so that nothing can be published for a
        recipient that did not come out of the gate.
        """
        envelope = result.released.get(recipient)
        if envelope is None or envelope.recipients != [recipient]:
            raise ValueError(f"the consent gate released nothing for '{recipient}'")
        self._send(encode_envelope(envelope), recipient, headers,
                   str(headers.get("delivery_id", envelope.message_id)))

    def publish_row(self, row: PublicationRow) -> None:
        """Publish one row of the inbound outbox; returns once confirmed.

        Such a row is written only in the transaction of the gate's decision, with the envelope
        the gate released for that recipient (see :meth:`Router.route`).
        """
        item = Outgoing.of(row)
        self._send(item.body, item.recipient, item.headers, item.delivery_id)

    def publish_many(
        self, items: Sequence[Outgoing], *, timeout: float = CONFIRM_TIMEOUT
    ) -> list[BrokerUnavailable | None]:
        """Publish outbox rows and await their confirms together: per item, None once the
        broker confirmed it, or why not (nack, no confirm within ``timeout``).

        A lost connection is re-established and the items not confirmed yet are published
        again (kombu's retry policy of :data:`PUBLISH_RETRY`, as for a single publish); once
        that is used up, those items carry the BrokerUnavailable. The embedded transports have
        no confirms: a publish that returned is stored.
        """
        if not items:
            return []
        if not self.amqp:
            results: list[BrokerUnavailable | None] = []
            for item in items:
                self._send(item.body, item.recipient, item.headers, item.delivery_id)
                results.append(None)
            return results
        final: list[BrokerUnavailable | None] = [Unconfirmed("not published")] * len(items)
        todo = list(range(len(items)))
        delay = PUBLISH_RETRY["interval_start"]
        for attempt in range(int(PUBLISH_RETRY["max_retries"]) + 1):
            confirms = self._confirms
            try:
                with broker_errors("publishing", self.connection):
                    if confirms is None:
                        if not self.connection.connected:
                            # released after a failed attempt (see _reconnect) and not yet
                            # back: a channel of it would fail with AttributeError, not as an
                            # outage, and the publisher would never recover
                            self.connection.ensure_connection(max_retries=1)
                        confirms = self._confirms = _Confirms(self.connection)
                    got = confirms.publish(self.topology, [items[i] for i in todo], timeout)
                for i, result in zip(todo, got, strict=True):
                    final[i] = result
                return final
            except BrokerUnavailable as exc:
                # what was confirmed before the connection broke stays confirmed
                partial = confirms._results if confirms is not None else []
                for i, result in zip(todo, partial, strict=False):
                    final[i] = None if result is None else exc
                for i in todo[len(partial):]:
                    final[i] = exc
                todo = [i for i in todo if final[i] is not None]
                self._confirms = None
                if attempt == int(PUBLISH_RETRY["max_retries"]):
                    return final
                time.sleep(delay)
                delay = min(delay + PUBLISH_RETRY["interval_step"], PUBLISH_RETRY["interval_max"])
                self._reconnect()
        return final

    def _reconnect(self) -> None:
        """A fresh connection after a failure (the next publish opens a confirm channel)."""
        release(self.connection)  # the old connection is gone either way
        try:
            self.connection.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001 - the next attempt reports it
            log.info("broker reconnect failed", exc_type=type(exc).__name__)

    def _send(
        self, body: bytes, recipient: str, headers: Mapping[str, Any], message_id: str
    ) -> None:
        topo = self.topology
        with broker_errors("publishing", self.connection):
            self.producer.publish(
                body,
                exchange=topo.exchange,
                routing_key=topo.routing_key(recipient),
                content_type=CONTENT_TYPE,
                content_encoding="binary",
                delivery_mode=2,
                headers=dict(headers),
                message_id=message_id,
                declare=[] if recipient in self._declared else [topo.queue(recipient)],
                retry=True,
                retry_policy=PUBLISH_RETRY,
            )
        self._declared.add(recipient)

    def publish_feedback(self, feedback: Feedback) -> None:
        """Queue the report on a blocked or dead copy for its sender; returns once confirmed.

        A Feedback holds ids and a reason code only, never data (see routing.feedback), which
        is why it needs no gate result.
        """
        topo = self.topology
        headers = {feedback_module.HEADER: 1, "message_id": feedback.feedback_id,
                   "sender": feedback.recipient, "recipient": feedback.sender, "attempt": 1,
                   "queued_at": feedback.at.isoformat()}
        with broker_errors("publishing feedback", self.connection):
            self.producer.publish(
                feedback.model_dump_json().encode(), exchange=topo.exchange,
                routing_key=topo.routing_key(feedback.sender),
                content_type=feedback_module.CONTENT_TYPE, content_encoding="binary",
                delivery_mode=2, headers=headers, message_id=feedback.feedback_id,
                declare=[topo.queue(feedback.sender)], retry=True, retry_policy=PUBLISH_RETRY,
            )

    def publish_dead(
        self, body: bytes, *, recipient: str, headers: Mapping[str, Any],
        content_type: str = CONTENT_TYPE,
    ) -> None:
        """Put a message that could not be delivered into the dead-letter queue (never to a
        recipient's queue), unchanged, with its reason in ``headers``."""
        topo = self.topology
        with broker_errors("publishing a dead letter", self.connection):
            self.producer.publish(
                body, exchange=topo.dead_exchange, routing_key=topo.dead_routing_key(recipient),
                content_type=content_type, content_encoding="binary", delivery_mode=2,
                headers=dict(headers), declare=[topo.dead_queue], retry=True,
                retry_policy=PUBLISH_RETRY,
            )


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What happened to one recipient of one inbound message."""

    recipient: str
    outcome: str
    queued: bool
    delivery_id: str | None
    released: list[str]
    withheld: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The result of routing one envelope: per recipient, queued or withheld and why."""

    message_id: str
    sender: str
    message_type: str
    correlation_id: str | None
    recipients: list[RecipientOutcome]
    audit_seqs: tuple[int, ...]
    status_effect: str | None = None

    def as_report(self) -> dict[str, Any]:
        """JSON-ready form for the gateway's answer to the sender (no payload)."""
        return {
            "message_id": self.message_id,
            "sender": self.sender,
            "message_type": self.message_type,
            "correlation_id": self.correlation_id,
            "status_effect": self.status_effect,
            "recipients": [
                {"recipient": r.recipient, "outcome": r.outcome, "queued": r.queued,
                 "delivery_id": r.delivery_id, "released": r.released, "withheld": r.withheld}
                for r in self.recipients
            ],
        }


def _now() -> datetime:
    return datetime.now(UTC)


def admit(
    routes: RouteTable, envelopes: list[TransferEnvelope], *, system: str
) -> list[tuple[TransferEnvelope, dict[str, RecipientRoute]]]:
    """The door's route checks for every message of a file, before any of it is decided.

    Each sender must use ``system`` and a route must admit every recipient (NoRoute otherwise).
    The gateway, ``casebridge decide`` and the previews all pass through here, so a dry run
    refuses exactly what the gateway refuses.
    """
    checked = []
    for envelope in envelopes:
        agency = routes.agency(envelope.sender)
        if agency.system != system:
            raise NoRoute(
                f"message {envelope.message_id}: sender '{envelope.sender}' uses system "
                f"'{agency.system}', not '{system}'"
            )
        checked.append((envelope, routes.check(envelope)))
    return checked


class Router:
    """Inbound routing: the one path from an agency's bytes to the recipients' queues."""

    def __init__(
        self, *, routes: RouteTable, db: Database, gate: ConsentGate, publisher: Publisher,
        clock: Callable[[], datetime] = _now, batcher: PublishBatcher | None = None,
    ) -> None:
        self.routes = routes
        self.db = db
        self.gate = gate
        self.publisher = publisher
        self.clock = clock
        self.relay = Relay(db, publisher, batcher=batcher)

    def parse(
        self, raw: bytes, *, system: str, sender: str | None = None, source: str = "<input>",
    ) -> list[tuple[TransferEnvelope, dict[str, RecipientRoute]]]:
        """Parse and route-check every message of ``raw`` before any of it is decided."""
        envelopes = get_adapter(system).parse(raw, source=source)
        for envelope in envelopes:
            if sender is not None and envelope.sender != sender:
                raise Forbidden(
                    f"message {envelope.message_id} names sender '{envelope.sender}' but was "
                    f"posted by '{sender}'; an agency may only send as itself"
                )
        return admit(self.routes, envelopes, system=system)

    def submit(
        self, raw: bytes, *, system: str, sender: str | None = None, source: str = "<input>",
    ) -> list[Accepted]:
        """Route every message of ``raw`` (one native file); see the module docstring."""
        return [self.route(env, hits) for env, hits in self.parse(
            raw, system=system, sender=sender, source=source)]

    def route(
        self, envelope: TransferEnvelope, hits: dict[str, RecipientRoute] | None = None, *,
        along: Callable[[DbConnection, Accepted], None] | None = None,
        then: Callable[[DbConnection, Accepted], None] | None = None,
        new: bool = False,
    ) -> Accepted:
        """Gate one envelope whose route was checked (or is checked now), then publish it.

        In the transaction of the inbound audit entries go the released envelopes (the outbox,
        ``routing_publications``) and ``along(conn, accepted)`` -- the gateway's idempotency
        claim with the answer; if ``along`` raises, nothing is audited or queued. Then the relay
        publishes the rows just written and returns once the broker confirmed each of them
        (BrokerUnavailable otherwise: the decision stands and the rows wait for a relay);
        ``then(conn, accepted)`` runs in the transaction that marks them published (not at all
        when nothing was queued).

        ``new``: the caller guarantees that no row of this message waits in the outbox (the
        gateway's claim of a message id not released before), which saves reading for one.
        """
        hits = hits if hits is not None else self.routes.check(envelope)
        at = self.clock()
        effect = None
        if envelope.message_type == MessageType.STATUS_UPDATE:
            # applied to its referral when delivered to the referrer (see routing.status)
            effect = "pending"
        written: list[Outgoing] = []

        def record(conn: DbConnection, decisions: MessageDecisions,
                   released: Mapping[str, TransferEnvelope]) -> None:
            queued = {r: delivery_id(envelope.sender, envelope.message_id, r)
                      for r in released}
            if along is not None:  # first: a lost claim race must not meet our own rows
                along(conn, _accepted(envelope, decisions, queued,
                                      _effect(effect, queued), ()))
            written[:] = self._queue(conn, envelope, released, queued, at=at, new=new)

        result = self.gate.check(
            envelope, at=at, stage="inbound", policies=self.routes.policies(hits), along=record,
        )
        queued = {r: delivery_id(envelope.sender, envelope.message_id, r)
                  for r in result.released}
        accepted = _accepted(envelope, result.decisions, queued, _effect(effect, queued),
                             result.audit_seqs)
        finish = None if then is None or not queued else (lambda conn: then(conn, accepted))
        if new or not queued:
            # what this call wrote is all there is of the message: publish it from memory
            self.relay.publish_message(envelope.sender, envelope.message_id, rows=written,
                                       then=finish)
        else:
            # also what an earlier route of the same message left pending
            self.relay.publish_message(envelope.sender, envelope.message_id, then=finish)
        log.info("message routed", message_id=envelope.message_id, sender=envelope.sender,
                 recipients=sorted(queued), count=len(queued))
        return accepted

    @staticmethod
    def _queue(
        conn: DbConnection, envelope: TransferEnvelope,
        released: Mapping[str, TransferEnvelope], queued: Mapping[str, str], *, at: datetime,
        new: bool = False,
    ) -> list[Outgoing]:
        """Write the released envelopes into the outbox (the caller's transaction); the rows
        written, to publish."""
        # A message routed again while its publication is still pending is in the outbox once
        # (``casebridge route`` twice); once published, routing it again queues it again (the
        # sender resent it after a block at delivery; the worker skips a delivered id).
        waiting: set[str] = set() if new or not queued else set(conn.scalars(
            select(PublicationRow.delivery_id).where(
                PublicationRow.delivery_id.in_(list(queued.values())),
                PublicationRow.published_at.is_(None))))
        rows: list[dict[str, Any]] = []
        all_headers: list[dict[str, Any]] = []
        for recipient, copy in released.items():
            did = queued[recipient]
            if did in waiting:
                continue
            headers = {"delivery_id": did, "message_id": envelope.message_id,
                       "sender": envelope.sender, "recipient": recipient, "attempt": 1,
                       "queued_at": at.isoformat()}
            all_headers.append(headers)
            rows.append({"delivery_id": did, "sender": envelope.sender,
                         "message_id": envelope.message_id, "recipient": recipient,
                         "body": encode_envelope(copy), "headers": json.dumps(headers),
                         "created_at": at, "published_at": None, "failures": 0})
        if not rows:
            return []
        ids = conn.scalars(_INSERT_PUBLICATION.returning(PublicationRow.id,
                                                         sort_by_parameter_order=True), rows)
        return [Outgoing(row_id, row["delivery_id"], row["recipient"], row["body"], headers)
                for row_id, row, headers in zip(ids, rows, all_headers, strict=True)]


def _effect(effect: str | None, queued: Mapping[str, str]) -> str | None:
    return None if effect is None else (effect if queued else "withheld")


def _accepted(
    envelope: TransferEnvelope, decisions: MessageDecisions, queued: Mapping[str, str],
    effect: str | None, audit_seqs: tuple[int, ...],
) -> Accepted:
    outcomes = []
    for d in decisions.decisions:
        report = d.as_report()
        outcomes.append(RecipientOutcome(
            recipient=d.recipient, outcome=report["outcome"], queued=d.recipient in queued,
            delivery_id=queued.get(d.recipient), released=report["released"],
            withheld=report["withheld"],
        ))
    return Accepted(
        envelope.message_id, envelope.sender, str(envelope.message_type),
        envelope.correlation_id, outcomes, audit_seqs, effect,
    )
