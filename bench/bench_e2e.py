"""End to end on the production stack, against raw kombu in the same process shape.

    python -m bench.run --only e2e            # full: 1+1, 2+2, 3+3 processes, median of 3 runs
    python -m bench.run --only e2e --quick    # smoke (CI): 1+1, one run, small sizes

The system: the topology of ``deploy/prove_local.py`` (production settings, secrets in files, a
fresh RabbitMQ vhost with quorum queues, a fresh PostgreSQL database, both removed afterwards).
``G`` gateways (``casebridge serve``, uvicorn) and ``G`` workers (``casebridge worker``) run as
separate processes at the same time; a load process posts distinct job-centre referrals
(Zuweisung XML) over HTTP, 8 connections per gateway. Each referral is parsed and
XSD-validated, consent-checked and audited, written to the outbox and published with publisher
confirms; a worker checks the consent again, audits, renders FHIR and puts it into the pull
provider's outbox. The rate is referrals delivered per second, from the first timed post to the
last delivery (counted in the store).

Baselines, in the same run, same vhost, same queue type (quorum), same message size (the
canonical envelope the system publishes), persistent: ``G`` publisher processes and ``G``
consumer processes (prefetch 16, manual acks) running at the same time, publishing with the
broker's confirm awaited per message, and with confirms awaited in batches of 50.

Also: the gateway alone against a bare FastAPI endpoint (server CPU per request and requests/s),
the SQL statements, commits and pool checkouts of one inbound request (SQLAlchemy events), and
the CPU of each part (gateways, workers, PostgreSQL, RabbitMQ, the load process) per referral.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Row

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PULL = "suchtberatung-diakonie-du"
#: connections of the load process per gateway (each gateway routes 4 at once)
CONNECTIONS_PER_GATEWAY = 8
WARM_UP = 20


def _bodies(n: int, tag: str) -> list[str]:
    from casebridge.gateway.demo import sample_bytes

    template = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    return [template.replace("JC-DU-2026-000123", f"JC-E2E{tag}-{i:07d}") for i in range(n)]


def _envelope_size() -> int:
    from casebridge.adapters import get_adapter
    from casebridge.routing.pipeline import encode_envelope

    raw = _bodies(1, "S")[0].encode()
    return len(encode_envelope(get_adapter("jobcenter").parse(raw)[0]))


# --- the load process --------------------------------------------------------------------------

async def _post_all(urls: list[str], bodies: list[str], key: str,
                    connections: int) -> dict[str, Any]:
    import httpx

    statuses: dict[str, int] = {}
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    path = os.environ.get("CASEBRIDGE_BENCH_PATH", "/v1/inbound/jobcenter")
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def poster() -> None:
            while not queue.empty():
                i, body = queue.get_nowait()
                r = await client.post(f"{urls[i % len(urls)]}{path}",
                                      content=body.encode(), headers=headers)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

        await asyncio.gather(*(poster() for _ in range(connections)))
    return statuses


def load_main(argv: list[str]) -> None:
    """The load process: ``URLS_JSON BODY_FILE KEY``; warm-up, then the timed posts."""
    urls, bodies = json.loads(argv[0]), json.loads(Path(argv[1]).read_text())
    key = argv[2]
    connections = CONNECTIONS_PER_GATEWAY * len(urls)
    cpu = os.times()
    warm = asyncio.run(_post_all(urls, bodies[:WARM_UP], key, connections))
    started = time.time()
    statuses = asyncio.run(_post_all(urls, bodies[WARM_UP:], key, connections))
    posted_s = time.time() - started
    used = os.times()
    print(json.dumps({"started": started, "posted_s": posted_s, "statuses": statuses,
                      "warm_statuses": warm,
                      "cpu_s": used.user + used.system - cpu.user - cpu.system}), flush=True)


# --- raw kombu in the same process shape -------------------------------------------------------

def _raw_publisher(url: str, exchange: str, key: str, n: int, size: int, batch: int,
                   ready: Any, go: Any) -> None:
    from kombu import Connection, Exchange, Producer

    body = os.urandom(size // 2 + 1).hex().encode()[:size]
    if batch == 1:  # kombu's confirm_publish: each publish waits for its confirm
        conn = Connection(url, transport_options={"confirm_publish": True})
        channel = conn.default_channel
    else:  # confirm mode without waiting; the acks of each batch awaited together
        conn = Connection(url)
        channel = conn.channel()
        channel.confirm_select()
    settled = [0]
    nacked = [0]

    def on_ack(tag: int, multiple: bool) -> None:
        settled[0] = max(settled[0], tag) if multiple else settled[0] + 1

    def on_nack(tag: int, multiple: bool) -> None:
        nacked[0] += 1
        on_ack(tag, multiple)

    channel.events["basic_ack"].add(on_ack)
    channel.events["basic_nack"].add(on_nack)
    producer = Producer(channel, exchange=Exchange(exchange, type="topic", durable=True))
    ready.release()
    go.wait()
    for i in range(n):
        producer.publish(body, routing_key=key, delivery_mode=2,
                         content_type="application/vnd.casebridge.envelope+json",
                         content_encoding="binary", headers={"delivery_id": str(i)})
        if batch > 1 and ((i + 1) % batch == 0 or i + 1 == n):
            while settled[0] < i + 1:
                conn.drain_events(timeout=10)
    if nacked[0]:
        raise RuntimeError(f"{nacked[0]} publishes nacked")
    conn.release()


def _raw_consumer(url: str, queue_name: str, exchange: str, key: str, n: int, got: Any,
                  last: Any, ready: Any, go: Any) -> None:
    from kombu import Connection, Consumer, Exchange, Queue

    conn = Connection(url)
    queue = Queue(queue_name, Exchange(exchange, type="topic", durable=True), routing_key=key,
                  durable=True, queue_arguments={"x-queue-type": "quorum"})

    def on_message(message: Any) -> None:
        message.ack()
        with got.get_lock():
            got.value += 1
        last.value = max(last.value, time.time())

    with Consumer(conn.channel(), queues=[queue], on_message=on_message, prefetch_count=16,
                  accept=None):
        ready.release()
        go.wait()
        while got.value < n:
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                continue
    conn.release()


def raw_kombu(url: str, processes: int, n: int, size: int, batch: int) -> float:
    """Messages/s: ``processes`` publishers and ``processes`` consumers at the same time on one
    quorum queue, persistent, ``size`` bytes, confirms awaited per ``batch`` messages."""
    from kombu import Connection, Exchange, Queue

    name = f"raw{uuid.uuid4().hex[:6]}"
    exchange, key = f"{name}.x", f"deliver.{name}"
    with Connection(url) as conn:
        Queue(name, Exchange(exchange, type="topic", durable=True), routing_key=key,
              durable=True, queue_arguments={"x-queue-type": "quorum"})(
            conn.default_channel).declare()
    ctx = multiprocessing.get_context("spawn")
    got, last = ctx.Value("l", 0), ctx.Value("d", 0.0)
    ready, go = ctx.Semaphore(0), ctx.Event()
    share = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_raw_consumer, args=(url, name, exchange, key, n, got, last,
                                                     ready, go))
             for _ in range(processes)]
    procs += [ctx.Process(target=_raw_publisher, args=(url, exchange, key, share[i], size, batch,
                                                       ready, go))
              for i in range(processes)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    started = time.time()
    go.set()
    for p in procs:
        p.join(300)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    with Connection(url) as conn:
        Queue(name, Exchange(exchange, type="topic"), durable=True)(conn.default_channel).delete()
        Exchange(exchange, type="topic")(conn.default_channel).delete()
    if failed or got.value < n:
        raise RuntimeError(f"raw kombu: {got.value} of {n} consumed, exit codes {failed}")
    return n / (last.value - started)


# --- the system ---------------------------------------------------------------------------------

@contextmanager
def _stack() -> Iterator[Any]:
    """The production topology of deploy/prove_local.py, provisioned, no processes yet."""
    sys.path.insert(0, str(DEPLOY))
    import prove_local

    prove_local.log = lambda _text: None  # the benchmark prints its table only
    with prove_local.topology(gateways=0, workers=0) as top:
        top.keys = _provision(top)
        try:
            yield top
        finally:
            conn = getattr(top, "count_conn", None)
            if conn is not None:
                conn.close()  # before the database is dropped


def _provision(top: Any) -> dict[str, str]:
    """Schema, the job centre's key and the client's consent, in this process (what
    ``prove_local.provision`` does with a command per step, minus what this traffic needs not)."""
    from casebridge.consent.store import ConsentStore
    from casebridge.db import get_database, reset_databases
    from casebridge.gateway.demo import sample_bytes
    from casebridge.gateway.principals import PrincipalKind, Role, issue_key

    url = Path(top.env["CASEBRIDGE_DATABASE_URL_FILE"]).read_text().strip()
    db = get_database(url)  # migrates the fresh database
    ConsentStore(db).import_fhir(sample_bytes("consent-fhir/consent-self-001.json"),
                                 source="bench")
    with db.session() as session:
        key = issue_key(session, name="jobcenter-duisburg", kind=PrincipalKind.AGENCY,
                        role=Role.AGENCY).secret
    reset_databases()
    return {"jobcenter-duisburg": key}


def _delivered(top: Any) -> int:
    """Referrals in the provider's outbox, on one kept connection (a connection per poll would
    start a PostgreSQL backend each time and load the machine being measured)."""
    import psycopg

    conn = getattr(top, "count_conn", None)
    if conn is None:
        conn = top.count_conn = psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={top.database}", autocommit=True)
    row = conn.execute("SELECT count(*) FROM routing_outbox").fetchone()
    return int(row[0]) if row else 0


def _duplicates(top: Any) -> int:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={top.database}") as c:
        row = c.execute("SELECT count(*) - count(DISTINCT delivery_id) FROM routing_outbox"
                        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for_consumers(top: Any, workers: int) -> None:
    """Until every worker consumes the provider's queue (start-up is not throughput)."""
    from kombu import Connection

    url = Path(top.env["CASEBRIDGE_BROKER_URL_FILE"]).read_text().strip()
    deadline = time.monotonic() + 120
    with Connection(url) as conn:
        while time.monotonic() < deadline:
            top.check_alive()
            try:
                _, _, consumers = conn.default_channel.queue_declare(
                    f"casebridge.agency.{PULL}", passive=True)
            except Exception:  # noqa: BLE001 - not declared yet: the channel is closed
                conn.close()
                consumers = 0
            if consumers >= workers:
                return
            time.sleep(0.2)
    raise RuntimeError("the workers did not start consuming in 2 minutes")


