"""Confirms in flight, on the real RabbitMQ (127.0.0.1:5672), a virtual host per test.

The relay publishes many outbox rows and awaits their confirms together; a row is marked published
exactly when its own confirm arrived. A nacked row and a row whose confirm never came stay pending
with their failure counted, and the sweeper publishes them later; concurrent requests of one
process share confirm round trips, each answered for exactly its own rows.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import ConsentStore
from casebridge.db import Database, get_database
from casebridge.errors import BrokerUnavailable
from casebridge.gateway.demo import sample_bytes
from casebridge.routing import pipeline
from casebridge.routing.pipeline import Outgoing, Publisher, Refused, Unconfirmed
from casebridge.routing.relay import PublishBatcher, Relay, pending_publications
from casebridge.routing.routes import demo_route_table
from casebridge.routing.runtime import Routing
from casebridge.routing.store import PublicationRow
from casebridge.routing.topology import Topology, connect, release
from tests.routing.test_rabbitmq_faults import ctl, vhost  # noqa: F401 - fixture

pytestmark = [pytest.mark.rabbitmq]

PULL = "suchtberatung-diakonie-du"
PUSH = "jobcenter-duisburg"


def _url(name: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{name}"


def _rows(db: Database, recipients: list[str]) -> list[int]:
    """Pending outbox rows, one per recipient (a tiny body each); their ids."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    ids = []
    with db.connection() as conn:
        for i, recipient in enumerate(recipients):
            did = f"d-{uuid.uuid4().hex[:12]}"
            headers = {"delivery_id": did, "message_id": f"m-{i}", "sender": PUSH,
                       "recipient": recipient, "attempt": 1, "queued_at": at.isoformat()}
            ids.append(conn.scalar(insert(PublicationRow).returning(PublicationRow.id), {
                "delivery_id": did, "sender": PUSH, "message_id": f"m-{i}",
                "recipient": recipient, "body": b"{}", "headers": json.dumps(headers),
                "created_at": at, "published_at": None, "failures": 0}))
    return ids


def _state(db: Database) -> dict[int, tuple[bool, int]]:
    """Row id -> (published, failures)."""
    with db.connection() as conn:
        return {r.id: (r.published_at is not None, r.failures) for r in conn.execute(
            select(PublicationRow.id, PublicationRow.published_at, PublicationRow.failures))}


def _count(url: str, topology: Topology, agency: str) -> int:
    conn = connect(url)
    try:
        queue = topology.queue(agency)(conn.default_channel)
        return int(queue.queue_declare(passive=True).message_count)
    finally:
        release(conn)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return get_database(f"sqlite:///{tmp_path / 'casebridge.db'}")


@pytest.fixture
def classic(vhost: str) -> Iterator[tuple[str, Topology, Publisher]]:  # noqa: F811
    """Classic queues on a fresh vhost (a queue length limit nacks deterministically there)."""
    url = _url(vhost)
    topology = Topology(tuple(sorted(demo_route_table().agencies)), prefix="cbc", quorum=False)
    publisher = Publisher(connect(url), topology)
    yield url, topology, publisher
    release(publisher.connection)


def test_a_nacked_row_stays_pending_and_only_it(
    db: Database, classic: tuple[str, Topology, Publisher], vhost: str,  # noqa: F811
) -> None:
    url, topology, publisher = classic
    # The provider's queue takes one message and refuses more (the broker nacks them).
    ctl("set_policy", "-p", vhost, "cap", f"^{topology.queue_name(PULL)}$",
        '{"max-length": 1, "overflow": "reject-publish"}', "--apply-to", "queues")
    ids = _rows(db, [PULL, PUSH, PULL, PUSH])
    relay = Relay(db, publisher)
    with pytest.raises(Refused):
        relay.publish_due(older_than=timedelta(0))
    assert _state(db) == {ids[0]: (True, 0), ids[1]: (True, 0), ids[2]: (False, 1),
                          ids[3]: (True, 0)}
    assert _count(url, topology, PULL) == 1 and _count(url, topology, PUSH) == 2
    # Once the queue has room, the sweeper's next pass publishes exactly the refused row.
    ctl("clear_policy", "-p", vhost, "cap")
    assert relay.publish_due(older_than=timedelta(0)) == 1
    assert pending_publications(db)["pending"] == 0
    assert _count(url, topology, PULL) == 2 and _count(url, topology, PUSH) == 2


