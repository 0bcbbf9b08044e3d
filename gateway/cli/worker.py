"""``casebridge worker``: consume recipients' queues, re-check consent, deliver, acknowledge.

Several workers may run at once (here with ``--concurrency``, or as separate processes on the
same broker): each message is handed to one of them, acknowledged only after its recipient
accepted it, and a redelivery after a crash is recognised by its delivery id.
"""

from __future__ import annotations

import multiprocessing
import signal
from pathlib import Path
from types import FrameType

import typer

from casebridge.gateway.cli import app
from casebridge.logging import get_logger
from casebridge.routing.runtime import Routing

log = get_logger(__name__)


def _run(agencies: list[str] | None, prefetch: int, idle_exit: float | None,
         threads: int = 1, state_file: Path | None = None) -> dict[str, int]:
    routing = Routing.from_settings()
    worker = routing.worker(agencies, prefetch=prefetch, threads=threads, state_file=state_file)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started", agency=",".join(worker.agencies),
             transport=routing.url.split(":")[0])
    try:
        worker.run(idle_timeout=idle_exit)
    finally:
        worker.close()
        routing.close()
    log.info("worker stopped", count=sum(worker.counts.values()))
    return worker.counts


def _child(agencies: list[str] | None, prefetch: int, idle_exit: float | None,
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
    prefetch: int = typer.Option(
        16, "--prefetch", min=1, max=1000,
        help="Unacknowledged messages a worker holds at most.",
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
