"""Routing throughput: referrals end to end vs. raw kombu on the same broker and queue type.

End to end = the job centre's native ``Zuweisung`` (XML) posted to :meth:`Router.submit` (parse,
route check, consent gate with audit entry, publish with confirm) → worker (consent gate again
with audit entry, render FHIR for the provider, put in its pull outbox with the delivered mark,
ack). ``W`` inbound processes and ``W`` worker processes run at the same time; the rate is
referrals delivered per second of wall time, first submit to last delivery.

Baseline, measured in the same run: kombu alone publishing the same number of messages of the
same size (persistent, publisher confirms on amqp) to a queue of the same type (quorum on
RabbitMQ), then consuming them with manual acks (prefetch 16).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Row

RABBIT = "amqp://guest:guest@127.0.0.1:5672/{vhost}"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SENDER_SYSTEM = "jobcenter"


def _zuweisungen(n: int, offset: int = 0) -> list[bytes]:
    from casebridge.gateway.demo import sample_bytes

    raw = sample_bytes("jobcenter/zuweisung-001.xml")
    return [raw.replace(b"JC-DU-2026-000123", f"JC-BENCH-{offset + i:07d}".encode())
            for i in range(n)]


def _routing(url: str, db_url: str, prefix: str):  # type: ignore[no-untyped-def]
    from casebridge.db import get_database
    from casebridge.logging import configure_logging
    from casebridge.routing.routes import demo_route_table
    from casebridge.routing.runtime import Routing

    configure_logging(level="error", force=True)
    return Routing(routes=demo_route_table(), db=get_database(db_url), url=url, prefix=prefix)


def _inbound(url: str, db_url: str, prefix: str, n: int, offset: int, ready: Any, go: Any,
             threads: int = 1) -> None:
    from concurrent.futures import ThreadPoolExecutor

    routing = _routing(url, db_url, prefix)
    # one router (one broker connection) per thread, as the gateway's request threads would
    routers = [routing.router() for _ in range(threads)]
    raws = _zuweisungen(n, offset)
    chunks = [raws[i::threads] for i in range(threads)]
    ready.release()
    go.wait()

    def send(i: int) -> None:
        for raw in chunks[i]:
            routers[i].submit(raw, system=SENDER_SYSTEM, sender="jobcenter-duisburg")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(threads)))
    routing.close()


def _deliver(url: str, db_url: str, prefix: str, n: int, threads: int = 1,
             ready: Any = None, go: Any = None, batch_size: int | None = None) -> None:
    import threading

    routing = _routing(url, db_url, prefix)
    worker = routing.worker(["suchtberatung-diakonie-du"], threads=threads,
                            batch_size=batch_size)
    if ready is not None:
        ready.release()
        go.wait()

    def watch() -> None:
        while not worker.stop_event.is_set():
            if _delivered(db_url) >= n:
                worker.stop()
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    worker.run(idle_timeout=60)
    worker.close()


def _delivered(db_url: str) -> int:
    from sqlalchemy import func, select

    from casebridge.db import get_database
    from casebridge.routing.store import OutboxRow

    with get_database(db_url).session() as s:
        return int(s.execute(select(func.count()).select_from(OutboxRow)).scalar_one())


def _prepare(db_url: str) -> None:
    from casebridge.consent.store import ConsentStore
    from casebridge.db import get_database
    from casebridge.gateway.demo import sample_bytes

    ConsentStore(get_database(db_url)).import_fhir(
        sample_bytes("consent-fhir/consent-self-001.json"), source="bench")


def _last_delivery(db_url: str, n: int) -> float:
    """Seconds since the epoch of the n-th delivery (outbox rows carry their creation time)."""
    from sqlalchemy import func, select

    from casebridge.db import get_database
    from casebridge.routing.store import OutboxRow

    db = get_database(db_url)
    with db.session() as s:
        count, last = s.execute(select(func.count(), func.max(OutboxRow.created_at))).one()
    if count != n:
        raise RuntimeError(f"delivered {count} of {n}")
    return float(last.timestamp())


@contextmanager
def _store(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a private schema in the local PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'e2e-{uuid.uuid4().hex[:6]}.db'}"
        return
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"cb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options={quote(f'-csearch_path={schema}')}"
    finally:
        from casebridge.db import reset_databases

        reset_databases()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def end_to_end(url: str, n: int, workers: int, db_url: str, threads: int = 1) -> float:
    """Referrals per second, inbound native to delivered native: ``workers`` inbound and
    ``workers`` delivery processes with ``threads`` threads each."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    _prepare(db_url)
    ctx = multiprocessing.get_context("spawn")
    consumers = [ctx.Process(target=_deliver, args=(url, db_url, prefix, n, threads))
                 for _ in range(workers)]
    share = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    ready, go = ctx.Semaphore(0), ctx.Event()
    producers = [ctx.Process(target=_inbound, args=(url, db_url, prefix, share[i],
                                                    sum(share[:i]), ready, go, threads))
                 for i in range(workers)]
    # declare the topology once so consumers can start before the first publish
    r = _routing(url, db_url, prefix)
    r.publisher()
    r.close()
    for p in consumers + producers:
        p.start()
    for _ in producers:  # imports and connections are not part of the measurement
        ready.acquire()
    time.sleep(1.0)  # let the workers connect, too
    start = time.time()
    go.set()
    for p in producers + consumers:
        p.join()
    rate = n / (_last_delivery(db_url, n) - start)
    _cleanup(url, prefix, r)
    return rate


