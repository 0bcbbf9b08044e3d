"""Batched delivery: every message of a batch gets exactly its own fate.

A worker decides a batch together (one state read, one consent resolution per client, one commit
of all audit entries, delivery rows and outbox items) and then pushes; these tests put messages
with different fates into one batch -- delivered by push and by pull, blocked at delivery, a
rendering failure, a recipient's refusal, undecodable bytes, a bug -- and check that each one
ends exactly as it would alone. Each runs on SQLite with the embedded broker and on PostgreSQL
with the real RabbitMQ (a virtual host and a schema of its own).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kombu import Producer
from sqlalchemy import func, select, text

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import ConsentStore
from casebridge.db import get_database
from casebridge.gateway.demo import sample_bytes
from casebridge.routing import worker as worker_module
from casebridge.routing.dlq import DeadLetters
from casebridge.routing.pipeline import CONTENT_TYPE, encode_envelope
from casebridge.routing.routes import demo_route_table
from casebridge.routing.runtime import Routing
from casebridge.routing.store import DeliveryRow, OutboxRow, delivery_id
from casebridge.routing.topology import connect
from casebridge.routing.worker import Verdict, Worker
from tests.consent.store_fixtures import pg_schema_url
from tests.private_pg import PrivatePostgres
from tests.routing.conftest import PUSH_URLS, Recipients
from tests.routing.test_rabbitmq_faults import (
    case_exports,
    sample_bytes_scenario,
    vhost,  # noqa: F401 - fixture
)
from tests.routing.test_worker_resilience import private_pg  # noqa: F401 - fixture (port 5436)

PROVIDER = "suchtberatung-diakonie-du"  # pull: the outbox
JOBCENTER, SOZIALAMT = "jobcenter-duisburg", "sozialamt-duisburg"  # push


@dataclass
class Stack:
    routing: Routing
    recipients: Recipients
    refused: set[str]  # delivery ids the recipients answer 422

    def worker(self, **kw: Any) -> Worker:
        kw.setdefault("batch_size", 32)
        kw.setdefault("linger", 0.3)
        return self.routing.worker(push=self.recipients.client(), **kw)

    def rows(self) -> dict[str, tuple[str, str | None]]:
        with self.routing.db.session() as s:
            return {r.delivery_id: (r.state, r.reason) for r in s.query(DeliveryRow)}

    def outbox(self) -> set[str]:
        with self.routing.db.session() as s:
            return set(s.scalars(select(OutboxRow.delivery_id)))

    def delivery_decisions(self) -> list[tuple[str | None, str | None]]:
        return [(e.message_id, e.recipient) for e in AuditTrail(self.routing.db).entries()
                if e.kind == "decision" and e.stage == "delivery"]


def _consents(db: Any) -> None:
    store = ConsentStore(db)
    for name in ("consent-self-001.json", "consent-guardian-001.json"):
        store.import_fhir(sample_bytes(f"consent-fhir/{name}"), source=name)
    # the job centre may report back to the social office (the poison message below needs it)
    store.import_fhir(
        sample_bytes_scenario("consent-report-back-001.json")
        .replace(b'"value": "jobcenter-duisburg"}}}', b'"value": "sozialamt-duisburg"}}}')
        .replace(b"cons-sb-2026-0042", b"cons-sb-2026-0099"), source="rb")


def _stack(db_url: str, broker_url: str) -> Stack:
    db = get_database(db_url)
    _consents(db)
    routing = Routing(routes=demo_route_table(PUSH_URLS), db=db, url=broker_url,
                      prefix=f"t{uuid.uuid4().hex[:10]}")
    refused: set[str] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        refuse = request.headers["Idempotency-Key"] in refused
        return httpx.Response(422 if refuse else 202, text="no" if refuse else "ok")

    return Stack(routing, Recipients(answer=answer), refused)


@pytest.fixture(params=["sqlite+embedded",
                        pytest.param("postgres+rabbitmq",
                                     marks=[pytest.mark.postgres, pytest.mark.rabbitmq])])
def stack(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Stack]:
    if request.param == "sqlite+embedded":
        s = _stack(f"sqlite:///{tmp_path / 'store.db'}", f"sqla+sqlite:///{tmp_path / 'mq.db'}")
        yield s
        s.routing.close()
        return
    name = request.getfixturevalue("vhost")
    for url in pg_schema_url():
        s = _stack(url, f"amqp://guest:guest@127.0.0.1:5672/{name}")
        try:
            yield s
        finally:
            s.routing.close()


# --- the messages of one mixed batch -----------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One queued copy and the fate it must meet."""

    body: bytes
    did: str | None
    recipient: str
    fate: tuple[str, str | None]  # (kind, reason)


