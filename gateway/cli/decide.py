"""``casebridge decide``: what would the consent gate release? A dry run.

It resolves the client, loads the consents from the configured store and runs the consent
engine exactly as the gate does, but it sends nothing and writes NO audit entry: a dry run is not
a transfer. Output is one JSON object per message, one per line:
``{"message_id": ..., "decisions": [{"recipient", "outcome", "released", "withheld", "consents",
"legal_basis"}]}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from casebridge.canonical_model import TransferEnvelope, validate_json
from casebridge.consent.gate import ConsentGate
from casebridge.gateway.cli import app
from casebridge.gateway.cli.consent import open_database, parse_time, read_input
from casebridge.settings import get_settings


@app.command()
def decide(
    file: Path = typer.Argument(
        ..., help="A canonical envelope (JSON), or with --from a native message file; '-' = stdin."
    ),
    from_system: str | None = typer.Option(
        None, "--from", metavar="SYSTEM",
        help="Translate FILE from this system's native format first (e.g. jobcenter).",
    ),
    at: str | None = typer.Option(
        None, "--at", help="Decision time (ISO-8601 with offset); default now (UTC)."
    ),
) -> None:
    """Decide every recipient of a message against the stored consents (dry run, no audit)."""
    moment = parse_time(at, "--at") or datetime.now(UTC)
    settings = get_settings()
    raw = read_input(file, "decide")
    if from_system is None:
        envelopes = [validate_json(TransferEnvelope, raw)]
    else:
        from casebridge.adapters import get_adapter

        adapter = get_adapter(from_system, max_bytes=settings.max_message_bytes)
        envelopes = adapter.parse(raw, source=str(file))
    gate = ConsentGate(open_database(), minor_age=settings.minor_age)
    for envelope in envelopes:
        evaluation = gate.evaluate(envelope, at=moment)
        typer.echo(json.dumps(evaluation.decisions.as_report(), ensure_ascii=False))