def delivery_only(url: str, n: int, workers: int, db_url: str, threads: int = 1,
                  batch_size: int | None = None) -> float:
    """Deliveries per second from a pre-filled queue with ``workers`` worker processes
    (``batch_size`` messages per batch; default: the setting, 1 = the per-message path)."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    _prepare(db_url)
    routing = _routing(url, db_url, prefix)
    router = routing.router()
    for raw in _zuweisungen(n, offset=500_000):
        router.submit(raw, system=SENDER_SYSTEM, sender="jobcenter-duisburg")
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    consumers = [ctx.Process(target=_deliver, args=(url, db_url, prefix, n, threads, ready, go,
                                                    batch_size))
                 for _ in range(workers)]
    for p in consumers:
        p.start()
    for _ in consumers:
        ready.acquire()
    start = time.time()
    go.set()
    for p in consumers:
        p.join()
    rate = n / (_last_delivery(db_url, n) - start)
    _cleanup(url, prefix, routing)
    routing.close()
    return rate


def delivery_batches(url: str, store: str, tmp: Path, *, n: int, sizes: tuple[int, ...],
                     workers: int = 1, rounds: int = 3, name: str = "rabbitmq") -> list[Row]:
    """Batched delivery against the per-message path (batch size 1) in the same run: median
    of ``rounds`` runs per size, the sizes interleaved so that load changes hit each alike."""
    import statistics

    runs: dict[int, list[float]] = {b: [] for b in sizes}
    loads: list[float] = []
    for _ in range(rounds):
        for b in sizes:
            loads.append(os.getloadavg()[0])
            with _store(store, tmp) as db_url:
                runs[b].append(delivery_only(url, n, workers, db_url, batch_size=b))
    base = statistics.median(runs[sizes[0]])
    load = f"load average {min(loads):.1f}-{max(loads):.1f}"
    return [Row("routing", f"{name}+{store} delivery only/s, batch {b}, {workers} worker procs",
                statistics.median(runs[b]), f"batch {sizes[0]} (per-message path)", base,
                note=f"{n} referrals from a pre-filled queue to the pull outbox, median of "
                     f"{rounds} (runs: {', '.join(f'{v:.0f}' for v in runs[b])}); {load}")
            for b in sizes]


def _cleanup(url: str, prefix: str, routing) -> None:  # type: ignore[no-untyped-def]
    from casebridge.routing.topology import connect, topology_for

    conn = connect(url)
    try:
        topology_for(routing.routes.agencies, url, prefix=prefix).delete(conn)
    finally:
        conn.release()


def raw_kombu(url: str, n: int, size: int) -> float:
    """kombu alone: publish ``n`` persistent confirmed messages of ``size`` bytes, consume, ack."""
    from kombu import Consumer, Producer

    from casebridge.routing.topology import Topology, connect, transport_kind

    topo = Topology(("raw",), prefix=f"raw{uuid.uuid4().hex[:6]}",
                    quorum=transport_kind(url) == "amqp")
    conn = connect(url)
    topo.declare(conn)
    body = os.urandom(size // 2).hex().encode()[:size]
    producer = Producer(conn.default_channel, exchange=topo.exchange)
    start = time.perf_counter()
    for i in range(n):
        producer.publish(body, routing_key=topo.routing_key("raw"), delivery_mode=2,
                         content_type="application/json", content_encoding="binary",
                         headers={"delivery_id": str(i)})
    got = 0

    def on_message(message):  # type: ignore[no-untyped-def]
        nonlocal got
        got += 1
        message.ack()

    with Consumer(conn.default_channel, queues=[topo.queue("raw")], on_message=on_message,
                  prefetch_count=16, accept=None):
        while got < n:
            conn.drain_events(timeout=10)
    elapsed = time.perf_counter() - start
    topo.delete(conn)
    conn.release()
    return n / elapsed


def stage_times(url: str, db_url: str, n: int) -> dict[str, float]:
    """Median milliseconds per referral of each stage, run in one process on ``url``."""
    import statistics
    from datetime import UTC, datetime

    from casebridge.adapters import get_adapter
    from casebridge.routing.pipeline import Outgoing, decode_envelope, encode_envelope

    _prepare(db_url)
    prefix = f"stages{uuid.uuid4().hex[:6]}"
    routing = _routing(url, db_url, prefix)
    router, service = routing.router(), routing.delivery_service()
    sender, provider = get_adapter(SENDER_SYSTEM), get_adapter("provider-fhir")
    recipient = "suchtberatung-diakonie-du"
    times: dict[str, list[float]] = {}

    def timed(stage: str, fn: Any) -> Any:
        start = time.perf_counter()
        value = fn()
        times.setdefault(stage, []).append((time.perf_counter() - start) * 1000)
        return value

    for raw in _zuweisungen(n, offset=900_000):
        env = timed("1 adapter parse (XML, XSD)", lambda r=raw: sender.parse(r)[0])
        hits = timed("2 route check", lambda e=env: routing.routes.check(e))
        policies = routing.routes.policies(hits)
        timed("3 consent decide (no audit)", lambda e=env, p=policies: routing.gate.evaluate(
            e, at=datetime.now(UTC), policies=p))
        result = timed("4 consent gate inbound (decide+audit)",
                       lambda e=env, p=policies: routing.gate.check(
                           e, at=datetime.now(UTC), stage="inbound", policies=p))
        timed("5 publish + broker confirm", lambda e=env, r=result: router.publisher.publish_many(
            [Outgoing(0, f"{e.message_id}/{rcpt}", rcpt, encode_envelope(copy),
                      {"delivery_id": f"{e.message_id}/{rcpt}"})
             for rcpt, copy in r.released.items()]))
        body = encode_envelope(result.released[recipient])
        released = timed("6 decode envelope", lambda b=body: decode_envelope(b))
        timed("7 redelivery check", lambda: service._state("none"))
        again = timed("8 consent gate delivery (decide+audit)",
                      lambda e=released, p=policies: routing.gate.check_recipient(
                          e, recipient, at=datetime.now(UTC), stage="delivery",
                          policies=p))
        timed("9 adapter render (FHIR)", lambda g=again: provider.render(g.released[recipient]))
    _cleanup(url, prefix, routing)
    routing.close()
    return {k: statistics.median(v) for k, v in sorted(times.items())}


def _envelope_size() -> int:
    from casebridge.adapters import get_adapter
    from casebridge.routing.pipeline import encode_envelope

    env = get_adapter(SENDER_SYSTEM).parse(_zuweisungen(1)[0])[0]
    return len(encode_envelope(env))


def _vhost() -> str | None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return None
    name = f"cb-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run([ctl, "add_vhost", name], check=True, capture_output=True)
    subprocess.run([ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)
    return name


def run(quick: bool) -> list[Row]:
    """RabbitMQ and embedded transport: end-to-end referrals/s against raw kombu."""
    n = 60 if quick else 400
    size = _envelope_size()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    vhost = _vhost()
    try:
        setups = []
        if vhost is not None:
            # the production stack: RabbitMQ quorum queues and a PostgreSQL store
            setups.append(("rabbitmq", RABBIT.format(vhost=vhost), "postgres",
                           [(1, 1), (1, 4), (2, 4)] if quick else
                           [(1, 1), (2, 1), (1, 4), (2, 4), (3, 4)]))
        setups.append(("embedded", f"sqla+sqlite:///{tmp / 'broker.db'}", "sqlite",
                       [(1, 1), (1, 4)] if quick else [(1, 1), (2, 1), (1, 4)]))
        for name, url, store, counts in setups:
            baseline = raw_kombu(url, n, size)
            for w, t in counts:
                with _store(store, tmp) as db_url:
                    value = end_to_end(url, n, w, db_url, t)
                rows.append(Row(
                    "routing", f"{name}+{store} e2e referrals/s, {w}+{w} procs x {t} thr",
                    value,
                    f"raw kombu pub+consume ({name})", baseline,
                    ">= 0.35" if name == "rabbitmq" else "",
                    note=f"{n} referrals of {size} B canonical JSON; consent checked twice, "
                         "two audit entries, FHIR rendered into the pull outbox",
                ))
            for w in [1, 2]:
                with _store(store, tmp) as db_url:
                    value = delivery_only(url, n, w, db_url)
                rows.append(Row("routing", f"{name}+{store} delivery only/s, {w} worker procs",
                                value, f"raw kombu pub+consume ({name})", baseline,
                                note="pre-filled queue: consent re-check + audit, FHIR render, "
                                     "outbox; shows scaling with worker processes"))
            rows += delivery_batches(url, store, tmp, n=n if quick else 800, name=name,
                                     sizes=(1, 16) if quick else (1, 16, 50),
                                     rounds=1 if quick else 3)
            with _store(store, tmp) as db_url:
                stages = stage_times(url, db_url, 20 if quick else 100)
            per_raw = 1000 / baseline
            for stage, ms in stages.items():
                rows.append(Row("routing", f"{name}+{store} ms/referral: {stage}", ms,
                                "raw kombu ms/msg", per_raw))
    finally:
        if vhost is not None:
            subprocess.run(["rabbitmqctl", "delete_vhost", vhost], check=False,
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    """``python -m bench.bench_routing``: only the batched-delivery comparison on RabbitMQ +
    PostgreSQL (the production stack), printed as the benchmark table."""
    import argparse

    from bench.run import print_table

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("-n", type=int, default=800, help="referrals per run")
    parser.add_argument("--sizes", default="1,16,50", help="batch sizes; the first is the base")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vhost = _vhost()
    if vhost is None:
        raise SystemExit("rabbitmqctl not found: the comparison runs on RabbitMQ + PostgreSQL")
    tmp = Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    try:
        rows = delivery_batches(RABBIT.format(vhost=vhost), "postgres", tmp, n=args.n,
                                sizes=tuple(int(b) for b in args.sizes.split(",")),
                                workers=args.workers, rounds=args.rounds)
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)


if __name__ == "__main__":
    main()