def _released(stack: Stack, env: TransferEnvelope) -> dict[str, TransferEnvelope]:
    """What the inbound gate releases for ``env`` (decided and audited like the router does)."""
    routes = stack.routing.routes
    result = stack.routing.gate.check(env, at=datetime.now(UTC), stage="inbound",
                                      policies=routes.policies(routes.check(env)))
    return result.released


def mixed_batch(stack: Stack) -> list[Copy]:
    """Copies for push and pull recipients, one refused, one blocked (its client has no
    consent covering its sender: as if queued before a withdrawal), one that cannot render,
    and garbage."""
    copies: list[Copy] = []
    for n, raw in enumerate(case_exports(2)):
        env = get_adapter("jugendamt").parse(raw)[0]
        for recipient, copy in sorted(_released(stack, env).items()):
            did = delivery_id(env.sender, env.message_id, recipient)
            fate = ("delivered", None)
            if n == 0 and recipient == SOZIALAMT:
                stack.refused.add(did)
                fate = ("dead", "refused")
            copies.append(Copy(encode_envelope(copy), did, recipient, fate))
    zuweisung = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))[0]
    [(recipient, copy)] = _released(stack, zuweisung).items()
    assert recipient == PROVIDER
    copies.append(Copy(encode_envelope(copy), delivery_id(copy.sender, copy.message_id, PROVIDER),
                       PROVIDER, ("delivered", None)))
    # the social office's notification: no consent covers it, the gate at delivery blocks it
    notice = get_adapter("sozialamt").parse(sample_bytes("sozialamt/fallmitteilung-001.xml"))[0]
    recipient = notice.recipients[0]
    copies.append(Copy(encode_envelope(notice.for_recipient(recipient)),
                       delivery_id(notice.sender, notice.message_id, recipient), recipient,
                       ("blocked", "sender_not_covered")))
    # a status update for the social office, whose system has no format for it
    update = get_adapter("jobcenter").parse(sample_bytes("jobcenter/rueckmeldung-001.xml"))[0]
    poison = update.model_copy(update={"recipients": [SOZIALAMT]})
    [(recipient, copy)] = _released(stack, poison).items()
    copies.append(Copy(encode_envelope(copy), delivery_id(poison.sender, poison.message_id,
                                                          SOZIALAMT),
                       SOZIALAMT, ("dead", "render_failed")))
    copies.append(Copy(b"\xff\xfegarbage", None, JOBCENTER, ("dead", "undecodable")))
    return copies


def _publish(stack: Stack, copies: list[Copy]) -> None:
    conn = connect(stack.routing.url)
    try:
        topology = stack.routing.topology
        topology.declare(conn)
        producer = Producer(conn.default_channel)
        for c in copies:
            headers = {"recipient": c.recipient, "queued_at": datetime.now(UTC).isoformat()}
            if c.did:
                headers["delivery_id"] = c.did
            producer.publish(c.body, exchange=topology.exchange,
                             routing_key=topology.routing_key(c.recipient),
                             content_type=CONTENT_TYPE, content_encoding="binary",
                             delivery_mode=2, headers=headers)
    finally:
        conn.release()


def _fate(result: Any) -> tuple[str, str | None]:
    assert isinstance(result, Verdict), result
    return result.kind, result.reason


# --- the batch itself (no broker) --------------------------------------------------------------