def _cpu(top: Any) -> dict[str, float]:
    """CPU seconds used so far by part (live processes only): the capacity run's count, without
    its "load generator" (that is this process; here the load runs in a process of its own and
    is measured apart)."""
    import capacity_run  # deploy/, on sys.path once _stack() has run

    used: dict[str, float] = capacity_run.cpu_seconds(top)
    del used["load generator"]
    return used


def _stop_all(top: Any) -> None:
    for _name, proc in top.processes:
        if proc.poll() is None:
            proc.terminate()
    for _name, proc in top.processes:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    top.processes, top.gateway_urls = [], []


def end_to_end(top: Any, processes: int, n: int, tag: str) -> dict[str, Any]:
    """One run with ``processes`` gateways and as many workers; referrals/s and CPU per part."""
    top.n_gateways, top.n_workers, top.gateway_urls = processes, processes, []
    top.start_processes()
    try:
        _wait_for_consumers(top, processes)
        before = _delivered(top)
        target = before + WARM_UP + n
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(_bodies(WARM_UP + n, tag), f)
        load = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_e2e", "load", json.dumps(top.gateway_urls),
             f.name, top.keys["jobcenter-duisburg"]],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cpu_before = _cpu(top)
        deadline = time.monotonic() + 600
        while _delivered(top) < target:
            top.check_alive()
            if load.poll() not in (None, 0) or time.monotonic() > deadline:
                raise RuntimeError(f"load process or delivery failed: {load.stderr.read()!r}"
                                   if load.stderr else "delivery timed out")
            time.sleep(0.05)
        finished = time.time()
        cpu_after = _cpu(top)
        out, err = load.communicate(timeout=120)
        os.unlink(f.name)
        if load.returncode != 0:
            raise RuntimeError(f"load process failed: {err.decode()[-500:]}")
        result = json.loads(out)
        # per referral, warm-up included (the processes' CPU is not split by phase)
        cpu_ms = {k: round((cpu_after[k] - cpu_before[k]) / (n + WARM_UP) * 1000, 2)
                  for k in cpu_after}
        cpu_ms["load"] = round(result["cpu_s"] / (n + WARM_UP) * 1000, 2)
        return {
            "rate": n / (finished - result["started"]),
            "statuses": result["statuses"],
            "cpu_ms": cpu_ms,
            "duplicates": _duplicates(top),
        }
    finally:
        _stop_all(top)


