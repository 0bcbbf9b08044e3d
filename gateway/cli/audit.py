"""``casebridge audit``: verify the hash chain, answer access requests, export entries.

The audit trail holds metadata only (no payload, no names), so its report can be handed to the
client and its export to a data-protection officer as they are.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from casebridge.consent.audit import AuditTrail
from casebridge.gateway.cli import EXIT_FAILURE, app
from casebridge.gateway.cli.consent import open_database, parse_time

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
    head_seq, _ = trail.head()
    start = time.perf_counter()
    with _progress(head_seq) as progress:
        result = trail.verify(batch=batch, progress=progress)
    elapsed = time.perf_counter() - start
    if result.ok:
        typer.echo(f"audit chain ok: {result.checked} entries verified in {elapsed:.2f}s")
        return
    typer.echo(
        f"audit chain BROKEN at entry {result.first_broken_seq}: {result.problem} "
        f"({result.checked} entries verified before it)"
    )
    raise typer.Exit(EXIT_FAILURE)


def _text_report(report: dict[str, Any]) -> str:
    lines = [f"Disclosures of data about client {report['client_id']} (Art. 15 GDPR)", ""]
    if not report["recipients"]:
        lines.append("No data about this client was released to any agency.")
    for name, summary in report["recipients"].items():
        lines.append(
            f"{name}: {', '.join(summary['categories'])} -- purposes "
            f"{', '.join(summary['purposes'])}; consents {', '.join(summary['consents']) or '-'}; "
            f"{summary['first']} .. {summary['last']}"
        )
    if report["disclosures"]:
        lines += ["", "Each release:"]
    for d in report["disclosures"]:
        basis = f", legal basis {d['legal_basis']}" if d["legal_basis"] else ""
        lines.append(
            f"  {d['at']}  {d['sender']} -> {d['recipient']}  ({d['purpose']}, {d['stage']}): "
            f"{', '.join(d['categories'])}; consents {', '.join(d['consents']) or '-'}{basis}; "
            f"message {d['message_id']}"
        )
    if report["withheld_transfers"]:
        lines += ["", f"{len(report['withheld_transfers'])} transfer(s) were blocked entirely."]
    return "\n".join(lines)


@audit_app.command("report")
def report(
    client: str = typer.Option(..., "--client", help="The canonical client id (c-…)."),
    fmt: str = typer.Option("json", "--format", help="json or text."),
) -> None:
    """Which of the client's data went to whom, when, for what purpose, under which consent."""
    if fmt not in ("json", "text"):
        from casebridge.errors import InputError

        raise InputError("--format: expected json or text")
    data = AuditTrail(open_database()).report(client)
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(_text_report(data))


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