def test_a_mixed_batch_gives_each_message_exactly_its_own_fate(stack: Stack) -> None:
    copies = mixed_batch(stack)
    service = stack.routing.delivery_service(stack.recipients.client(), push_concurrency=3)
    now = datetime.now(UTC).isoformat()
    results = service.process_batch([(c.body, {"queued_at": now}) for c in copies])
    service.close()
    assert [_fate(r) for r in results] == [c.fate for c in copies]
    rows = stack.rows()
    assert {c.did: c.fate for c in copies if c.did is not None} == {
        d: rows[d] for d in rows}
    assert stack.outbox() == {c.did for c in copies if c.recipient == PROVIDER}
    pushed = [r.headers["Idempotency-Key"] for r in stack.recipients.requests]
    assert sorted(pushed) == sorted(c.did for c in copies  # the refused one was tried once
                                    if c.recipient in (JOBCENTER, SOZIALAMT)
                                    and c.fate in (("delivered", None), ("dead", "refused")))
    # one delivery decision per decided copy (not the garbage), the chain intact
    assert len(stack.delivery_decisions()) == len(copies) - 1
    assert AuditTrail(stack.routing.db).verify().ok
    # handled again (a redelivery): every delivered copy is recognised, nothing pushed again
    service = stack.routing.delivery_service(stack.recipients.client())
    again = service.process_batch([(c.body, {"queued_at": now}) for c in copies])
    service.close()
    assert [r.kind for r, c in zip(again, copies, strict=True)
            if c.fate == ("delivered", None)] == ["duplicate"] * 4
    assert len(stack.recipients.requests) == len(pushed) + 1  # only the refused one, again