def test_a_lost_confirm_leaves_exactly_that_row_pending(
    db: Database, classic: tuple[str, Topology, Publisher], monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, topology, publisher = classic
    ids = _rows(db, [PUSH, PULL, PUSH])
    real = pipeline._Confirms._settle

    def lossy(self: pipeline._Confirms, tag: int, multiple: bool, outcome: object) -> None:
        # the confirm of the second publish of this channel never arrives
        index = self._waiting.get(2)
        lost = None if index is None else self._results[index]
        real(self, tag, multiple, outcome)  # type: ignore[arg-type]
        if index is not None:
            self._waiting[2] = index
            self._results[index] = lost

    monkeypatch.setattr(pipeline._Confirms, "_settle", lossy)
    batcher = PublishBatcher(lambda: publisher, timeout=1.0)
    relay = Relay(db, batcher=batcher)
    with pytest.raises(Unconfirmed):
        relay.publish_due(older_than=timedelta(0))
    assert _state(db) == {ids[0]: (True, 0), ids[1]: (False, 1), ids[2]: (True, 0)}
    monkeypatch.undo()
    # the broker has the message; published again, the worker would skip the copy by its id
    assert _count(url, topology, PULL) == 1
    batcher.close()
    assert Relay(db, Publisher(connect(url), topology)).publish_due(older_than=timedelta(0)) == 1
    assert pending_publications(db)["pending"] == 0


class _Held(Publisher):
    """A publisher whose first batch waits until released (to gather the next batch)."""

    def __init__(self, inner: Publisher, hold: threading.Event) -> None:
        self.__dict__.update(inner.__dict__)
        self.hold = hold
        self.sizes: list[int] = []

    def publish_many(self, items, *, timeout=pipeline.CONFIRM_TIMEOUT):  # type: ignore[no-untyped-def]
        if not self.sizes:
            self.hold.wait(10)
        self.sizes.append(len(items))
        return super().publish_many(items, timeout=timeout)


def test_concurrent_requests_share_a_confirm_wait_and_get_their_own_answers(
    classic: tuple[str, Topology, Publisher],
) -> None:
    url, topology, publisher = classic
    hold = threading.Event()
    held = _Held(publisher, hold)
    batcher = PublishBatcher(lambda: held)

    def item(recipient: str) -> Outgoing:
        did = f"d-{uuid.uuid4().hex[:12]}"
        return Outgoing(0, did, recipient, b"{}", {"delivery_id": did})

    answers: dict[int, list[BrokerUnavailable | None]] = {}

    def request(n: int, items: list[Outgoing]) -> None:
        answers[n] = batcher.publish(items)

    first = threading.Thread(target=request, args=(0, [item(PUSH)]))
    first.start()
    while batcher.batches == 0:  # the first batch is on its way (held)
        threading.Event().wait(0.01)
    others = [threading.Thread(target=request, args=(n, [item(PULL), item(PUSH)]))
              for n in range(1, 9)]
    for t in others:
        t.start()
    while sum(len(r.items) for r in batcher._waiting) < 16:
        threading.Event().wait(0.01)
    hold.set()
    for t in [first, *others]:
        t.join(30)
    batcher.close()
    assert held.sizes == [1, 16]  # eight requests, one confirm wait
    assert answers == {0: [None], **{n: [None, None] for n in range(1, 9)}}
    assert _count(url, topology, PULL) == 8 and _count(url, topology, PUSH) == 9


def test_concurrent_inbound_messages_are_all_confirmed_and_marked(
    tmp_path: Path, vhost: str,  # noqa: F811
) -> None:
    from tests.routing.test_rabbitmq_faults import case_exports

    db = get_database(f"sqlite:///{tmp_path / 'casebridge.db'}")
    ConsentStore(db).import_fhir(sample_bytes("consent-fhir/consent-guardian-001.json"),
                                 source="g")
    routing = Routing(routes=demo_route_table(), db=db, url=_url(vhost), prefix="cbt")
    exports = case_exports(12)
    try:
        routers = [routing.router() for _ in range(4)]
        errors: list[BaseException] = []

        def send(i: int) -> None:
            try:
                for raw in exports[i::4]:
                    routers[i].submit(raw, system="jugendamt", sender="jugendamt-duisburg")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with db.connection() as conn:
            rows = conn.scalar(select(func.count()).select_from(PublicationRow))
        assert rows and pending_publications(db)["pending"] == 0
        queued = sum(_count(routing.url, routing.topology, a) for a in routing.routes.agencies)
        assert queued == rows
        assert routing.batcher().batches <= rows
        assert AuditTrail(db).verify().ok
    finally:
        routing.close()
