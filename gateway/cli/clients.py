"""``casebridge clients``: the registry of canonical clients and their agency identifiers.

Links are deliberate: consent import and ``clients link`` make them; ``candidates`` only proposes
clients by normalised name and birth date for a person to confirm, and never links anything.
"""

from __future__ import annotations

import json
from datetime import date

import typer

from casebridge.consent.registry import ClientInfo, ClientRegistry
from casebridge.errors import InputError, NotFound
from casebridge.gateway.cli import app
from casebridge.gateway.cli.consent import _os_user, open_database

clients_app = typer.Typer(
    help="Show, link and find candidate clients in the registry.", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")


def _info(info: ClientInfo) -> dict[str, object]:
    return {
        "client_id": info.client_id,
        "birth_date": info.birth_date.isoformat() if info.birth_date else None,
        "identifiers": info.links,
    }


@clients_app.command("link")
def link(
    client_id: str = typer.Argument(..., help="The canonical client id (c-…)."),
    system: str = typer.Argument(
        ..., help="Identifier system, e.g. urn:casebridge:id:AGENCY:KIND."
    ),
    value: str = typer.Argument(..., help="The identifier value in that system."),
    by: str | None = typer.Option(
        None, "--by", help="Who confirmed the link; default the OS user."
    ),
) -> None:
    """Link an agency identifier to a client (refused if it belongs to another client)."""
    created = ClientRegistry(open_database()).link(client_id, system, value, by=by or _os_user())
    typer.echo(f"{'linked' if created else 'already linked'}: {system} -> {client_id}")


@clients_app.command("show")
def show(
    client_id: str | None = typer.Argument(None, help="The canonical client id (c-…)."),
    identifier: str | None = typer.Option(
        None, "--identifier", help="Find the client by SYSTEM=VALUE instead of its id."
    ),
) -> None:
    """Show a client and its identifiers as JSON."""
    registry = ClientRegistry(open_database())
    if (client_id is None) == (identifier is None):
        raise InputError("clients show: give either CLIENT_ID or --identifier SYSTEM=VALUE")
    if identifier is not None:
        system, sep, value = identifier.partition("=")
        if not sep or not system or not value:
            raise InputError("--identifier: expected SYSTEM=VALUE")
        found = registry.find(system, value)
        if found is None:
            raise NotFound("no client has that identifier")
        client_id = found
    assert client_id is not None
    typer.echo(json.dumps(_info(registry.show(client_id)), indent=2, ensure_ascii=False))


@clients_app.command("candidates")
def candidates(
    name: str = typer.Option(..., "--name", help="'Family, Given' as written anywhere."),
    birth_date: str | None = typer.Option(None, "--birth-date", help="YYYY-MM-DD."),
) -> None:
    """Propose clients by normalised name (and birth date): proposals only, never links."""
    born = None
    if birth_date is not None:
        try:
            born = date.fromisoformat(birth_date)
        except ValueError:
            raise InputError("--birth-date: expected YYYY-MM-DD") from None
    found = ClientRegistry(open_database()).candidates(name, born)
    typer.echo(json.dumps([_info(c) for c in found], indent=2, ensure_ascii=False))
    typer.echo(f"{len(found)} candidate(s); confirm with 'casebridge clients link'", err=True)
