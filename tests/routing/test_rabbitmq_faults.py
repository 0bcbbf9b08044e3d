"""Faults that must lose nothing, against the real RabbitMQ (127.0.0.1:5672).

Each test runs in its own virtual host (created and deleted here), so forcing connections closed
with ``rabbitmqctl close_all_connections -p VHOST`` hits only this test's connections and never
another test run on the same broker. Every test counts messages in and out and asserts equality.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kombu import Producer

from casebridge.adapters import get_adapter
from casebridge.consent.store import ConsentStore
from casebridge.db import get_database
from casebridge.errors import BrokerUnavailable
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.dlq import DeadLetters
from casebridge.routing.routes import RouteTable, RouteTableConfig, demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.standin import StandIn
from casebridge.routing.store import DeliveryRow, delivery_id
from casebridge.routing.topology import connect

pytestmark = [pytest.mark.rabbitmq]

PUSH = ("jobcenter-duisburg", "sozialamt-duisburg")
RABBITMQCTL = shutil.which("rabbitmqctl")


def ctl(*args: str) -> str:
    return subprocess.run([RABBITMQCTL or "rabbitmqctl", *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def closed(output: str) -> int:
    """Connections ``close_all_connections`` reports it closed."""
    match = re.search(r"Closed (\d+) connection", output)
    return int(match.group(1)) if match else 0


@pytest.fixture
def vhost() -> Iterator[str]:
    if RABBITMQCTL is None:
        pytest.skip("rabbitmqctl is not installed")
    name = f"cb-test-{uuid.uuid4().hex[:10]}"
    try:
        ctl("add_vhost", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"rabbitmqctl cannot manage the local broker here ({type(exc).__name__})")
    ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    ctl("delete_vhost", name)


@dataclass
class Env:
    routing: Routing
    stand_ins: dict[str, StandIn]
    vhost: str
    route_file: Path
    db_url: str
    tmp: Path

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
        env.update({
            "CASEBRIDGE_DATABASE_URL": self.db_url,
            "CASEBRIDGE_BROKER_URL": self.routing.url,
            "CASEBRIDGE_BROKER_PREFIX": self.routing.prefix,
            "CASEBRIDGE_ROUTE_TABLE": str(self.route_file),
            "CASEBRIDGE_DATA_DIR": str(self.tmp),
            "CASEBRIDGE_LOG_LEVEL": "warning",
        })
        return env

    def delivered(self) -> int:
        with self.routing.db.session() as s:
            return s.query(DeliveryRow).filter(DeliveryRow.state == "delivered").count()

    def received_keys(self) -> set[str]:
        return set().union(*(s.keys() for s in self.stand_ins.values()))

    def repeats(self) -> int:
        return sum(s.duplicates() for s in self.stand_ins.values())

    def queued(self, agency: str) -> int:
        conn = connect(self.routing.url)
        try:
            queue = self.routing.topology.queue(agency)(conn.default_channel)
            return int(queue.queue_declare(passive=True).message_count)
        finally:
            conn.release()


def make_env(tmp_path: Path, vhost: str, retry: dict[str, float],
             db_url: str | None = None) -> Env:
    stand_ins = {a: StandIn(a) for a in PUSH}
    data = yaml.safe_load(demo_route_table_text())
    data["retry"] = retry
    for agency in data["agencies"]:
        if agency["id"] in stand_ins:
            agency["delivery"] = {"mode": "push", "url": stand_ins[agency["id"]].url,
                                  "timeout": 2}
    route_file = tmp_path / "routes.yaml"
    route_file.write_text(yaml.safe_dump(data))
    db_url = db_url or f"sqlite:///{tmp_path / 'casebridge.db'}"
    db = get_database(db_url)
    store = ConsentStore(db)
    store.import_fhir(sample_bytes("consent-fhir/consent-guardian-001.json"), source="g")
    routing = Routing(routes=RouteTable(RouteTableConfig.model_validate(data)), db=db,
                      url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}", prefix="cbt")
    return Env(routing, stand_ins, vhost, route_file, db_url, tmp_path)


@pytest.fixture
def env(tmp_path, vhost) -> Iterator[Env]:
    e = make_env(tmp_path, vhost, {"max_attempts": 3, "initial_backoff": 0.05,
                                   "max_backoff": 0.1, "jitter": 0})
    yield e
    e.routing.close()
    for s in e.stand_ins.values():
        s.close()


def case_exports(n: int) -> list[bytes]:
    """``n`` distinct youth-office case exports (distinct message ids), each to two recipients."""
    raw = sample_bytes("jugendamt/fall-001.json")
    return [raw.replace(b"2026-11-21T11:30:00", f"2026-11-21T{10 + i // 3600:02d}:"
                        f"{i // 60 % 60:02d}:{i % 60:02d}".encode()) for i in range(n)]


def expected_keys(raws: list[bytes]) -> set[str]:
    keys = set()
    for raw in raws:
        env = get_adapter("jugendamt").parse(raw)[0]
        keys |= {delivery_id(env.sender, env.message_id, r) for r in env.recipients}
    return keys


def run_worker(env: Env, *, idle: float = 1.0, threads: int = 1) -> dict[str, int]:
    worker = env.routing.worker(threads=threads)
    try:
        worker.run(idle_timeout=idle)
    finally:
        worker.close()
    return dict(worker.counts)


@pytest.mark.parametrize("threads", [1, 3])
def test_worker_killed_mid_batch_then_restarted_delivers_all_once(env, threads):
    raws = case_exports(60)
    router = env.routing.router()
    for raw in raws:
        router.submit(raw, system="jugendamt")
    sent = expected_keys(raws)
    assert len(sent) == 120
    for s in env.stand_ins.values():
        s.delay = 0.02  # stretch the batch so the kill lands in the middle of it
    cmd = [sys.executable, "-m", "casebridge", "worker", "--idle-exit", "2",
           "--threads", str(threads)]
    first = subprocess.Popen(cmd, env=env.worker_env(), stderr=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(env.received_keys()) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    got_before = len(env.received_keys())
    assert 30 <= got_before < 120, "the kill must land mid-batch"
    second = subprocess.run(cmd, env=env.worker_env(), capture_output=True, timeout=120,
                            check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert env.received_keys() == sent  # every message delivered
    assert env.delivered() == 120
    # at most the messages in flight at the kill (one per thread) may be pushed again; the
    # recipient recognises them by their Idempotency-Key (exactly once as far as it can tell)
    assert env.repeats() <= threads
    assert sum(len(s.received) for s in env.stand_ins.values()) == 120
    assert all(env.queued(a) == 0 for a in PUSH)
    assert DeadLetters(env.routing).list() == []


def test_connections_dropped_while_publishing_and_while_queued_lose_nothing(env):
    raws = case_exports(80)
    accepted: list[bytes] = []
    failures = 0
    router = env.routing.router()

    def publish() -> None:
        nonlocal failures
        for raw in raws:
            for _ in range(50):  # the sending agency retries its POST until it is accepted
                try:
                    router.submit(raw, system="jugendamt")
                except BrokerUnavailable:
                    failures += 1
                    time.sleep(0.1)
                    continue
                accepted.append(raw)
                break

    thread = threading.Thread(target=publish)
    thread.start()
    dropped_while_publishing = 0
    for _ in range(3):
        time.sleep(0.4)
        dropped_while_publishing += closed(
            ctl("close_all_connections", "-p", env.vhost, "fault test: publishing"))
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert dropped_while_publishing >= 1, "the fault must hit the publisher"
    ctl("close_all_connections", "-p", env.vhost, "fault test: queued")
    # and once more while the worker consumes
    timer = threading.Timer(0.5, ctl, args=("close_all_connections", "-p", env.vhost, "consume"))
    timer.start()
    counts = run_worker(env, idle=2.0, threads=3)
    timer.join()
    sent = expected_keys(accepted)
    assert len(accepted) == len(raws) and len(sent) == 160
    assert env.received_keys() == sent
    assert env.delivered() == 160
    assert counts.get("dead", 0) == 0
    assert all(env.queued(a) == 0 for a in PUSH)


def test_recipient_down_for_a_while_retries_complete(tmp_path, vhost):
    env = make_env(tmp_path, vhost, {"max_attempts": 12, "initial_backoff": 0.1,
                                     "max_backoff": 0.4, "jitter": 0.05})
    try:
        jobcenter = env.stand_ins["jobcenter-duisburg"]
        jobcenter.down()
        raws = case_exports(5)
        router = env.routing.router()
        for raw in raws:
            router.submit(raw, system="jugendamt")
        threading.Timer(1.2, jobcenter.up).start()
        counts = run_worker(env, idle=1.0)
        assert counts == {"delivered": 10}
        assert env.received_keys() == expected_keys(raws)
        assert DeadLetters(env.routing).list() == []
    finally:
        env.routing.close()
        for s in env.stand_ins.values():
            s.close()


def test_recipient_down_beyond_budget_dead_letters_then_replay_delivers(env):
    jobcenter = env.stand_ins["jobcenter-duisburg"]
    jobcenter.down()
    raws = case_exports(5)
    router = env.routing.router()
    for raw in raws:
        router.submit(raw, system="jugendamt")
    assert run_worker(env) == {"delivered": 5, "dead": 5}
    dlq = DeadLetters(env.routing)
    letters = dlq.list()
    assert len(letters) == 5
    assert {d.reason for d in letters} == {"retries_exhausted"}
    assert {d.recipient for d in letters} == {"jobcenter-duisburg"}
    jobcenter.up()
    assert [o.result for o in dlq.replay()] == ["requeued"] * 5
    assert run_worker(env) == {"delivered": 5}
    assert env.received_keys() == expected_keys(raws)  # 10 in, 10 out
    assert env.delivered() == 10
    assert dlq.list() == []


def test_poison_messages_go_to_the_dead_letter_queue_not_a_loop(env):
    # a status update for the social office: its system has no format for it (never renders)
    consent = (
        sample_bytes_scenario("consent-report-back-001.json")
        .replace(b'"value": "jobcenter-duisburg"}}}', b'"value": "sozialamt-duisburg"}}}')
        .replace(b"cons-sb-2026-0042", b"cons-sb-2026-0099")
    )
    store = ConsentStore(env.routing.db)
    store.import_fhir(sample_bytes("consent-fhir/consent-self-001.json"), source="s")
    store.import_fhir(consent, source="rb")
    update = get_adapter("jobcenter").parse(sample_bytes("jobcenter/rueckmeldung-001.xml"))[0]
    poison = update.model_copy(update={"recipients": ["sozialamt-duisburg"]})
    router = env.routing.router()
    assert [r.queued for r in router.route(poison).recipients] == [True]
    # and bytes that are not an envelope at all (corruption on the way)
    conn = connect(env.routing.url)
    env.routing.topology.declare(conn)
    Producer(conn.default_channel).publish(
        b"\xff\xfegarbage", exchange=env.routing.topology.exchange,
        routing_key=env.routing.topology.routing_key("jobcenter-duisburg"),
        content_type="application/octet-stream", content_encoding="binary", delivery_mode=2)
    conn.release()
    raws = case_exports(3)
    for raw in raws:
        router.submit(raw, system="jugendamt")
    started = time.monotonic()
    counts = run_worker(env)
    assert time.monotonic() - started < 30
    assert counts == {"delivered": 6, "dead": 2}  # 8 in, 6 delivered + 2 dead letters
    reasons = sorted(d.reason for d in DeadLetters(env.routing).list())
    assert reasons == ["render_failed", "undecodable"]
    assert all(env.queued(a) == 0 for a in PUSH)


def sample_bytes_scenario(name: str) -> bytes:
    from importlib.resources import files

    return files("casebridge.gateway.demo").joinpath("scenario", name).read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CASEBRIDGE_TEST_BROKER_RESTART") != "1",
                    reason="restarts the whole broker (disturbs other users of it); opt in with "
                           "CASEBRIDGE_TEST_BROKER_RESTART=1")
def test_broker_restarted_while_publishing_and_queued_loses_nothing(env):
    raws = case_exports(60)
    accepted: list[bytes] = []
    router = env.routing.router()

    def publish() -> None:
        for raw in raws:
            for _ in range(200):
                try:
                    router.submit(raw, system="jugendamt")
                except BrokerUnavailable:
                    time.sleep(0.25)
                    continue
                accepted.append(raw)
                break

    thread = threading.Thread(target=publish)
    thread.start()
    time.sleep(0.5)
    ctl("stop_app")
    time.sleep(1.0)
    ctl("start_app")
    thread.join(timeout=180)
    assert not thread.is_alive()
    ctl("stop_app")  # and once more with everything queued
    ctl("start_app")
    counts = run_worker(env, idle=2.0)
    sent = expected_keys(accepted)
    assert len(accepted) == len(raws)
    assert env.received_keys() == sent and env.delivered() == 120
    assert counts.get("dead", 0) == 0


def test_a_message_that_keeps_crashing_workers_is_dead_lettered_by_the_broker(env):
    from casebridge.routing.topology import DELIVERY_LIMIT

    raws = case_exports(1)
    env.routing.router().submit(raws[0], system="jugendamt")
    conn = connect(env.routing.url)
    queue = env.routing.topology.queue("jobcenter-duisburg")(conn.default_channel)
    taken = 0
    for _ in range(DELIVERY_LIMIT + 5):
        message = queue.get(no_ack=False)
        if message is None:
            time.sleep(0.2)
            message = queue.get(no_ack=False)
        if message is None:
            break
        taken += 1
        message.requeue()  # as if the worker died while holding it, again and again
    conn.release()
    assert taken == DELIVERY_LIMIT + 1  # the first delivery plus DELIVERY_LIMIT redeliveries
    [letter] = DeadLetters(env.routing).list()
    assert letter.reason == "broker_delivery_limit"  # one word of the closed list
    assert letter.detail["broker_reason"] == "delivery_limit"
    assert letter.recipient == "jobcenter-duisburg"
