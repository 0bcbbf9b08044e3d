"""The relay of the inbound outbox: publish what the gate released, mark it once confirmed.

:meth:`casebridge.routing.pipeline.Router.route` writes every released envelope into
``routing_publications`` in the transaction of its decision and audit entries. The relay then
publishes those rows and awaits the broker's confirms for all of them together (one wait, not
one per message; see :meth:`~casebridge.routing.pipeline.Publisher.publish_many`). A row is
marked published (and its body dropped) only after its own confirm arrived; a row the broker
nacked or did not confirm in time stays pending and counts the failure.

Three callers:

- the request that decided the message publishes the rows it has just written, from memory
  (no read, no lock), and answers 202 only when all are confirmed. Nobody locks them: the
  only other relay that may take them is the sweeper, and only once they are ``SWEEP_AFTER``
  old; should both publish a row, the worker recognises the copy by its delivery id;
- a repeat of a message id whose request died publishes what is left, the rows taken ``FOR
  UPDATE`` (it waits for a relay publishing them now, then finds nothing left);
- :class:`RelaySweeper` in every gateway publishes rows left pending by a request that died or
  met a broker outage, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.

In a gateway the requests' rows go through one :class:`PublishBatcher` per process: a thread
that publishes the rows of every request waiting at that moment on one broker connection,
awaits their confirms together and marks them in one transaction, so concurrent requests share
confirm round trips and a commit; each request still waits for exactly its own rows.

A crash after the broker confirmed but before the mark leaves a row that is published again; the
worker recognises the copy by its delivery id, as it recognises any redelivery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, func, select, update

from casebridge.db import Database
from casebridge.errors import BrokerUnavailable
from casebridge.logging import get_logger
from casebridge.routing.store import PublicationRow
from casebridge.routing.topology import release

if TYPE_CHECKING:
    from casebridge.routing.pipeline import Outgoing, Publisher

log = get_logger(__name__)

#: A pending row younger than this belongs to a request still publishing it.
SWEEP_AFTER = timedelta(seconds=10)
#: Rows one batch publishes at most (one confirm wait).
MAX_BATCH = 500

Results = list[BrokerUnavailable | None]


class PublishBatcher:
    """One thread of a process publishing the outbox rows of all its requests together.

    :meth:`publish` hands a request's rows to the thread and waits until the broker confirmed
    (or refused) each of them. While the thread waits for one batch's confirms, the rows of
    further requests gather and go out as the next batch: under load, many requests share one
    confirm round trip; alone, a request waits for one round trip as before.

    With ``mark=True`` the thread also marks the confirmed rows published (and counts the
    others' failures) and runs each fully confirmed request's ``then(conn)``, all in one
    transaction per batch, before it answers those requests. Rows a caller holds locked are
    sent with ``mark=False``: that caller marks them itself, and is answered before the batch's
    transaction starts (it could otherwise wait for a lock the caller holds).
    """

    def __init__(
        self, publisher_factory: Callable[[], Publisher], db: Database | None = None, *,
        timeout: float | None = None, max_batch: int = MAX_BATCH,
    ) -> None:
        from casebridge.routing.pipeline import CONFIRM_TIMEOUT

        self.db = db
        self.publisher_factory = publisher_factory
        self.timeout = CONFIRM_TIMEOUT if timeout is None else timeout
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._publisher: Publisher | None = None
        #: batches sent and rows in them (metrics, tests, the benchmark)
        self.batches = 0
        self.rows = 0

    def publish(
        self, items: Sequence[Outgoing], *, mark: bool = False,
        then: Callable[[Connection], Any] | None = None,
    ) -> Results:
        """Per item None once confirmed, or why not; BrokerUnavailable if not even tried.

        ``mark``: the rows are marked (and ``then`` run) by the batch's transaction before the
        call returns; if that transaction fails, the rows stay pending for the sweeper (they
        were confirmed, so the answer stands; the worker skips the copy a sweep publishes)."""
        if mark and self.db is None:
            raise ValueError("marking needs the batcher's database")
        if not items:
            return []
        request = _Request(items, mark, then)
        with self._cond:
            if self._closed:
                raise BrokerUnavailable("the publisher is shut down")
            self._waiting.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-publisher",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        # generous: the thread gives every batch an answer within its confirm timeout, plus
        # the time to connect (kombu's connect timeout) and the batch ahead of ours
        if not request.done.wait(3 * self.timeout + 30):
            raise BrokerUnavailable("the publisher thread did not answer")
        assert request.results is not None
        return request.results

    def _take(self) -> list[_Request] | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._closed and not self._waiting:
                return None
            taken: list[_Request] = []
            count = 0
            while self._waiting and (not taken or
                                     count + len(self._waiting[0].items) <= self.max_batch):
                request = self._waiting.pop(0)
                taken.append(request)
                count += len(request.items)
            return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            items = [item for request in taken for item in request.items]
            self.batches += 1
            self.rows += len(items)
            try:
                results = self._send(items)
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets an answer
                failure = exc if isinstance(exc, BrokerUnavailable) else BrokerUnavailable(
                    f"publishing failed ({type(exc).__name__})")
                results = [failure] * len(items)
            at = 0
            for request in taken:
                request.results = results[at:at + len(request.items)]
                at += len(request.items)
            for request in taken:
                if not request.mark:  # first: they may hold locks the marking needs
                    request.done.set()
            marking = [request for request in taken if request.mark]
            if marking:
                self._record(marking)
            for request in marking:
                request.done.set()

    def _record(self, requests: list[_Request]) -> None:
        """Mark the batch's confirmed rows and run the ``then`` of every fully confirmed
        request, in one transaction."""
        confirmed: list[int] = []
        failed: list[int] = []
        for request in requests:
            assert request.results is not None
            ok, bad, _ = _split(request.items, request.results)
            confirmed += ok
            failed += bad
        assert self.db is not None
        try:
            with self.db.connection(immediate=True) as conn:
                _mark(conn, confirmed, failed)
                for request in requests:
                    if request.then is not None and not any(request.results or ()):
                        request.then(conn)
        except Exception as exc:  # noqa: BLE001 - the confirms stand; the sweeper marks later
            log.warning("marking published rows failed; they stay pending",
                        exc_type=type(exc).__name__, rows=len(confirmed))

    def _send(self, items: list[Outgoing]) -> Results:
        if self._publisher is None:
            self._publisher = self.publisher_factory()
        try:
            results = self._publisher.publish_many(items, timeout=self.timeout)
        except BaseException:
            self._drop()  # whatever broke it, the next batch starts on a fresh connection
            raise
        if any(r is not None for r in results):
            # a confirm that did not come in time, a nack, or a connection the broker dropped
            # (its retries used up while the broker was down): a fresh connection from the
            # factory for the next batch, never the one that failed
            self._drop()
        return results

    def _drop(self) -> None:
        if self._publisher is not None:
            release(self._publisher.connection)
            self._publisher = None

    def close(self) -> None:
        """Answer what waits, stop the thread, release the connection."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=3 * self.timeout + 30)
        self._drop()


class _Request:
    __slots__ = ("done", "items", "mark", "results", "then")

    def __init__(self, items: Sequence[Outgoing], mark: bool,
                 then: Callable[[Connection], Any] | None) -> None:
        self.items = items
        self.mark = mark
        self.then = then
        self.results: Results | None = None
        self.done = threading.Event()


class Relay:
    """Publishes pending outbox rows through a :class:`PublishBatcher` shared by the process,
    or through one :class:`Publisher` (one thread at a time)."""

    def __init__(
        self, db: Database, publisher: Publisher | None = None, *,
        batcher: PublishBatcher | None = None,
    ) -> None:
        if publisher is None and batcher is None:
            raise ValueError("a relay needs a publisher or a batcher")
        self.db = db
        self.publisher = publisher
        self.batcher = batcher

    def _send_direct(self, items: Sequence[Outgoing]) -> Results:
        """Publish rows the caller marks itself (it may hold them locked): on the relay's own
        publisher where it has one, so that the thread never waits for the batcher while
        holding locks the batcher's marking may need."""
        if self.publisher is not None:
            return self.publisher.publish_many(items)
        assert self.batcher is not None
        return self.batcher.publish(items)

    def publish_message(
        self, sender: str, message_id: str, *, rows: Sequence[Outgoing] | None = None,
        then: Callable[[Connection], Any] | None = None,
    ) -> int:
        """Publish one message's pending rows; BrokerUnavailable unless all are confirmed.

        ``rows``: the rows the caller has just committed (the deciding request), published
        without reading or locking them. Without, every pending row of the message is read and
        locked first. ``then(conn)`` runs in the transaction that marks the rows, once all are
        confirmed (the gateway completes its idempotency claim there).
        """
        if rows is None:
            mine = (PublicationRow.sender == sender, PublicationRow.message_id == message_id)
            # waits for a relay publishing them now (not SKIP LOCKED): then finds nothing left
            published, left = self._publish(mine, limit=None, skip_locked=False, then=then)
        else:
            published, left = self._publish_fresh(rows, then=then)
        if left is not None:
            raise BrokerUnavailable(f"message '{message_id}' is not published yet ({left})")
        return published

    def publish_due(self, *, older_than: timedelta = SWEEP_AFTER, limit: int = MAX_BATCH) -> int:
        """Publish up to ``limit`` rows pending for longer than ``older_than``."""
        cutoff = datetime.now(UTC) - older_than
        published, left = self._publish((PublicationRow.created_at < cutoff,), limit=limit)
        if left is not None:
            raise left
        return published

    def _publish_fresh(
        self, rows: Sequence[Outgoing], *, then: Callable[[Connection], Any] | None,
    ) -> tuple[int, BrokerUnavailable | None]:
        if self.batcher is not None and self.batcher.db is not None:
            # marked (and ``then`` run) by the batcher, with the rows of concurrent requests
            try:
                results = self.batcher.publish(rows, mark=True, then=then) if rows else []
            except BrokerUnavailable as exc:
                return 0, exc
            confirmed, _, failure = _split(rows, results)
            if not rows and then is not None:
                with self.db.connection(immediate=True) as conn:
                    then(conn)
            return len(confirmed), failure
        try:
            results = self._send_direct(rows) if rows else []
        except BrokerUnavailable as exc:
            results = [exc] * len(rows)
        confirmed, failed, failure = _split(rows, results)
        with self.db.connection(immediate=True) as conn:
            _mark(conn, confirmed, failed)
            if failure is None and then is not None:
                then(conn)
        return len(confirmed), failure

    def _publish(
        self, where: tuple[ColumnElement[bool], ...], *, limit: int | None,
        skip_locked: bool = True, then: Callable[[Connection], Any] | None = None,
    ) -> tuple[int, BrokerUnavailable | None]:
        from casebridge.routing.pipeline import Outgoing

        with self.db.connection(immediate=True) as conn:
            found = conn.execute(
                select(PublicationRow.id, PublicationRow.delivery_id, PublicationRow.recipient,
                       PublicationRow.body, PublicationRow.headers)
                .where(PublicationRow.published_at.is_(None), *where)
                .order_by(PublicationRow.id)
                .limit(limit)
                .with_for_update(skip_locked=skip_locked)
            ).all()
            rows = [Outgoing(r.id, r.delivery_id, r.recipient, r.body, _headers(r.headers))
                    for r in found]
            try:
                results = self._send_direct(rows) if rows else []
            except BrokerUnavailable as exc:
                results = [exc] * len(rows)
            confirmed, failed, failure = _split(rows, results)
            _mark(conn, confirmed, failed)
            if failure is None and then is not None:
                then(conn)
        return len(confirmed), failure


def _headers(text: str) -> dict[str, Any]:
    import json

    headers: dict[str, Any] = json.loads(text)
    return headers


def _split(
    rows: Sequence[Outgoing], results: Results
) -> tuple[list[int], list[int], BrokerUnavailable | None]:
    confirmed = [row.row_id for row, result in zip(rows, results, strict=True) if result is None]
    failed = [row.row_id for row, result in zip(rows, results, strict=True)
              if result is not None]
    failure = next((r for r in results if r is not None), None)
    return confirmed, failed, failure


def _mark(conn: Connection, confirmed: list[int], failed: list[int]) -> None:
    """Mark exactly the confirmed rows published (body dropped); count the others' failure."""
    if confirmed:
        conn.execute(update(PublicationRow)
                     .where(PublicationRow.id.in_(confirmed),
                            PublicationRow.published_at.is_(None))
                     .values(published_at=datetime.now(UTC), body=None))
    if failed:
        conn.execute(update(PublicationRow).where(PublicationRow.id.in_(failed))
                     .values(failures=func.coalesce(PublicationRow.failures, 0) + 1))


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