# --- the gateway alone against a bare endpoint --------------------------------------------------

def gateway_vs_bare(top: Any, n: int, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Requests/s and server CPU ms per request: one production gateway (no worker) and the
    bare FastAPI endpoint of bench_gateway, both under uvicorn, driven by the same load."""
    from bench import bench_gateway

    top.n_gateways, top.n_workers, top.gateway_urls = 1, 0, []
    top.start_processes()
    try:
        gateway_pid = next(p.pid for name, p in top.processes if name.startswith("gateway"))
        measured = _drive_one(top.gateway_urls, gateway_pid, n, tag, top.keys["jobcenter-duisburg"])
    finally:
        _stop_all(top)
    server, url = bench_gateway._serve("bench.bench_gateway:bare_app", dict(os.environ),
                                       factory=False)
    try:
        bare = _drive_one([url], server.pid, n, tag + "b", "x", path="/bare")
    finally:
        bench_gateway._stop(server)
    return measured, bare


def _drive_one(urls: list[str], pid: int, n: int, tag: str, key: str,
               path: str | None = None) -> dict[str, Any]:
    from bench.bench_gateway import _server_cpu

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(_bodies(WARM_UP + n, tag), f)
    argv = [sys.executable, "-m", "bench.bench_e2e", "load", json.dumps(urls), f.name, key]
    env = dict(os.environ)
    if path is not None:
        env["CASEBRIDGE_BENCH_PATH"] = path
    load = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    # the CPU of the warm-up is counted too (20 of n + 20 requests)
    before = _server_cpu(pid)
    out, err = load.communicate(timeout=600)
    os.unlink(f.name)
    if load.returncode != 0:
        raise RuntimeError(f"load process failed: {err.decode()[-500:]}")
    result = json.loads(out)
    return {"rps": n / result["posted_s"], "statuses": result["statuses"],
            "cpu_ms": (_server_cpu(pid) - before) / (n + WARM_UP) * 1000}


# --- SQL round trips and pool checkouts of one request -------------------------------------------

def request_counts(top: Any, n: int) -> dict[str, float]:
    """Per inbound request, in-process (the gateway app on the run's database and vhost, a queue
    prefix of its own): SQL statements, commits and pool checkouts (SQLAlchemy events)."""
    import collections

    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from casebridge.db import get_database, reset_databases
    from casebridge.gateway.app import create_app
    from casebridge.settings import Settings

    secrets = Path(top.env["CASEBRIDGE_DATABASE_URL_FILE"]).parent
    db_url = (secrets / "database_url").read_text().strip()
    settings = Settings(
        route_table=top.workdir / "routes.yaml", data_dir=top.workdir / "count",
        database_url=db_url, broker_url=(secrets / "broker_url").read_text().strip(),
        broker_prefix=f"count{uuid.uuid4().hex[:6]}", log_level="error")
    counts: collections.Counter[str] = collections.Counter()
    engine = get_database(db_url).engine
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {top.keys['jobcenter-duisburg']}",
               "Content-Type": "application/xml"}
    bodies = _bodies(n + 5, f"C{uuid.uuid4().hex[:4]}")

    def statement(*_a: Any) -> None:
        counts["statements"] += 1

    def commit(*_a: Any) -> None:
        counts["commits"] += 1

    def checkout(*_a: Any) -> None:
        counts["pool checkouts"] += 1

    try:
        with TestClient(app) as client:
            for body in bodies[:5]:
                assert client.post("/v1/inbound/jobcenter", content=body,
                                   headers=headers).status_code == 202
            event.listen(engine, "before_cursor_execute", statement)
            event.listen(engine, "commit", commit)
            event.listen(engine.pool, "checkout", checkout)
            for body in bodies[5:]:
                r = client.post("/v1/inbound/jobcenter", content=body, headers=headers)
                if r.status_code != 202:
                    raise RuntimeError(f"counting request answered {r.status_code}: {r.text}")
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
        event.remove(engine.pool, "checkout", checkout)
        reset_databases()
    return {k: v / n for k, v in counts.items()}


# --- the table ------------------------------------------------------------------------------------

def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["rate"])
    return ordered[len(ordered) // 2]


def run(quick: bool) -> list[Row]:
    """The rows; see the module docstring."""
    n = 60 if quick else 1000
    repeats = 1 if quick else 3
    shapes = [1] if quick else [1, 2, 3]
    size = _envelope_size()
    rows: list[Row] = []
    loads = [os.getloadavg()[0]]
    with _stack() as top:
        broker_url = Path(top.env["CASEBRIDGE_BROKER_URL_FILE"]).read_text().strip()
        counts = request_counts(top, 20 if quick else 100)
        for p in shapes:
            runs, per_msg, batch50 = [], [], []
            for r in range(repeats):
                per_msg.append(raw_kombu(broker_url, p, n, size, 1))
                batch50.append(raw_kombu(broker_url, p, n, size, 50))
                runs.append(end_to_end(top, p, n, f"{p}{r}"))
                loads.append(os.getloadavg()[0])
                print(f"  e2e {p}+{p} run {r + 1}: {runs[-1]['rate']:.1f} referrals/s, raw "
                      f"{per_msg[-1]:.0f}/s (confirm per msg), {batch50[-1]:.0f}/s (per 50), "
                      f"load average {loads[-1]:.1f}", file=sys.stderr, flush=True)
            e2e = _median(runs)
            statuses = {k: v for run in runs for k, v in run["statuses"].items()}
            lost = [run for run in runs if set(run["statuses"]) != {"202"} or run["duplicates"]]
            note = (f"{n} referrals x {repeats} runs, median; {size} B envelope; consent checked "
                    f"twice, two audit entries, FHIR into the pull outbox; CPU ms/referral "
                    f"{e2e['cpu_ms']}; statuses {statuses}; load average {loads[-1]:.1f}")
            if lost:
                note = "NOT ALL 202 OR DUPLICATES: " + note
            rows.append(Row("e2e", f"referrals/s, {p}+{p} procs (gateway+worker)", e2e["rate"],
                            f"raw kombu confirm per msg, {p}+{p}",
                            statistics.median(per_msg), ">= 0.4", note))
            rows.append(Row("e2e", f"referrals/s, {p}+{p} procs (gateway+worker)", e2e["rate"],
                            f"raw kombu confirms per 50, {p}+{p}",
                            statistics.median(batch50), ">= 0.12"))
        gateway, bare = gateway_vs_bare(top, 100 if quick else 1000, "G")
        rows.append(Row("e2e", "gateway server CPU ms/request", gateway["cpu_ms"],
                        "bare FastAPI 202", bare["cpu_ms"], "",
                        f"1 production gateway (PostgreSQL + RabbitMQ), no worker; "
                        f"statuses {gateway['statuses']} / bare {bare['statuses']}"))
        rows.append(Row("e2e", "gateway req/s", gateway["rps"], "bare FastAPI 202",
                        bare["rps"], "", "the bare rate is bounded by the load process"))
        for name, value in sorted(counts.items()):
            rows.append(Row("e2e", f"per inbound request: {name}", value, note=(
                "PostgreSQL statements, commits and pool checkouts of one POST (SQLAlchemy "
                "events, in-process)") if name == "statements" else ""))
    rows[0] = Row(**{**rows[0].__dict__,
                     "note": rows[0].note + f"; load average during the run "
                             f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"})
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load_main(sys.argv[2:])
    else:
        for row in run(quick="--quick" in sys.argv):
            print(row)
