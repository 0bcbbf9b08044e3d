"""``casebridge worker``: consume recipients' queues, re-check consent, deliver, acknowledge.

Several workers may run at once (here with ``--concurrency``, or as separate processes on the
same broker): each message is handed to one of them, acknowledged only after its recipient
accepted it, and a redelivery after a crash is recognised by its delivery id.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from casebridge.errors import StoreUnreachable
from casebridge.gateway.cli import app
from casebridge.logging import get_logger
from casebridge.routing.runtime import Routing
from casebridge.routing.worker import write_state

log = get_logger(__name__)

#: Waits between attempts to reach the store at start: doubling from the first to the last.
START_BACKOFF = (0.5, 15.0)


def _routing_when_store_answers(stopped: threading.Event,
                                state_file: Path | None) -> Routing | None:
    """Routing on the configured store, waiting (with back-off) while the store does not answer:
    a worker started during a database outage waits for it like a running one does, it does not
    exit. ``None`` if asked to stop meanwhile."""
    wait, longest = START_BACKOFF
    while True:
        try:
            return Routing.from_settings()
        except StoreUnreachable:
            if state_file is not None:
                write_state(state_file, "paused_store")
            log.warning("store unreachable at start; waiting", retry_in=wait)
            if stopped.wait(wait):
                return None
            wait = min(wait * 2, longest)


def _run(agencies: list[str] | None, prefetch: int | None, idle_exit: float | None,
         threads: int = 1, state_file: Path | None = None) -> dict[str, int]:
    stopped = threading.Event()
    worker = None

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()
        if worker is not None:
            worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    routing = _routing_when_store_answers(stopped, state_file)
    if routing is None:
        return {}
    worker = routing.worker(agencies, prefetch=prefetch, threads=threads, state_file=state_file)
    if stopped.is_set():
        worker.stop()
    log.info("worker started", agency=",".join(worker.agencies),
             transport=routing.url.split(":")[0])
    try:
        worker.run(idle_timeout=idle_exit)
    finally:
        worker.close()
        routing.close()
    log.info("worker stopped", count=sum(worker.counts.values()))
    return worker.counts


def _child(agencies: list[str] | None, prefetch: int | None, idle_exit: float | None,
           threads: int, state_file: Path | None) -> None:
    _run(agencies, prefetch, idle_exit, threads, state_file)


@app.command()
def worker(
    agency: list[str] = typer.Option(
        None, "--agency", "-a", metavar="ID",
        help="Consume only this agency's queue (repeatable); default: every agency.",
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", "-c", min=1, max=64,
        help="Worker processes to run (each with its own broker connection).",
    ),
    threads: int = typer.Option(
        1, "--threads", "-t", min=1, max=64,
        help="Delivery threads per process (overlap waits on the store and recipients).",
    ),
    prefetch: int | None = typer.Option(
        None, "--prefetch", min=1, max=1000,
        help="Unacknowledged messages a worker holds at most; default: twice the delivery "
        "batch size (CASEBRIDGE_DELIVERY_BATCH_SIZE), at least 16, so that the next batch "
        "arrives while one is delivered.",
    ),
    idle_exit: float = typer.Option(
        None, "--idle-exit", metavar="SECONDS",
        help="Exit after this many seconds without a message (batch runs); default: run on.",
    ),
    state_file: Path = typer.Option(
        None, "--state-file", metavar="PATH",
        help="Keep the worker's state here (consuming, paused_store, reconnecting) for a "
        "readiness probe: casebridge-healthcheck --worker-state PATH. With --concurrency N "
        "each process writes PATH.1 … PATH.N.",
    ),
) -> None:
    """Deliver queued messages to their recipients (push or outbox) until stopped."""
    agencies = list(agency) if agency else None
    if concurrency == 1:
        counts = _run(agencies, prefetch, idle_exit, threads, state_file)
        typer.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no messages")
        return
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_child, daemon=False, args=(
                    agencies, prefetch, idle_exit, threads,
                    None if state_file is None else state_file.with_name(f"{state_file.name}.{n}")))
                for n in range(1, concurrency + 1)]
    for child in children:
        child.start()

    def _forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
    failed = [c.exitcode for c in children if c.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise typer.Exit(1)
