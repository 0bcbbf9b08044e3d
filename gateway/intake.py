"""Inbound messages at the gateway: parse, check the sender, route once per message id.

Order of checks for one posted file (nothing is decided or published unless all pass):

1. the adapter of the path's system parses the bytes (its problems become a 400/422);
2. every message must name the caller's agency as sender — otherwise 403, and a
   ``forged_sender`` event in the audit trail (the caller, the claimed sender, the message id);
3. the caller's agency must use this system and every message must be on a route (NoRoute,
   recorded as a ``message_refused`` event: caller, sender, purpose, recipients, the reason);
4. per message id, an idempotency claim, written in the transaction of the message's inbound
   audit entries (a message id is claimed exactly when its decisions are recorded): a message id
   the sender already posted is answered with the stored result and not routed again; the same
   id with different content is a conflict.
   A message that released nothing to anyone was not accepted, so posting it again (e.g. after
   the client's consent was recorded) decides it again.

Then routing's :class:`~casebridge.routing.pipeline.Router` passes each message through the
consent gate and publishes it; the answer is given only after the broker confirmed.
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

from sqlalchemy import Connection, String, Text, bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.consent.audit import AuditTrail
from casebridge.db import Base, Database, UtcDateTime
from casebridge.errors import BrokerUnavailable, ConflictError, Forbidden, NoRoute
from casebridge.gateway.metrics import DECISIONS, MESSAGES_IN
from casebridge.gateway.principals import Principal
from casebridge.logging import get_logger
from casebridge.routing.pipeline import Accepted, Router
from casebridge.routing.routes import RecipientRoute
from casebridge.routing.runtime import Routing
from casebridge.routing.topology import release

log = get_logger(__name__)

#: A claim older than this whose request never finished (a crashed process) may be taken over.
STALE_CLAIM = timedelta(minutes=2)


class InboundRow(Base):
    """A message id a sender posted, and the answer it got (the idempotency record)."""

    __tablename__ = "gateway_inbound"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    envelope_hash: Mapped[str] = mapped_column(String(64))
    #: pending (being routed) | done
    state: Mapped[str] = mapped_column(String(16))
    result_json: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# Built once (the inbound path runs them for every message).
_INSERT_CLAIM = insert(InboundRow)
_COMPLETE = (
    update(InboundRow)
    .where(InboundRow.sender == bindparam("m_sender"),
           InboundRow.message_id == bindparam("m_id"))
    .values(state="done", result_json=bindparam("result"), completed_at=bindparam("at"))
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
        own = self.routing.routes.agency(agency)
        checked = []
        for envelope in envelopes:
            try:
                if own.system != system:
                    raise NoRoute(
                        f"agency '{agency}' sends in system '{own.system}', not '{system}'")
                checked.append((envelope, self.routing.routes.check(envelope)))
            except NoRoute:
                self._audit_refusal(envelope, caller, system,
                                    "wrong_system" if own.system != system else "no_route")
                raise
        return [self._once(envelope, hits, system) for envelope, hits in checked]

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
            outcome="refused",
            details={"caller": caller.agency, "principal": caller.name, "system": system,
                     **details},
        )

    def _audit_refusal(
        self, envelope: TransferEnvelope, caller: Principal, system: str, reason: str
    ) -> None:
        self._audit_refused("message_refused", envelope, caller, system, reason=reason,
                            message_type=str(envelope.message_type),
                            recipients=",".join(envelope.recipients)[:500])

    def _audit_forgery(self, envelope: TransferEnvelope, caller: Principal, system: str) -> None:
        self._audit_refused("forged_sender", envelope, caller, system, auth=caller.method,
                            key_id=caller.key_id)
        log.warning("forged sender refused", agency=caller.agency, sender=envelope.sender,
                    message_id=envelope.message_id)

    def _new_claim(
        self, envelope: TransferEnvelope, system: str, digest: str
    ) -> Callable[[Connection], None]:
        """The claim of a new message id, written with the inbound audit entries.

        A message id is claimed exactly when its decisions are recorded: one transaction, and
        the primary key makes two concurrent posts of one id race safely (the loser writes
        nothing and raises _AlreadyClaimed).
        """
        def claim(conn: Connection) -> None:
            try:
                conn.execute(_INSERT_CLAIM, {
                    "sender": envelope.sender, "message_id": envelope.message_id,
                    "system": system, "envelope_hash": digest, "state": "pending",
                    "claimed_at": datetime.now(UTC),
                })
            except IntegrityError:
                raise _AlreadyClaimed from None

        return claim

    def _claim_existing(
        self, envelope: TransferEnvelope, system: str, digest: str
    ) -> MessageOutcome | None:
        """For a message id posted before: its stored outcome, or None once it is claimed
        again (nothing was released the first time, or that request died)."""
        now = datetime.now(UTC)
        with self.db.session(immediate=True) as session:
            row = session.get(
                InboundRow, (envelope.sender, envelope.message_id), with_for_update=True
            )
            if row is None:  # released meanwhile by a failed attempt: claim it now
                session.add(InboundRow(
                    sender=envelope.sender, message_id=envelope.message_id, system=system,
                    envelope_hash=digest, state="pending", claimed_at=now,
                ))
                return None
            if row.envelope_hash != digest:
                raise ConflictError(
                    f"message id '{envelope.message_id}' was already used by "
                    f"'{envelope.sender}' for a different message"
                )
            if row.state == "done" and row.result_json is not None:
                stored = json.loads(row.result_json)
                if any(r.get("queued") for r in stored.get("recipients", [])):
                    return MessageOutcome(stored, replayed=True)
                # Nothing was released the first time, so nothing was accepted: sent again
                # (typically after the consent was recorded) it is decided again, audited.
                row.state, row.result_json, row.claimed_at = "pending", None, now
                return None
            if now - row.claimed_at < STALE_CLAIM:
                raise ConflictError(
                    f"message '{envelope.message_id}' is being processed; retry shortly"
                )
            row.claimed_at = now  # a stale claim of a request that never finished
        return None

    def _complete(self, envelope: TransferEnvelope, report: dict[str, Any]) -> None:
        with self.db.connection(immediate=True) as conn:
            conn.execute(_COMPLETE, {
                "m_sender": envelope.sender, "m_id": envelope.message_id,
                "result": json.dumps(report, sort_keys=True), "at": datetime.now(UTC),
            })

    def _release_claim(self, envelope: TransferEnvelope) -> None:
        with self.db.session(immediate=True) as session:
            session.execute(delete(InboundRow).where(
                InboundRow.sender == envelope.sender,
                InboundRow.message_id == envelope.message_id,
                InboundRow.state == "pending",
            ))

    def _once(
        self, envelope: TransferEnvelope, hits: dict[str, RecipientRoute], system: str
    ) -> MessageOutcome:
        digest = envelope_hash(envelope)
        try:
            # the usual case, a new message id: claimed in the audit transaction of the route
            return self._route(envelope, hits, system, self._new_claim(envelope, system, digest))
        except _AlreadyClaimed:
            pass
        stored = self._claim_existing(envelope, system, digest)
        if stored is not None:
            return stored
        return self._route(envelope, hits, system, None)

    def _route(
        self, envelope: TransferEnvelope, hits: dict[str, RecipientRoute], system: str,
        claim: Callable[[Connection], None] | None,
    ) -> MessageOutcome:
        try:
            with self.routers.router() as router:
                accepted = router.route(envelope, hits, along=claim)
        except _AlreadyClaimed:
            raise  # nothing was written: the claim belongs to another request
        except BaseException:
            # Nothing confirmed: the sender may post again and the id must be free for it.
            self._release_claim(envelope)
            raise
        report = accepted.as_report()
        self._complete(envelope, report)
        _count(accepted, system)
        return MessageOutcome(report, replayed=False)

    def close(self) -> None:
        """Release broker connections."""
        self.routers.close()


def _count(accepted: Accepted, system: str) -> None:
    MESSAGES_IN.labels(accepted.sender, system).inc()
    for recipient in accepted.recipients:
        DECISIONS.labels(recipient.outcome, "inbound").inc()