def test_a_bug_in_one_message_of_a_batch_fails_only_that_message(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = [c for c in mixed_batch(stack) if c.fate == ("delivered", None)]
    provider = next(c for c in copies if c.recipient == PROVIDER)
    real = worker_module.record_plans

    def record_plans(session: Any, delivered: Any, **kw: Any) -> list[int]:
        if any(envelope.recipients == [PROVIDER] for envelope, _, _ in delivered):
            raise RuntimeError("a bug")  # fails the batch's commit: all of it is rolled back
        return real(session, delivered, **kw)

    monkeypatch.setattr(worker_module, "record_plans", record_plans)
    service = stack.routing.delivery_service(stack.recipients.client())
    results = service.process_batch([(c.body, None) for c in copies])
    service.close()
    for c, result in zip(copies, results, strict=True):
        if c is provider:
            assert isinstance(result, RuntimeError)
        else:
            assert isinstance(result, Verdict) and result.kind == "delivered"
    assert stack.outbox() == set()
    assert provider.did not in stack.rows()
    # the rolled-back batch left no decision behind: one per copy delivered, none for the bug
    decisions = stack.delivery_decisions()
    assert len(decisions) == len(copies) - 1 and len(set(decisions)) == len(decisions)
    assert AuditTrail(stack.routing.db).verify().ok


# --- through the worker and the broker ---------------------------------------------------------


def _batches(worker: Worker) -> list[int]:
    sizes: list[int] = []
    real = worker.service.process_batch

    def process_batch(items: Any) -> Any:
        sizes.append(len(items))
        return real(items)

    worker.service.process_batch = process_batch  # type: ignore[method-assign]
    return sizes


def test_a_worker_acks_dead_letters_and_records_each_message_of_a_batch_by_its_fate(
    stack: Stack,
) -> None:
    copies = mixed_batch(stack)
    _publish(stack, copies)
    worker = stack.worker(threads=2)
    sizes = _batches(worker)
    worker.run(idle_timeout=1.5)
    worker.close()
    want: dict[str, int] = {}
    for c in copies:
        want[c.fate[0]] = want.get(c.fate[0], 0) + 1
    assert worker.counts == want
    assert max(sizes) > 1, f"no batch formed: {sizes}"
    letters = {(d.id, d.reason) for d in DeadLetters(stack.routing).list()}
    assert letters == {(c.did, c.fate[1]) for c in copies if c.fate[0] == "dead" and c.did} | {
        (d, "undecodable") for d, r in letters if r == "undecodable"}
    assert sum(1 for _, r in letters if r == "undecodable") == 1
    rows = stack.rows()
    assert {d for d, (s, _) in rows.items() if s == "delivered"} == {
        c.did for c in copies if c.fate[0] == "delivered"}
    assert stack.outbox() == {c.did for c in copies if c.recipient == PROVIDER}
    dead_entries = [e for e in AuditTrail(stack.routing.db).entries() if e.kind == "dead_letter"]
    assert sorted(str(e.outcome) for e in dead_entries) == sorted(
        str(c.fate[1]) for c in copies if c.fate[0] == "dead")
    assert AuditTrail(stack.routing.db).verify().ok


def test_a_bug_in_one_message_dead_letters_only_that_one(stack: Stack) -> None:
    copies = [c for c in mixed_batch(stack) if c.fate == ("delivered", None)]
    broken = next(c for c in copies if c.recipient == JOBCENTER)
    _publish(stack, copies)
    worker = stack.worker(threads=1)
    sizes = _batches(worker)
    real_push = worker.service.push.push

    def push(target: Any, body: bytes, **kw: Any) -> Any:
        if kw["delivery_id"] == broken.did:
            raise RuntimeError("a bug")  # neither the recipient's fault nor an outage
        return real_push(target, body, **kw)

    worker.service.push.push = push  # type: ignore[method-assign]
    worker.run(idle_timeout=1.5)
    worker.close()
    assert worker.counts == {"delivered": len(copies) - 1, "dead": 1}
    assert max(sizes) > 1, f"no batch formed: {sizes}"
    assert [(d.id, d.reason, d.detail) for d in DeadLetters(stack.routing).list()] == [
        (broken.did, "internal_error", {"exc_type": "RuntimeError"})]
    rows = stack.rows()
    assert rows[broken.did] == ("dead", "internal_error")
    assert {d for d, (s, _) in rows.items() if s == "delivered"} == {
        c.did for c in copies if c is not broken}


# --- a store outage in the middle of a batch (PostgreSQL of its own, RabbitMQ) -----------------

@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.parametrize("crash", ["before_commit", "during_pushes"])
def test_a_store_outage_mid_batch_holds_the_batch_then_delivers_each_copy_once(
    tmp_path: Any, vhost: str, private_pg: PrivatePostgres, crash: str  # noqa: F811
) -> None:
    """The store crashes while a batch is decided (its commit fails: nothing of it is kept) or
    while its pushes are accepted (their deliveries cannot be recorded): the worker holds the
    batch, and once the store is back every copy is delivered exactly once -- no second push,
    one delivery decision per copy, no dead letter."""
    stack = _stack(private_pg.url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    try:
        raws = case_exports(6)
        router = stack.routing.router()
        for raw in raws:
            router.submit(raw, system="jugendamt")
        worker = stack.worker(threads=3)
        sizes = _batches(worker)
        crashed: list[str] = []

        def crash_now() -> None:
            crashed.append(crash)
            private_pg.stop(immediate=True)
            threading.Timer(3.0, private_pg.start).start()

        if crash == "before_commit":
            real_drafts = stack.routing.gate.drafts

            def drafts(*a: Any, **kw: Any) -> Any:
                result = real_drafts(*a, **kw)
                if not crashed:
                    crash_now()
                return result

            stack.routing.gate.drafts = drafts  # type: ignore[method-assign]
        else:
            real_push = worker.service.push.push

            def push(target: Any, body: bytes, **kw: Any) -> Any:
                result = real_push(target, body, **kw)
                if not crashed:
                    crash_now()
                return result

            worker.service.push.push = push  # type: ignore[method-assign]
        thread = threading.Thread(target=worker.run, kwargs={"idle_timeout": 8.0}, daemon=True)
        thread.start()
        thread.join(timeout=120)
        worker.close()
        assert not thread.is_alive() and crashed
        assert max(sizes) > 1, f"no batch formed: {sizes}"
        received = [r.headers["Idempotency-Key"] for r in stack.recipients.requests]
        assert len(received) == len(set(received)) == 12, "a copy was pushed twice or never"
        assert worker.counts == {"delivered": 12}
        assert DeadLetters(stack.routing).list() == []
        decisions = stack.delivery_decisions()
        assert len(decisions) == len(set(decisions)) == 12, "one delivery decision per copy"
        with stack.routing.db.connection() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM routing_deliveries WHERE state = 'delivered'"
            )).scalar_one() == 12
        assert AuditTrail(stack.routing.db).verify().ok
    finally:
        stack.routing.close()


