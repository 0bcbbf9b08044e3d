"""``casebridge decide`` (and ``preview``, its own module): the gateway's path, sending nothing.

Both take the route table (``--routes``, default ``CASEBRIDGE_ROUTE_TABLE``) and the very
functions the gateway uses (:mod:`casebridge.routing.preview`): a message on no route is refused
as at the door (exit 2), statutory bases and required categories count, and the outcome and
reasons are the gateway's.

``decide`` prints one JSON object per message, one per line: ``{"message_id": ...,
"decisions": [{"recipient", "outcome", "released", "withheld", "consents", "legal_basis"}]}``;
it shows no data and writes no audit entry. ``preview`` prints, per recipient, the decision and
the native document that recipient would receive, masked (``--unmasked``: exactly as delivered);
it records a ``preview`` event in the audit trail, since it shows what would be transferred.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope, validate_json
from casebridge.consent.gate import ConsentGate
from casebridge.gateway.cli import app
from casebridge.gateway.cli.consent import open_database, parse_time, read_input
from casebridge.routing.preview import decide_file
from casebridge.routing.routes import RouteTable, configured_route_table, load_route_table
from casebridge.settings import get_settings

ROUTES_OPTION = typer.Option(
    None, "--routes", metavar="FILE",
    help="Route table (.yaml/.toml); default: CASEBRIDGE_ROUTE_TABLE.",
)
AT_OPTION = typer.Option(
    None, "--at", help="Decision time (ISO-8601 with offset); default now (UTC)."
)


def _routes(path: Path | None) -> RouteTable:
    return load_route_table(path) if path is not None else configured_route_table()


def _envelopes(
    file: Path, from_system: str | None, routes: RouteTable
) -> tuple[list[TransferEnvelope], str]:
    """The messages of ``file`` and the system they come from (the sender's, for canonical)."""
    raw = read_input(file, "decide")
    if from_system is None:
        envelope = validate_json(TransferEnvelope, raw)
        return [envelope], routes.agency(envelope.sender).system
    adapter = get_adapter(from_system, max_bytes=get_settings().max_message_bytes)
    return adapter.parse(raw, source=str(file)), from_system


def _gate() -> ConsentGate:
    return ConsentGate(open_database(), minor_age=get_settings().minor_age)


@app.command()
def decide(
    file: Path = typer.Argument(
        ..., help="A canonical envelope (JSON), or with --from a native message file; '-' = stdin."
    ),
    from_system: str | None = typer.Option(
        None, "--from", metavar="SYSTEM",
        help="Translate FILE from this system's native format first (e.g. jobcenter).",
    ),
    at: str | None = AT_OPTION,
    routes_file: Path | None = ROUTES_OPTION,
) -> None:
    """Decide every recipient of a message as the gateway would (dry run, no audit)."""
    moment = parse_time(at, "--at") or datetime.now(UTC)
    routes = _routes(routes_file)
    envelopes, system = _envelopes(file, from_system, routes)
    for _envelope, evaluation in decide_file(routes, _gate(), envelopes, system=system,
                                             at=moment):
        typer.echo(json.dumps(evaluation.decisions.as_report(), ensure_ascii=False))
