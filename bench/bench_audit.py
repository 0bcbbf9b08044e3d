"""Audit trail on PostgreSQL: K chains, group commit, verify (issue 15).

Rows (all in one run, each the median of 3 runs, the load average in the notes):

- appends with one process vs four processes appending at once (one entry per append, a new
  client each time), with K = 1 (one chain: every appender queues on one head row) and with
  the configured K chains: **target four processes ≥ 2× one** with K chains;
- entries/s durable with group commit: many threads of one process appending one entry each,
  against one thread (**target ≥ 5,000/s**), and with four such processes;
- verify over all chains against the raw row fetch rate (**target ≥ 100,000 entries/s**).

    python -m bench.run --only audit [--quick]
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.bench_consent import backend
from bench.common import Row
from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.db import Database, create_db_engine

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHAINS = 8


def _draft(client: str, n: int) -> AuditDraft:
    return AuditDraft(at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
                      recipient="suchtberatung-diakonie-du", purpose="referral",
                      client_id=client, message_id=f"M-{n}", outcome="partial",
                      released=("contact", "identity"),
                      withheld=(("case_notes", "category_not_covered"),), consents=("b-1-0",))


def _appender(url: str, chains: int, tag: str, threads: int, count: int,
              start: Any, out: Any) -> None:
    """One process: ``threads`` threads append ``count`` single entries each, after ``start``."""
    db = Database(create_db_engine(url))
    trail = AuditTrail(db, chains=chains, checkpoint_every=1000, checkpoint_seconds=60)
    trail.append([_draft(f"c-{tag}-warm", 0)])  # connect, create heads outside the timing

    def work(t: int) -> None:
        for i in range(count):
            trail.append([_draft(f"c-{tag}-{t}-{i % 50}", i)])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((began, time.perf_counter(), threads * count, time.process_time() - cpu))
    db.dispose()


#: appending processes' CPU seconds per entry, by (chains, procs, threads), last run
CPU_PER_ENTRY: dict[tuple[int, int, int], float] = {}


def _processes(url: str, chains: int, procs: int, threads: int, count: int, run: int) -> float:
    """Entries/s of ``procs`` processes appending at once (start together, wall time)."""
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    children = [context.Process(target=_appender, args=(
        url, chains, f"{run}-{p}", threads, count, start, out)) for p in range(procs)]
    for child in children:
        child.start()
    time.sleep(1.0)  # every child connected and waiting
    start.set()
    results = [out.get(timeout=600) for _ in children]
    for child in children:
        child.join(60)
    began = min(r[0] for r in results)
    ended = max(r[1] for r in results)
    entries = sum(r[2] for r in results)
    CPU_PER_ENTRY[(chains, procs, threads)] = sum(r[3] for r in results) / entries
    return entries / (ended - began)


def _median(measure: Callable[[int], float]) -> float:
    return statistics.median(measure(run) for run in range(3))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (2 cores)"


def _fill(db: Database, entries: int) -> None:
    trail = AuditTrail(db, chains=CHAINS, checkpoint_every=1000, checkpoint_seconds=3600)
    n = 0
    while n < entries:
        size = min(2000, entries - n)
        trail.append([_draft(f"c-fill-{(n + i) % 997}", n + i) for i in range(size)])
        n += size
        trail.checkpoint()


def _verify(db: Database) -> tuple[float, float, int]:
    trail = AuditTrail(db, chains=CHAINS)
    start = time.perf_counter()
    result = trail.verify()
    verify_rate = result.checked / (time.perf_counter() - start)
    assert result.ok, result
    start = time.perf_counter()
    fetched = sum(len(rows) for rows in trail._raw_batches(batch=20000))
    return verify_rate, fetched / (time.perf_counter() - start), result.checked


def run(quick: bool) -> list[Row]:
    """The benchmark rows (see the module docstring)."""
    count = 150 if quick else 600
    gc_threads, gc_count = (16, 40) if quick else (32, 150)
    verify_size = 30_000 if quick else 300_000
    rows: list[Row] = []
    with backend("postgresql") as db:
        url = db.engine.url.render_as_string(hide_password=False)
        loads = [_load()]
        one_k1 = _median(lambda r: _processes(url, 1, 1, 1, count, r))
        four_k1 = _median(lambda r: _processes(url, 1, 4, 1, count // 4 * 2, r))
        loads.append(_load())
        one_k = _median(lambda r: _processes(url, CHAINS, 1, 1, count, r))
        four_k = _median(lambda r: _processes(url, CHAINS, 4, 1, count // 4 * 2, r))
        loads.append(_load())
        group = _median(lambda r: _processes(url, CHAINS, 1, gc_threads, gc_count, r))
        group4 = _median(lambda r: _processes(url, CHAINS, 4, gc_threads // 2, gc_count // 2, r))
        loads.append(_load())
        with db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_entries"))
            conn.execute(text("UPDATE audit_head SET seq = 0, hash = :g"), {"g": "0" * 64})
        _fill(db, verify_size)
        verify = [_verify(db) for _ in range(3)]
        loads.append(_load())
    note = "; ".join(loads)

    def cpu(chains: int, procs: int, threads: int) -> str:
        return (f"appenders' CPU {CPU_PER_ENTRY[(chains, procs, threads)] * 1000:.2f} ms/entry "
                "(PostgreSQL's not counted)")

    rows += [
        Row("audit appends PG, 1 chain", "entries/s (4 procs)", four_k1,
            "1 process, 1 chain", one_k1, note="one entry per append; " + note),
        Row(f"audit appends PG, {CHAINS} chains", "entries/s (1 proc)", one_k,
            "1 process, 1 chain", one_k1, note=cpu(CHAINS, 1, 1)),
        Row(f"audit appends PG, {CHAINS} chains", "entries/s (4 procs)", four_k,
            f"1 process, {CHAINS} chains", one_k, ">= 2", note=cpu(CHAINS, 4, 1)),
        Row(f"audit group commit PG, {CHAINS} chains", f"entries/s (1 proc x {gc_threads} thr)",
            group, "1 process, 1 thread", one_k, ">= 5000/s", note=cpu(CHAINS, 1, gc_threads)),
        Row(f"audit group commit PG, {CHAINS} chains",
            f"entries/s (4 procs x {gc_threads // 2} thr)", group4, "1 process, 1 thread", one_k,
            ">= 5000/s", note=cpu(CHAINS, 4, gc_threads // 2)),
        Row(f"audit verify PG, {CHAINS} chains", "entries/s",
            statistics.median(v[0] for v in verify), "raw row fetch/s",
            statistics.median(v[1] for v in verify), ">= 100000",
            note=f"{verify[0][2]:,} entries incl. checkpoints, default workers"),
    ]
    return rows
