"""A worker never dies of one message, and a store outage never becomes a dead letter.

On the production stack: PostgreSQL (which enforces column widths) and the real RabbitMQ with
quorum queues (each test in its own virtual host). The store outage test stops a private
PostgreSQL cluster (port 5436) that it started itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from casebridge.codes import DeadReason
from casebridge.consent.audit import AuditTrail
from casebridge.db import reset_databases
from casebridge.routing.dlq import DeadLetters
from casebridge.routing.worker import Worker
from tests.consent.store_fixtures import pg_schema_url
from tests.private_pg import PrivatePostgres
from tests.routing.test_rabbitmq_faults import (
    PUSH,
    Env,
    case_exports,
    expected_keys,
    make_env,
    run_worker,
    vhost,  # noqa: F401 - fixture
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
FAST_RETRY = {"max_attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.1, "jitter": 0}
PRIVATE_PG_PORT = 5436


def _close(env: Env) -> None:
    env.routing.close()
    for s in env.stand_ins.values():
        s.close()


@pytest.fixture
def pg_env(tmp_path, vhost) -> Iterator[Env]:  # noqa: F811
    for url in pg_schema_url():
        env = make_env(tmp_path, vhost, FAST_RETRY, db_url=url)
        try:
            yield env
        finally:
            _close(env)


def _audit_kinds(env: Env, kind: str) -> list[Any]:
    return [e for e in AuditTrail(env.routing.db).entries() if e.kind == kind]


def test_retries_exhausted_on_postgresql_is_an_audited_dead_letter(pg_env: Env) -> None:
    pg_env.stand_ins["jobcenter-duisburg"].down()
    raws = case_exports(3)
    router = pg_env.routing.router()
    for raw in raws:
        router.submit(raw, system="jugendamt")
    assert run_worker(pg_env) == {"delivered": 3, "dead": 3}
    dead = _audit_kinds(pg_env, "dead_letter")
    assert [e.outcome for e in dead] == [str(DeadReason.RETRIES_EXHAUSTED)] * 3
    assert {e.recipient for e in dead} == {"jobcenter-duisburg"}
    assert all(e.details["attempts"] == 3 for e in dead)
    assert len(DeadLetters(pg_env.routing).list()) == 3
    assert AuditTrail(pg_env.routing.db).verify().ok


def test_an_unexpected_error_dead_letters_that_message_and_the_worker_goes_on(
    pg_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    raws = case_exports(4)
    router = pg_env.routing.router()
    for raw in raws:
        router.submit(raw, system="jugendamt")
    worker = pg_env.routing.worker()
    real_push = worker.service.push.push
    broken: list[str] = []

    def push(target: Any, body: bytes, **kw: Any) -> Any:
        # one message hits a bug (not the recipient's fault, not an outage)
        if not broken and target.url == pg_env.stand_ins["sozialamt-duisburg"].url:
            broken.append(kw["delivery_id"])
            raise RuntimeError("a bug")
        return real_push(target, body, **kw)

    worker.service.push.push = push  # type: ignore[method-assign]
    try:
        worker.run(idle_timeout=1.0)
    finally:
        worker.close()
    assert worker.counts == {"delivered": 7, "dead": 1}
    letters = DeadLetters(pg_env.routing).list()
    assert [(d.id, d.reason, d.detail) for d in letters] == [
        (broken[0], "internal_error", {"exc_type": "RuntimeError"})]
    dead = _audit_kinds(pg_env, "dead_letter")
    assert [(e.outcome, e.details["exc_type"], e.details["delivery_id"]) for e in dead] == [
        ("internal_error", "RuntimeError", broken[0])]
    assert len(pg_env.received_keys()) == 7


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(PRIVATE_PG_PORT)
    try:
        yield server
    finally:
        reset_databases()  # the next test's cluster has the same URL but none of these tables
        server.close()


@pytest.mark.slow
def test_store_down_pauses_without_dead_letters_then_delivers_everything_once(
    tmp_path, vhost, private_pg: PrivatePostgres  # noqa: F811
) -> None:
    env = make_env(tmp_path, vhost, FAST_RETRY, db_url=private_pg.url)
    try:
        raws = case_exports(8)
        router = env.routing.router()
        for raw in raws:
            router.submit(raw, system="jugendamt")
        private_pg.stop(immediate=True)
        state = tmp_path / "worker.state"
        worker: Worker = env.routing.worker(threads=2, state_file=state)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while worker.state != "paused_store" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.state == "paused_store"
        assert state.read_text().strip() == "paused_store"  # readiness reports it
        time.sleep(4)  # an outage of several probe intervals
        assert worker.counts == {} and env.received_keys() == set()
        private_pg.start()
        deadline = time.monotonic() + 60
        while len(env.received_keys()) < 16 and time.monotonic() < deadline:
            time.sleep(0.1)
        while worker.state != "consuming" and time.monotonic() < deadline:
            time.sleep(0.1)  # the last held message is pushed just before consuming resumes
        assert state.read_text().strip() == "consuming"
        worker.stop()
        thread.join(timeout=30)
        worker.close()
        assert env.received_keys() == expected_keys(raws)
        assert worker.counts == {"delivered": 16}
        assert env.repeats() == 0
        assert DeadLetters(env.routing).list() == []
        assert all(env.queued(a) == 0 for a in PUSH)
        assert _audit_kinds(env, "dead_letter") == []
        with env.routing.db.connection() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM routing_deliveries WHERE state = 'delivered'"
            )).scalar_one() == 16
    finally:
        _close(env)


@pytest.mark.slow
def test_a_push_accepted_while_the_store_crashes_is_recorded_later_never_pushed_again(
    tmp_path, vhost, private_pg: PrivatePostgres  # noqa: F811
) -> None:
    """The recipient accepts a push, then the store crashes before the delivery is recorded:
    the held message is recorded as delivered once the store is back, without a second push and
    without a second delivery decision."""
    env = make_env(tmp_path, vhost, FAST_RETRY, db_url=private_pg.url)
    try:
        raws = case_exports(3)
        router = env.routing.router()
        for raw in raws:
            router.submit(raw, system="jugendamt")
        worker: Worker = env.routing.worker(threads=2)
        real_push = worker.service.push.push
        crashed: list[str] = []

        def push(target: Any, body: bytes, **kw: Any) -> Any:
            result = real_push(target, body, **kw)
            if not crashed:  # the first accepted push: the store dies before it is recorded
                crashed.append(kw["delivery_id"])
                private_pg.stop(immediate=True)
                threading.Timer(3.0, private_pg.start).start()
            return result

        worker.service.push.push = push  # type: ignore[method-assign]
        thread = threading.Thread(target=worker.run, kwargs={"idle_timeout": 8.0}, daemon=True)
        thread.start()
        thread.join(timeout=120)
        worker.close()
        assert not thread.is_alive()
        assert crashed
        assert env.received_keys() == expected_keys(raws)
        assert env.repeats() == 0, "a push accepted before the crash was pushed again"
        assert worker.counts == {"delivered": 6}
        assert DeadLetters(env.routing).list() == []
        decisions = [e for e in AuditTrail(env.routing.db).entries()
                     if e.kind == "decision" and e.stage == "delivery"]
        assert len(decisions) == 6, "one delivery decision per copy"
        with env.routing.db.connection() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM routing_deliveries WHERE state = 'delivered'"
            )).scalar_one() == 6
    finally:
        _close(env)


@pytest.mark.slow
def test_a_worker_started_while_the_store_is_down_waits_for_it_and_then_delivers(
    tmp_path, vhost, private_pg: PrivatePostgres  # noqa: F811
) -> None:
    """``casebridge worker`` started during a database outage does not exit: it reports
    ``paused_store`` and starts consuming once the store answers."""
    env = make_env(tmp_path, vhost, FAST_RETRY, db_url=private_pg.url)
    proc = None
    try:
        raws = case_exports(3)
        router = env.routing.router()
        for raw in raws:
            router.submit(raw, system="jugendamt")
        env.routing.db.dispose()
        private_pg.stop(immediate=True)
        state = tmp_path / "worker.state"
        proc = subprocess.Popen(
            [sys.executable, "-m", "casebridge", "worker", "--state-file", str(state)],
            env=env.worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(2)  # several start attempts
        assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
        assert state.read_text().strip() == "paused_store"
        private_pg.start()
        deadline = time.monotonic() + 60
        while len(env.received_keys()) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env.received_keys() == expected_keys(raws)
        assert state.read_text().strip() == "consuming"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert DeadLetters(env.routing).list() == []
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        _close(env)


def _copy_dead_letters(env: Env) -> int:
    """Put a second copy of every dead letter into the queue (a worker restarted between its
    dead-letter publish and its ack left exactly such copies)."""
    dlq = DeadLetters(env.routing)
    publisher = env.routing.publisher()
    with dlq._taken() as messages:
        for m in messages:
            publisher.publish_dead(m.body, recipient=str(m.headers["recipient"]),
                                   headers=dict(m.headers))
        return len(messages)


def test_replay_is_idempotent_one_row_per_message_and_skips_what_was_delivered(
    pg_env: Env,
) -> None:
    jobcenter = pg_env.stand_ins["jobcenter-duisburg"]
    jobcenter.down()
    raws = case_exports(2)
    router = pg_env.routing.router()
    for raw in raws:
        router.submit(raw, system="jugendamt")
    assert run_worker(pg_env) == {"delivered": 2, "dead": 2}
    assert _copy_dead_letters(pg_env) == 2
    dlq = DeadLetters(pg_env.routing)
    letters = dlq.list()
    assert len(letters) == 2 and {d.copies for d in letters} == {2}
    assert all(d.attempts >= 3 and d.first_failure and d.first_failure <= d.dead_at
               and d.reason == "retries_exhausted" for d in letters)
    jobcenter.up()
    first = letters[0].id
    with dlq._taken() as messages:
        kept = next((m.body, dict(m.headers)) for m in messages
                    if m.headers["delivery_id"] == first)
    # several copies replay as one
    assert [(o.id, o.result) for o in dlq.replay([first])] == [(first, "requeued")]
    assert run_worker(pg_env) == {"delivered": 1}
    # a copy of the delivered message turns up in the queue again: its replay is skipped
    pg_env.routing.publisher().publish_dead(kept[0], recipient="jobcenter-duisburg",
                                            headers=kept[1])
    outcomes = {o.id: o.result for o in dlq.replay()}
    assert outcomes[first] == "skipped_delivered"
    assert list(outcomes.values()).count("requeued") == 1
    assert run_worker(pg_env) == {"delivered": 1}
    assert dlq.list() == []
    assert pg_env.received_keys() == expected_keys(raws)
    assert pg_env.repeats() == 0
    skipped = _audit_kinds(pg_env, "replay_skipped")
    assert [(e.outcome, e.details["delivery_id"]) for e in skipped] == [
        ("skipped_delivered", first)]
    assert len(_audit_kinds(pg_env, "dead_letter_replayed")) == 2
    assert AuditTrail(pg_env.routing.db).verify().ok


def test_a_message_redelivered_to_the_limit_is_dead_lettered_audited_not_by_the_broker(
    pg_env: Env,
) -> None:
    from casebridge.routing.topology import DELIVERY_LIMIT, connect

    pg_env.routing.router().submit(case_exports(1)[0], system="jugendamt")
    conn = connect(pg_env.routing.url)
    queue = pg_env.routing.topology.queue("jobcenter-duisburg")(conn.default_channel)
    for _ in range(DELIVERY_LIMIT):  # as if a worker died holding it, again and again
        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = queue.get(no_ack=False)
        assert message is not None
        message.requeue()
    conn.release()
    assert run_worker(pg_env) == {"delivered": 1, "dead": 1}  # the other recipient delivered
    [letter] = DeadLetters(pg_env.routing).list()
    assert (letter.reason, letter.recipient) == ("broker_delivery_limit", "jobcenter-duisburg")
    [entry] = _audit_kinds(pg_env, "dead_letter")
    assert entry.outcome == "broker_delivery_limit"
    assert entry.details["attempts"] == DELIVERY_LIMIT + 1
    assert "jobcenter-duisburg" not in {r for r, s in pg_env.stand_ins.items() if s.keys()}
