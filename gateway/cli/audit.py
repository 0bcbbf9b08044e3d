"""``casebridge audit``: verify the hash chains, checkpoint, answer access requests, export.

The audit trail holds metadata only (no payload, no names), so its report can be handed to the
client and its export to a data-protection officer as they are.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from casebridge.consent.audit import AuditTrail
from casebridge.errors import InputError, NotFound
from casebridge.gateway.access_report import produce_report, render_page, render_text
from casebridge.gateway.cli import EXIT_FAILURE, app
from casebridge.gateway.cli.consent import open_database, parse_time
from casebridge.routing.routes import RouteTable, configured_route_table
from casebridge.settings import get_settings

audit_app = typer.Typer(
    help="Verify, report on and export the tamper-evident audit trail.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int, int], None]]:
    # A live bar where someone watches; otherwise (logs, CI) a line at most every few seconds.
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("verifying audit chain", total=total or None)
            yield lambda done, _total: bar.update(task, completed=done)
        return
    last = [0.0]

    def line(done: int, of: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0 or done >= of:
            last[0] = now
            typer.echo(f"verified {done:,} of {of:,} entries", err=True)

    yield line


@audit_app.command("verify")
def verify(
    batch: int = typer.Option(20000, "--batch", min=1, help="Entries read per query."),
) -> None:
    """Check the whole chain; exit 1 and name the first broken entry if anything was altered,
    removed, reordered or inserted."""
    trail = AuditTrail(open_database())
    total = sum(seq for seq, _ in trail.heads().values())
    start = time.perf_counter()
    with _progress(total) as progress:
        result = trail.verify(batch=batch, progress=progress)
    elapsed = time.perf_counter() - start
    if result.ok:
        typer.echo(f"audit chain ok: {result.checked} entries verified in {elapsed:.2f}s "
                   f"({result.chains} chains, {result.checkpoints} checkpoints)")
        return
    typer.echo(
        f"audit chain BROKEN at entry {result.first_broken_seq}: {result.problem} "
        f"({result.checked} entries verified before it)"
    )
    raise typer.Exit(EXIT_FAILURE)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Write a checkpoint entry binding every chain's head now (appenders write one every
    CASEBRIDGE_AUDIT_CHECKPOINT_EVERY entries or _SECONDS seconds; run this e.g. before a
    backup so the backup's newest entries are bound too)."""
    entry = AuditTrail(open_database()).checkpoint()
    typer.echo(f"checkpoint {entry.seq}: {len(entry.details['heads'])} chain heads bound")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def _routes() -> RouteTable | None:
    # Agency names come from the route table when one is configured; ids otherwise.
    return configured_route_table() if get_settings().route_table is not None else None


@audit_app.command("report")
def report(
    client: str = typer.Option(..., "--client", help="The canonical client id (c-…)."),
    fmt: str = typer.Option("json", "--format", help="json, text or html (printable)."),
    lang: str = typer.Option("de", "--lang", help="de or en (text and html)."),
) -> None:
    """Which of the person's data went to whom, when, for what purpose, on which basis —
    as the client, and as a household member, guardian, child or entruster in others' files.

    The same report as the API and the console; producing it is recorded in the audit trail.
    Exit 2 if casebridge does not know the client.
    """
    if fmt not in ("json", "text", "html"):
        raise InputError("--format: expected json, text or html")
    if lang not in ("de", "en"):
        raise InputError("--lang: expected de or en")
    try:
        produced = produce_report(open_database(), client, by=f"cli:{_operator()}",
                                  via="cli", fmt=fmt, lang=lang, routes=_routes())
    except NotFound as exc:
        raise InputError(f"--client: {exc.message}") from None
    if fmt == "json":
        typer.echo(json.dumps(produced.report.as_json(), indent=2, ensure_ascii=False))
    elif fmt == "text":
        typer.echo(render_text(produced.text))
    else:
        typer.echo(render_page(produced.text))


@audit_app.command("export")
def export(
    since: str | None = typer.Option(
        None, "--since", help="Decision time from (ISO-8601, inclusive)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Decision time until (ISO-8601, exclusive)."
    ),
) -> None:
    """Write audit entries as JSON lines (with their hashes), oldest first."""
    trail = AuditTrail(open_database())
    window_start, window_end = parse_time(since, "--since"), parse_time(until, "--until")
    for entry in trail.entries(since=window_start, until=window_end):
        sys.stdout.write(json.dumps(entry.as_json(), ensure_ascii=False) + "\n")
