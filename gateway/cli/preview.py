"""``casebridge preview``: per recipient, the decision and the document it would receive.

The gateway's path without sending anything (see :mod:`casebridge.gateway.cli.decide` and
:mod:`casebridge.routing.preview`); the documents are masked unless ``--unmasked``, and every
preview is recorded as a ``preview`` event in the audit trail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from casebridge.gateway.cli import app
from casebridge.gateway.cli.consent import parse_time
from casebridge.gateway.cli.decide import AT_OPTION, ROUTES_OPTION, _envelopes, _gate, _routes
from casebridge.routing.preview import PreviewMessage, preview_file


def _print(message: PreviewMessage, *, masked: bool) -> None:
    report = message.report(masked=masked)
    for entry in report["recipients"]:
        typer.echo(f"=== {report['message_id']} -> {entry['recipient']}: {entry['outcome']}"
                   + (f" ({entry['media_type']})" if entry["media_type"] else ""))
        typer.echo(f"released: {', '.join(entry['released']) or '-'}")
        for withheld in entry["withheld"]:
            typer.echo(f"withheld: {withheld['category']} ({withheld['reason']})")
        for problem in entry["problems"]:
            typer.echo(f"cannot be rendered, would be dead-lettered: {problem}")
        if entry["document"] is not None:
            typer.echo(entry["document"].rstrip("\n"))
        typer.echo("")


@app.command()
def preview(
    file: Path = typer.Argument(..., help="A native message file; '-' = stdin."),
    from_system: str = typer.Option(
        ..., "--from", metavar="SYSTEM", help="The sending system (e.g. jobcenter)."
    ),
    at: str | None = AT_OPTION,
    routes_file: Path | None = ROUTES_OPTION,
    unmasked: bool = typer.Option(
        False, "--unmasked", help="Print the documents exactly as delivered, personal values "
        "included (audited like the masked preview)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per message."),
) -> None:
    """Show, per recipient, the decision and the native document it would receive (masked)."""
    moment = parse_time(at, "--at") or datetime.now(UTC)
    routes = _routes(routes_file)
    envelopes, system = _envelopes(file, from_system, routes)
    messages = preview_file(routes, _gate(), envelopes, system=system, at=moment,
                            requested_by="cli" + (":unmasked" if unmasked else ""))
    for message in messages:
        if as_json:
            typer.echo(json.dumps(message.report(masked=not unmasked), ensure_ascii=False))
        else:
            _print(message, masked=not unmasked)
