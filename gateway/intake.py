"""Inbound messages at the gateway: parse, check the sender, route once per message id.

Order of checks for one posted file (nothing is decided or published unless all pass):

1. the adapter of the path's system parses the bytes (its problems become a 400/422);
2. every message must name the caller's agency as sender — otherwise 403, and a
   ``forged_sender`` event in the audit trail (the caller, the claimed sender, the message id);
3. the caller's agency must use this system and every message must be on a route (NoRoute,
   recorded as a ``message_refused`` event: caller, sender, purpose, recipients, the reason);
4. per message id, an idempotency claim, written in the transaction of the message's inbound
   audit entries and of the released envelopes waiting to be published (the outbox, see
   :mod:`casebridge.routing.relay`): a message id is claimed exactly when its decisions are
   recorded, and the claim stores the answer. A message id the sender already posted is answered
   with the stored result and not decided again -- if the request that decided it died or met a
   broker outage before every publish was confirmed, the repeat publishes what is left first.
   The same id with different content is a conflict. A message that released nothing to anyone
   was not accepted, so posting it again (e.g. after the client's consent was recorded) decides
   it again.

Then routing's :class:`~casebridge.routing.pipeline.Router` passes each message through the
consent gate and publishes it; the answer 202 is given only after the broker confirmed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, Text, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.codes import AuditKind, EventOutcome, InboundState
from casebridge.consent.audit import AuditTrail
from casebridge.db import Base, Database, UtcDateTime, code_column
from casebridge.errors import BrokerUnavailable, ConflictError, Forbidden, NoRoute
from casebridge.gateway.metrics import DECISIONS, MESSAGES_IN
from casebridge.gateway.principals import Principal
from casebridge.logging import get_logger
from casebridge.routing.pipeline import Accepted, Router, admit
from casebridge.routing.preview import PreviewMessage, preview_file
from casebridge.routing.routes import RecipientRoute
from casebridge.routing.runtime import Routing
from casebridge.routing.topology import release

log = get_logger(__name__)

#: An undecided claim (written only by releases before the outbox) older than this is taken over.
STALE_CLAIM = timedelta(minutes=2)


class InboundRow(Base):
    """A message id a sender posted, and the answer it got (the idempotency record)."""

    __tablename__ = "gateway_inbound"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: an adapter plugin's system name (an open set: plugins add systems)
    system: Mapped[str] = mapped_column(String(32))
    envelope_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = code_column(InboundState)
    result_json: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# Built once (the inbound path runs them for every message).
_INSERT_CLAIM = insert(InboundRow)
_COMPLETE = (
    update(InboundRow)
    .where(InboundRow.sender == bindparam("m_sender"),
           InboundRow.message_id == bindparam("m_id"))
    .values(state=str(InboundState.DONE), result_json=bindparam("result"),
            completed_at=bindparam("at"))
)


class _AlreadyClaimed(Exception):
    """The message id was claimed by an earlier (or concurrent) post."""


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """The answer for one message: routing's report, and whether it is a replay."""

    report: dict[str, Any]
    replayed: bool


def envelope_hash(envelope: TransferEnvelope) -> str:
    """SHA-256 of the envelope's canonical JSON: equal messages, equal hash."""
    return hashlib.sha256(envelope.model_dump_json().encode()).hexdigest()


