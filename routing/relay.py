"""The relay of the inbound outbox: publish what the gate released, mark it once confirmed.

:meth:`casebridge.routing.pipeline.Router.route` writes every released envelope into
``routing_publications`` in the transaction of its decision and audit entries. The relay then
publishes those rows: each publish is confirmed by the broker before its row is marked published
(and its body dropped); a row whose publish failed stays pending and counts the failure. Rows are
taken ``FOR UPDATE`` on PostgreSQL (``SKIP LOCKED`` by the sweeper), so two relays (two gateways,
a request and the sweeper) never publish the same row at the same time.

Two callers: the request that decided the message publishes its own rows at once (and answers
202 only when all are confirmed), and :class:`RelaySweeper` in every gateway publishes rows left
pending by a request that died or met a broker outage. A crash after the broker confirmed but
before the mark leaves a row that is published again; the worker recognises the copy by its
delivery id, as it recognises any redelivery.

The relay publishes a batch of rows and marks exactly the confirmed ones, so a publisher that
awaits confirms for many messages at once fits without changing the marking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, select

from casebridge.db import Database
from casebridge.errors import BrokerUnavailable
from casebridge.logging import get_logger
from casebridge.routing.store import PublicationRow

if TYPE_CHECKING:
    from casebridge.routing.pipeline import Publisher

log = get_logger(__name__)

#: A pending row younger than this belongs to a request still publishing it.
SWEEP_AFTER = timedelta(seconds=10)


class Relay:
    """Publishes pending outbox rows through one :class:`Publisher` (one thread at a time)."""

    def __init__(self, db: Database, publisher: Publisher) -> None:
        self.db = db
        self.publisher = publisher

    def publish_message(self, sender: str, message_id: str) -> int:
        """Publish one message's pending rows; BrokerUnavailable unless all are confirmed."""
        mine = (PublicationRow.sender == sender, PublicationRow.message_id == message_id)
        # waits for a relay publishing them now (not SKIP LOCKED): then finds nothing left
        published = self._publish(mine, limit=None, skip_locked=False)
        with self.db.snapshot_read() as conn:
            left = conn.scalar(select(func.count()).select_from(PublicationRow).where(
                PublicationRow.published_at.is_(None), *mine))
        if left:
            raise BrokerUnavailable(f"message '{message_id}' is not published yet")
        return published

    def publish_due(self, *, older_than: timedelta = SWEEP_AFTER, limit: int = 500) -> int:
        """Publish up to ``limit`` rows pending for longer than ``older_than``."""
        cutoff = datetime.now(UTC) - older_than
        return self._publish((PublicationRow.created_at < cutoff,), limit=limit)

    def _publish(
        self, where: tuple[ColumnElement[bool], ...], *, limit: int | None,
        skip_locked: bool = True,
    ) -> int:
        failure: BrokerUnavailable | None = None
        confirmed: list[PublicationRow] = []
        with self.db.session(immediate=True) as session:
            rows = session.scalars(
                select(PublicationRow)
                .where(PublicationRow.published_at.is_(None), *where)
                .order_by(PublicationRow.id)
                .limit(limit)
                .with_for_update(skip_locked=skip_locked)
            ).all()
            for row in rows:
                try:
                    self.publisher.publish_row(row)
                except BrokerUnavailable as exc:
                    row.failures = (row.failures or 0) + 1
                    failure = exc
                    break
                confirmed.append(row)
            now = datetime.now(UTC)
            for row in confirmed:  # each only after its own confirm
                row.published_at = now
                row.body = None
        if failure is not None:
            raise failure
        return len(confirmed)


class RelaySweeper:
    """A daemon thread publishing rows that no request published (crash, broker outage)."""

    def __init__(
        self, db: Database, publisher_factory: Callable[[], Publisher], *,
        interval: float = 5.0, older_than: timedelta = SWEEP_AFTER,
    ) -> None:
        self.db = db
        self.publisher_factory = publisher_factory
        self.interval = interval
        self.older_than = older_than
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._relay: Relay | None = None

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def sweep(self) -> int:
        """One pass; the rows published."""
        if self._relay is None:
            self._relay = Relay(self.db, self.publisher_factory())
        try:
            return self._relay.publish_due(older_than=self.older_than)
        except BrokerUnavailable:
            self._relay = None  # a fresh connection next time
            raise

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                published = self.sweep()
            except Exception as exc:  # noqa: BLE001 - the sweeper outlives outages
                log.warning("outbox relay pass failed", exc_type=type(exc).__name__)
                continue
            if published:
                log.info("outbox relay published pending messages", count=published)


def pending_publications(db: Database) -> dict[str, Any]:
    """How many rows wait and the oldest one's time (readiness, metrics, fault tests)."""
    with db.snapshot_read() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(PublicationRow.created_at))
            .where(PublicationRow.published_at.is_(None))
        ).one()
    return {"pending": int(count), "oldest": oldest}
