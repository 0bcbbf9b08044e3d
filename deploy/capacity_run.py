
"""Single-machine capacity of the production topology (the numbers behind docs/capacity.md).

``python deploy/capacity_run.py [--referrals N]`` builds the same topology as
``deploy/prove_local.py`` (production settings, the machine's real PostgreSQL and RabbitMQ, a
dedicated vhost and database, removed afterwards) and measures, with distinct job-centre referrals
(Zuweisung XML, consent checked, audited, published with confirms to a quorum queue):

1. intake: referrals/s accepted (HTTP 202) by 1 and by 2 gateway processes, 16 connections from a
   load process, no worker running (so intake and delivery do not share the CPU);
2. delivery: referrals/s drained from the backlog by 1 and by 2 worker processes (consent checked
   again, rendered, put into the provider's outbox, audited, acknowledged);
3. the raw broker rate in the same vhost: kombu publishing persistent messages of the same size
   with publisher confirms to a quorum queue, and consuming them with manual acks.

It prints one JSON document. Every number is from this machine at the time of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prove_local

from casebridge.gateway.demo import sample_bytes

CONCURRENCY = 16


def cpu_seconds(top: prove_local.Topology) -> dict[str, float]:
    """CPU seconds used so far, by part: casebridge processes, PostgreSQL, RabbitMQ, load."""
    tick = os.sysconf("SC_CLK_TCK")
    ours = {proc.pid: name.split("-")[0] for name, proc in top.processes if proc.poll() is None}
    used = {"gateway": 0.0, "worker": 0.0, "postgresql": 0.0, "rabbitmq": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        part = ours.get(int(entry.name)) or (
            "postgresql" if comm.startswith("postgres") else
            "rabbitmq" if comm in ("beam.smp", "erl_child_setup", "inet_gethost") else None)
        if part in used:
            used[part] += seconds
    times = os.times()
    used["load generator"] = times.user + times.system
    return used


def _cpu_share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per part between two snapshots (processes that exited are not counted)."""
    return {k: round(v - before.get(k, 0.0), 2) for k, v in after.items() if v > before.get(k, 0)}