class RouterPool:
    """Routers (each with its own broker connection) lent to one request thread at a time.

    A kombu channel is not thread-safe and the gateway routes in a thread pool, so each request
    borrows a router. At most ``size`` exist; a request that finds them all lent waits for one,
    because opening a broker connection (and declaring the topology on it) costs far more than
    the wait. A router whose broker connection failed is dropped, not returned.
    """

    def __init__(self, routing: Routing, *, size: int = 8) -> None:
        self.routing = routing
        self._idle: list[Router] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def router(self) -> Iterator[Router]:
        """A router for the duration of the block."""
        with self._slots:
            with self._lock:
                router = self._idle.pop() if self._idle else None
            if router is None:
                router = self.routing.router()
            try:
                yield router
            except BrokerUnavailable:
                release(router.publisher.connection)
                raise
            except BaseException:
                self._give_back(router)
                raise
            self._give_back(router)

    def _give_back(self, router: Router) -> None:
        with self._lock:
            self._idle.append(router)

    def close(self) -> None:
        """Release every idle router's connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for router in idle:
            release(router.publisher.connection)


class Intake:
    """The inbound path of the gateway (see the module docstring)."""

    def __init__(self, db: Database, routing: Routing, *, max_bytes: int) -> None:
        self.db = db
        self.routing = routing
        self.routers = RouterPool(routing)
        self.audit = AuditTrail(db)
        self.max_bytes = max_bytes

    def submit(self, raw: bytes, *, system: str, caller: Principal) -> list[MessageOutcome]:
        """Route every message of one posted file; see the module docstring for the order."""
        envelopes = self._own_messages(raw, system=system, caller=caller)
        checked = self._admitted(envelopes, system=system, caller=caller)
        return [self._once(envelope, hits, system) for envelope, hits in checked]

    def _admitted(
        self, envelopes: list[TransferEnvelope], *, system: str, caller: Principal
    ) -> list[tuple[TransferEnvelope, dict[str, RecipientRoute]]]:
        """Step 3, the door's route checks (:func:`admit`); a refused message is audited."""
        checked = []
        for envelope in envelopes:
            try:
                checked.extend(admit(self.routing.routes, [envelope], system=system))
            except NoRoute:
                wrong = self.routing.routes.agency(envelope.sender).system != system
                self._audit_refusal(envelope, caller, system,
                                    "wrong_system" if wrong else "no_route")
                raise
        return checked

    def preview(self, raw: bytes, *, system: str, caller: Principal) -> list[PreviewMessage]:
        """Steps 1-3 of :meth:`submit`, then the gate's decision and the rendered copies,
        without claiming the message id, recording a decision or publishing anything.

        Audited as one ``preview`` event per message, requested by the caller's principal.
        """
        envelopes = self._own_messages(raw, system=system, caller=caller)
        return preview_file(self.routing.routes, self.routing.gate, envelopes, system=system,
                            at=self.routing.clock(), requested_by=caller.name)

    def _own_messages(
        self, raw: bytes, *, system: str, caller: Principal
    ) -> list[TransferEnvelope]:
        """Steps 1 and 2: parse, and refuse (audited) a message that names another sender."""
        agency = caller.agency
        assert agency is not None  # only agency principals reach here
        envelopes = get_adapter(system, max_bytes=self.max_bytes).parse(
            raw, source=f"inbound/{system}"
        )
        for envelope in envelopes:
            if envelope.sender != agency:
                self._audit_forgery(envelope, caller, system)
                raise Forbidden(
                    f"message {envelope.message_id} names sender '{envelope.sender}', but the "
                    f"caller is '{agency}': an agency may only send as itself"
                )
        return envelopes

    def _audit_refused(
        self, kind: str, envelope: TransferEnvelope, caller: Principal, system: str,
        **details: str | None,
    ) -> None:
        """Record a message refused at the door (``forged_sender``, ``message_refused``):
        nothing of it is decided, but the attempt is the DPO's business. Metadata only."""
        self.audit.append_event(
            kind,
            at=datetime.now(UTC),
            stage="gateway",
            sender=envelope.sender,
            purpose=str(envelope.purpose),
            message_id=envelope.message_id,
            outcome=EventOutcome.REFUSED,
            details={"caller": caller.agency, "principal": caller.name, "system": system,
                     **details},
        )

    def _audit_refusal(
        self, envelope: TransferEnvelope, caller: Principal, system: str, reason: str
    ) -> None:
        self._audit_refused(AuditKind.MESSAGE_REFUSED, envelope, caller, system, reason=reason,
                            message_type=str(envelope.message_type),
                            recipients=",".join(envelope.recipients)[:500])

    def _audit_forgery(self, envelope: TransferEnvelope, caller: Principal, system: str) -> None:
        self._audit_refused(AuditKind.FORGED_SENDER, envelope, caller, system, auth=caller.method,
                            key_id=caller.key_id)
        log.warning("forged sender refused", agency=caller.agency, sender=envelope.sender,
                    message_id=envelope.message_id)

    def _new_claim(
        self, envelope: TransferEnvelope, system: str, digest: str
    ) -> Callable[[Connection, Accepted], None]:
        """The claim of a new message id, written with its decisions and outbox rows.

        A message id is claimed exactly when its decisions are recorded: one transaction, which
        also stores the answer. The primary key makes two concurrent posts of one id race
        safely (the loser writes nothing and raises _AlreadyClaimed).
        """
        def claim(conn: Connection, accepted: Accepted) -> None:
            try:
                conn.execute(_INSERT_CLAIM, {
                    "sender": envelope.sender, "message_id": envelope.message_id,
                    "system": system, "envelope_hash": digest,
                    "state": _claim_state(accepted), "claimed_at": datetime.now(UTC),
                    "result_json": json.dumps(accepted.as_report(), sort_keys=True),
                })
            except IntegrityError:
                raise _AlreadyClaimed from None

        return claim

    def _retake_claim(
        self, envelope: TransferEnvelope, digest: str, state: str, claimed_at: datetime
    ) -> Callable[[Connection, Accepted], None]:
        """Decide a known message id again (nothing was released before, or a claim of an
        older release that never decided), in the transaction of the new decision; loses
        (_AlreadyClaimed) if another request took it meanwhile."""
        def claim(conn: Connection, accepted: Accepted) -> None:
            taken = conn.execute(
                update(InboundRow)
                .where(InboundRow.sender == envelope.sender,
                       InboundRow.message_id == envelope.message_id,
                       InboundRow.state == state, InboundRow.claimed_at == claimed_at)
                .values(state=_claim_state(accepted), envelope_hash=digest,
                        claimed_at=datetime.now(UTC), completed_at=None,
                        result_json=json.dumps(accepted.as_report(), sort_keys=True))
            )
            if taken.rowcount != 1:
                raise _AlreadyClaimed

        return claim

    def _existing(
        self, envelope: TransferEnvelope, digest: str
    ) -> MessageOutcome | Callable[[Connection, Accepted], None] | None:
        """For a message id posted before: its outcome, or the claim to decide it again
        (None: the row is gone, claim it as new)."""
        with self.db.session() as session:
            row = session.get(InboundRow, (envelope.sender, envelope.message_id))
            if row is None:
                return None
            if row.envelope_hash != digest:
                raise ConflictError(
                    f"message id '{envelope.message_id}' was already used by "
                    f"'{envelope.sender}' for a different message"
                )
            state, claimed_at, result = row.state, row.claimed_at, row.result_json
        stored = json.loads(result) if result is not None else None
        queued = stored is not None and any(
            r.get("queued") for r in stored.get("recipients", []))
        if state == InboundState.DECIDED and stored is not None:
            # Decided and audited before; the request that did it died or met a broker outage
            # before every publish was confirmed. Publish what is left, answer as it would have.
            with self.routers.router() as router:
                router.relay.publish_message(envelope.sender, envelope.message_id)
            self._complete(envelope, stored)
            # the first answer, given again: only the request that decided answers 202
            return MessageOutcome(stored, replayed=True)
        if state == InboundState.DONE and stored is not None and queued:
            return MessageOutcome(stored, replayed=True)
        if state == InboundState.PENDING and datetime.now(UTC) - claimed_at < STALE_CLAIM:
            # only a release before the outbox wrote undecided claims; let it finish
            raise ConflictError(
                f"message '{envelope.message_id}' is being processed; retry shortly"
            )
        # Nothing was released the first time, so nothing was accepted: sent again (typically
        # after the consent was recorded) it is decided again, audited.
        return self._retake_claim(envelope, digest, state, claimed_at)

    def _complete(self, envelope: TransferEnvelope, report: dict[str, Any]) -> None:
        with self.db.connection(immediate=True) as conn:
            conn.execute(_COMPLETE, {
                "m_sender": envelope.sender, "m_id": envelope.message_id,
                "result": json.dumps(report, sort_keys=True), "at": datetime.now(UTC),
            })

    def _once(
        self, envelope: TransferEnvelope, hits: dict[str, RecipientRoute], system: str
    ) -> MessageOutcome:
        digest = envelope_hash(envelope)
        claim: Callable[[Connection, Accepted], None] | None = self._new_claim(
            envelope, system, digest)
        for _ in range(3):
            if claim is not None:
                try:
                    return self._route(envelope, hits, system, claim)
                except _AlreadyClaimed:
                    pass
            found = self._existing(envelope, digest)
            if isinstance(found, MessageOutcome):
                return found
            claim = found or self._new_claim(envelope, system, digest)
        raise ConflictError(f"message '{envelope.message_id}' is being processed; retry shortly")

    def _route(
        self, envelope: TransferEnvelope, hits: dict[str, RecipientRoute], system: str,
        claim: Callable[[Connection, Accepted], None],
    ) -> MessageOutcome:
        # A failure before the decision's commit leaves nothing (the id stays free); after it,
        # the claim says "decided" with its answer and the outbox holds the messages: a post
        # of the same id publishes what is left and gets that answer, never a second decision.
        def complete(conn: Connection, accepted: Accepted) -> None:
            # in the transaction that marks the rows published (shared by the requests whose
            # rows were published together): no commit of its own
            conn.execute(_COMPLETE, {
                "m_sender": envelope.sender, "m_id": envelope.message_id,
                "result": json.dumps(accepted.as_report(), sort_keys=True),
                "at": datetime.now(UTC),
            })

        with self.routers.router() as router:
            # new: the claim guarantees no earlier row of this message waits in the outbox (a
            # message id is claimed anew only when nothing of it was released before)
            accepted = router.route(envelope, hits, along=claim, then=complete, new=True)
        _count(accepted, system)
        return MessageOutcome(accepted.as_report(), replayed=False)

    def close(self) -> None:
        """Release broker connections."""
        self.routers.close()


def _claim_state(accepted: Accepted) -> str:
    """``decided`` while released messages wait to be published; ``done`` at once when the
    gate released nothing (there is nothing to publish, and a repeat decides again)."""
    queued = any(r.queued for r in accepted.recipients)
    return str(InboundState.DECIDED if queued else InboundState.DONE)


def _count(accepted: Accepted, system: str) -> None:
    MESSAGES_IN.labels(accepted.sender, system).inc()
    for recipient in accepted.recipients:
        DECISIONS.labels(recipient.outcome, "inbound").inc()