def test_batch_size_one_is_the_per_message_path(stack: Stack) -> None:
    """``batch_size=1`` (the benchmark's baseline) delivers one message per commit."""
    copies = [c for c in mixed_batch(stack) if c.fate == ("delivered", None)]
    _publish(stack, copies)
    worker = stack.worker(threads=1, batch_size=1, linger=0.0)
    sizes = _batches(worker)
    started = time.monotonic()
    worker.run(idle_timeout=1.0)
    worker.close()
    assert time.monotonic() - started < 60
    assert set(sizes) == {1} and len(sizes) == len(copies)
    assert worker.counts == {"delivered": len(copies)}
    with stack.routing.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 1


# --- the set-based plan records equal the one-by-one ones --------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_dbs(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Any, Any]]:
    if request.param == "sqlite":
        yield (get_database(f"sqlite:///{tmp_path / 'a.db'}"),
               get_database(f"sqlite:///{tmp_path / 'b.db'}"))
        return
    for a in pg_schema_url():
        for b in pg_schema_url():
            yield get_database(a), get_database(b)


def test_plans_recorded_together_end_as_if_recorded_one_by_one(two_dbs: tuple[Any, Any]) -> None:
    from datetime import timedelta

    from casebridge.routing.status import record_plan, record_plans
    from casebridge.routing.store import MeasureRow

    plan = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))[0]
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)

    def version(name: str, minutes: int) -> TransferEnvelope:
        return plan.model_copy(update={"message_id": name,
                                       "created_at": at + timedelta(minutes=minutes)})

    a, b, older, c = version("a", 10), version("b", 20), version("old", 5), version("c", 30)
    first = [(a, PROVIDER, "c-1"), (a, "jobcenter-duisburg", "c-2")]
    batch = [(b, PROVIDER, "c-1"), (b, SOZIALAMT, "c-1"), (older, PROVIDER, "c-1"),
             (a, SOZIALAMT, "c-2"), (c, PROVIDER, "c-3"), (older, PROVIDER, "c-3"),
             (a, PROVIDER, None)]
    routes = demo_route_table()
    one_by_one, together = two_dbs
    for db in two_dbs:
        with db.session() as s:
            for env, recipient, client in first:
                record_plan(s, env, recipient, client_id=client, routes=routes, at=at)
    with one_by_one.session() as s:
        counts = [record_plan(s, env, r, client_id=cl, routes=routes, at=at)
                  for env, r, cl in batch]
    with together.session() as s:
        assert record_plans(s, batch, routes=routes, at=at) == counts
    assert counts[2] == 0 and counts[0] > 0  # the older plan did not replace the newer one

    def stored(db: Any) -> list[tuple[Any, ...]]:
        with db.session() as s:
            return sorted((r.owner, r.client_key, r.message_id, r.recipients, r.position,
                           r.responsible_role, r.due) for r in s.query(MeasureRow))

    assert stored(together) == stored(one_by_one) != []


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_schema_url()


@pytest.mark.postgres
def test_two_workers_holding_copies_of_one_message_push_it_once(pg_url: str) -> None:
    """The relay may queue a message twice (published, then the store failed before the publish
    was marked); two workers whose batches hold the two copies at once push it once: the
    second waits for the first one's push and finds it recorded."""
    stack = _stack(pg_url, "memory://")
    copies = [c for c in mixed_batch(stack) if c.recipient == JOBCENTER
              and c.fate == ("delivered", None)]
    slow = stack.recipients.answer

    def answer(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)  # both batches reach the push while the first one is in flight
        return slow(request)

    stack.recipients.answer = answer
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def worker() -> None:
        service = stack.routing.delivery_service(stack.recipients.client())
        barrier.wait()
        results.extend(service.process_batch([(c.body, None) for c in copies]))
        service.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.kind for r in results) == ["delivered"] * len(copies) + [
        "duplicate"] * len(copies)
    keys = [r.headers["Idempotency-Key"] for r in stack.recipients.requests]
    assert sorted(keys) == sorted(c.did for c in copies), "a copy was pushed twice"
    stack.routing.close()