class WaitSampler:
    """Samples what the casebridge database sessions are doing, every 20 ms, during a phase:
    running, waiting for a lock (e.g. the audit chain head), waiting for WAL I/O, or idle."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid() "
                 "AND backend_type = 'client backend'")
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                             autocommit=True) as conn:
            while not self._stop.wait(0.02):
                self.counts["_samples"] = self.counts.get("_samples", 0) + 1
                for state, wtype, wevent in conn.execute(query, (self.database,)).fetchall():
                    if state == "active":
                        key = f"{wtype}:{wevent}" if wtype else "running"
                    else:
                        key = str(state)
                    self.counts[key] = self.counts.get(key, 0) + 1

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy_sessions(self) -> dict[str, float]:
        """Average number of database sessions in each non-idle state per sample."""
        samples = max(1, self.counts.get("_samples", 0))
        return {k: round(v / samples, 3) for k, v in sorted(self.counts.items())
                if k not in ("idle", "_samples")}


def _bodies(n: int, tag: str) -> list[bytes]:
    template = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    return [template.replace("JC-DU-2026-000123", f"JC-DU-CAP{tag}-{i:07d}").encode()
            for i in range(n)]


async def _load(urls: list[str], key: str, bodies: list[bytes]) -> dict[str, Any]:
    """POST every body, CONCURRENCY at a time, spread over the gateways."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}

    async def client(c: httpx.AsyncClient) -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            started = time.perf_counter()
            r = await c.post(f"{urls[i % len(urls)]}/v1/inbound/jobcenter", content=body,
                             headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        started = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"referrals": len(bodies), "seconds": round(elapsed, 2),
            "referrals_per_s": round(len(bodies) / elapsed, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
            "statuses": statuses}


def _delivered(top: prove_local.Topology) -> int:
    """Messages the workers have put into outboxes (RabbitMQ's own queue counters lag by the
    statistics interval, so the store is the exact count)."""
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={top.database}") as conn:
        row = conn.execute("SELECT count(*) FROM routing_outbox").fetchone()
    return int(row[0]) if row else 0


def _stop(top: prove_local.Topology, prefix: str) -> None:
    for name, proc in top.processes:
        if name.startswith(prefix) and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    top.processes = [(n, p) for n, p in top.processes if not n.startswith(prefix)]


def _drain(top: prove_local.Topology, workers: int, expected: int, tag: str) -> dict[str, Any]:
    """Start ``workers`` worker processes and time until ``expected`` more are delivered."""
    before = _delivered(top)
    target = before + expected
    for i in range(workers):
        top.start(f"worker-{tag}-{i + 1}", "worker")
    deadline = time.perf_counter() + 900
    # The clock starts at the first delivery: process start-up is not throughput.
    while (first := _delivered(top)) == before:
        top.check_alive()
        time.sleep(0.05)
    started = time.perf_counter()
    cpu = cpu_seconds(top)
    with WaitSampler(top.database) as waits:
        while (done := _delivered(top)) < target:
            top.check_alive()
            if time.perf_counter() > deadline:
                raise RuntimeError("the workers did not drain the backlog in 15 minutes")
            time.sleep(0.1)
    elapsed = time.perf_counter() - started
    share = _cpu_share(cpu, cpu_seconds(top))
    _stop(top, "worker-")
    counted = done - first
    return {"workers": workers, "referrals": expected, "timed": counted,
            "seconds": round(elapsed, 2), "referrals_per_s": round(counted / elapsed, 1),
            "cpu_seconds": share, "db_sessions": waits.busy_sessions()}


def _raw_broker(url: str, n: int, size: int) -> dict[str, Any]:
    """kombu: persistent publish with confirms to a quorum queue, then consume with acks."""
    from kombu import Connection, Exchange, Producer, Queue

    exchange = Exchange("capacity-raw", type="direct", durable=True)
    queue = Queue("capacity-raw", exchange, routing_key="raw", durable=True,
                  queue_arguments={"x-queue-type": "quorum"})
    payload = b"x" * size
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        queue(channel).declare()
        producer = Producer(channel, exchange=exchange, routing_key="raw")
        started = time.perf_counter()
        for _ in range(n):
            producer.publish(payload, delivery_mode=2, content_type="application/octet-stream")
        publish_s = time.perf_counter() - started
        got = 0

        def on_message(_body: Any, message: Any) -> None:
            nonlocal got
            message.ack()
            got += 1

        with conn.Consumer(queue, callbacks=[on_message], prefetch_count=16,
                           accept=["application/octet-stream"]):
            started = time.perf_counter()
            while got < n:
                conn.drain_events(timeout=10)
            consume_s = time.perf_counter() - started
        queue(channel).delete()
    return {"messages": n, "bytes": size, "publish_confirmed_per_s": round(n / publish_s, 1),
            "consume_acked_per_s": round(n / consume_s, 1)}


def measure(referrals: int) -> dict[str, Any]:
    """Run every phase; the result document."""
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "referrals_per_phase": referrals,
        "intake": [], "delivery": [],
    }
    with prove_local.topology(gateways=0, workers=0) as top:
        keys = prove_local.provision(top)
        key = keys["jobcenter-duisburg"]
        for gateways in (1, 2):
            top.n_gateways, top.n_workers, top.gateway_urls = gateways, 0, []
            top.start_processes()
            bodies = _bodies(referrals, f"G{gateways}")
            asyncio.run(_load(top.gateway_urls, key, bodies[:20]))  # warm-up, not counted
            cpu = cpu_seconds(top)
            with WaitSampler(top.database) as waits:
                load = asyncio.run(_load(top.gateway_urls, key, bodies[20:]))
            load["cpu_seconds"] = _cpu_share(cpu, cpu_seconds(top))
            load["db_sessions"] = waits.busy_sessions()
            load["gateways"] = gateways
            result["intake"].append(load)
            prove_local.log(f"intake with {gateways} gateway(s): {load}")
            _stop(top, "gateway-")
            drained = _drain(top, gateways, referrals, f"G{gateways}")
            result["delivery"].append(drained)
            prove_local.log(f"delivery with {gateways} worker(s): {drained}")
        broker_url = Path(top.env["CASEBRIDGE_BROKER_URL_FILE"]).read_text().strip()
        size = len(_bodies(1, "X")[0])
        result["raw_broker"] = _raw_broker(broker_url, referrals, size)
        prove_local.log(f"raw broker: {result['raw_broker']}")
    return result


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=1000, help="referrals per phase")
    args = parser.parse_args()
    print(json.dumps(measure(args.referrals), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
