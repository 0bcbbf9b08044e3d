"""``casebridge consent``: import, export, withdraw, list and show consents.

Consents come in and go out as FHIR R4 ``Consent`` resources. The store is the one named by
``CASEBRIDGE_DATABASE_URL`` (default: a SQLite file in the data directory), created and migrated
on first use. Consents are never changed: a change is a withdrawal plus a new consent.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from casebridge.consent.store import ConsentRecord, ConsentStore
from casebridge.db import Database, get_database
from casebridge.errors import InputError
from casebridge.gateway.cli import app
from casebridge.settings import get_settings

consent_app = typer.Typer(
    help="Record, withdraw and inspect consents (FHIR R4 Consent in and out).",
    no_args_is_help=True,
)
app.add_typer(consent_app, name="consent")


def open_database() -> Database:
    """The configured store, migrated on first use."""
    return get_database(get_settings().effective_database_url)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time with UTC offset from the command line (None stays None)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{option}: not an ISO-8601 time (e.g. 2026-11-20T10:00:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        raise InputError(f"{option}: the time needs a UTC offset (e.g. +01:00 or Z)")
    return moment


def read_input(path: Path, what: str) -> bytes:
    """The bytes of an input file (``-`` for stdin), bounded by the configured message size."""
    limit = get_settings().max_message_bytes
    try:
        if str(path) == "-":
            import sys

            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with path.open("rb") as handle:
                raw = handle.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{what}: cannot read '{path}' ({reason})") from None
    if len(raw) > limit:
        raise InputError(f"{what}: '{path}' exceeds the limit of {limit} bytes")
    return raw


def record_summary(record: ConsentRecord, now: datetime) -> dict[str, Any]:
    """A consent as one JSON object for ``list`` (no names, no identifiers)."""
    d = record.directive
    return {
        "consent_id": d.consent_id,
        "client_id": record.client_id,
        "state": record.state_at(now),
        "status": str(d.status),
        "grantor": str(d.grantor.relation),
        "valid_from": d.effective_from.isoformat(),
        "valid_until": d.valid_until.isoformat() if d.valid_until else None,
        "disclosers": list(d.disclosers),
        "recipients": list(d.recipients),
        "purposes": [str(p) for p in d.purposes],
        "categories": None if d.categories is None else [str(c) for c in d.categories],
        "withdrawn_at": record.withdrawal.at.isoformat() if record.withdrawal else None,
    }


def consent_files(paths: list[Path]) -> list[Path]:
    """The files named, with each directory replaced by its ``*.json`` files (sorted)."""
    found: list[Path] = []
    for path in paths:
        if str(path) != "-" and path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
            if not inside:
                raise InputError(f"consent import: directory '{path}' holds no *.json file")
            found.extend(inside)
        else:
            found.append(path)
    return found


@consent_app.command("import")
def import_(
    files: list[Path] = typer.Argument(
        ...,
        help="FHIR Consent or collection Bundle files (JSON), or directories of *.json files; "
        "'-' reads stdin.",
    ),
) -> None:
    """Import consents; prints each consent id. Any invalid consent refuses the whole import."""
    paths = consent_files(files)
    inputs = [(str(path), read_input(path, "consent import")) for path in paths]
    results = ConsentStore(open_database()).import_fhir_files(inputs)
    for result in results:
        typer.echo(result.consent_id)
    created = sum(r.created for r in results)
    typer.echo(
        f"recorded {created} consent(s) from {len(paths)} file(s), "
        f"{len(results) - created} already on record unchanged",
        err=True,
    )


@consent_app.command("export")
def export(consent_id: str = typer.Argument(..., help="The consent id.")) -> None:
    """Print a consent as a FHIR R4 Consent resource (withdrawn ones as inactive)."""
    from casebridge.consent.fhir import render_consent

    record = ConsentStore(open_database()).require(consent_id)
    withdrawn_at = record.withdrawal.at if record.withdrawal else None
    typer.echo(render_consent(record.directive, withdrawn_at=withdrawn_at).decode())


@consent_app.command("withdraw")
def withdraw(
    consent_id: str = typer.Argument(..., help="The consent id."),
    at: str | None = typer.Option(
        None, "--at", help="When it was withdrawn (ISO-8601 with offset); default now."
    ),
    by: str | None = typer.Option(
        None, "--by", help="Who withdrew it (person or desk); default the OS user."
    ),
) -> None:
    """Withdraw a consent; it stops covering anything from that moment on."""
    moment = parse_time(at, "--at") or datetime.now(UTC)
    who = by or _os_user()
    withdrawal = ConsentStore(open_database()).withdraw(consent_id, at=moment, by=who)
    typer.echo(f"{withdrawal.consent_id} withdrawn at {withdrawal.at.isoformat()}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "cli"


@consent_app.command("list")
def list_(
    client: str = typer.Option(..., "--client", help="The canonical client id (c-…)."),
) -> None:
    """List a client's consents (withdrawn and expired ones included) as JSON."""
    now = datetime.now(UTC)
    records = ConsentStore(open_database()).list_for_client(client)
    typer.echo(json.dumps([record_summary(r, now) for r in records], indent=2, ensure_ascii=False))


@consent_app.command("show")
def show(consent_id: str = typer.Argument(..., help="The consent id.")) -> None:
    """Show a consent as recorded, with its history (given, recorded, withdrawn)."""
    record = ConsentStore(open_database()).require(consent_id)
    out = {
        **record_summary(record, datetime.now(UTC)),
        "source": record.source,
        "history": record.history(),
        "directive": record.directive.model_dump(mode="json"),
    }
    typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
