"""``casebridge keys``: provision who may call the gateway.

Agencies get API keys (``keys issue AGENCY``); staff get a role, a key and/or a password
(``keys issue --user NAME --role dpo``, ``keys passwd NAME``). A key is printed once and stored
only as a hash; ``keys revoke`` takes effect on the very next request.
"""

from __future__ import annotations

import json
import sys

import typer

from casebridge.errors import InputError, NotFound
from casebridge.gateway.cli import app
from casebridge.gateway.cli.consent import open_database
from casebridge.gateway.principals import (
    PrincipalKind,
    Role,
    issue_key,
    list_keys,
    revoke_key,
    set_cert_subject,
    set_disabled,
    set_password,
)

keys_app = typer.Typer(
    help="Issue, revoke and list API keys; set staff passwords and agency certificates.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

_PEOPLE_ROLES = ", ".join(str(r) for r in Role if r is not Role.AGENCY)


def known_agency(agency: str) -> None:
    """Refuse an agency the configured route table does not list: a key for a misspelt or
    future agency would authenticate a sender no route admits."""
    from casebridge.routing.routes import configured_route_table

    table = configured_route_table()
    if agency not in table.agencies:
        raise InputError(
            f"agency '{agency}' is not in the route table {table.source}; "
            f"its agencies: {', '.join(sorted(table.agencies))}"
        )


@keys_app.command("issue")
def issue(
    agency: str | None = typer.Argument(
        None, help="Agency id the key authenticates as, e.g. jobcenter-duisburg."
    ),
    user: str | None = typer.Option(None, "--user", help="Issue the key to this person instead."),
    role: str | None = typer.Option(
        None, "--role", help=f"The person's role: {_PEOPLE_ROLES} (with --user)."
    ),
    label: str | None = typer.Option(None, "--label", help="A note on where the key is used."),
) -> None:
    """Issue a new API key; it is printed once and cannot be shown again."""
    if (agency is None) == (user is None):
        raise InputError("give either an AGENCY or --user NAME")
    if user is not None:
        if role is None or role not in {str(r) for r in Role} or role == Role.AGENCY:
            raise InputError(f"--role: one of {_PEOPLE_ROLES}")
        name, kind, the_role = user, PrincipalKind.USER, Role(role)
    else:
        if role not in (None, str(Role.AGENCY)):
            raise InputError("--role: an agency key always has the role 'agency'")
        assert agency is not None
        known_agency(agency)
        name, kind, the_role = agency, PrincipalKind.AGENCY, Role.AGENCY
    with open_database().session(immediate=True) as session:
        issued = issue_key(session, name=name, kind=kind, role=the_role, label=label)
    typer.echo(issued.secret)
    typer.echo(
        f"issued key {issued.key_id} for {issued.principal} (role {issued.role}); store it now, "
        "it is not shown again",
        err=True,
    )


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key id shown by 'keys list'.")) -> None:
    """Revoke a key; requests with it fail from now on."""
    with open_database().session(immediate=True) as session:
        info = revoke_key(session, key_id=key_id)
    if info is None:
        raise NotFound(f"no key '{key_id}'")
    typer.echo(f"revoked key {info.key_id} of {info.principal}")


@keys_app.command("list")
def list_(
    principal: str | None = typer.Option(None, "--principal", help="Only this principal's keys."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List keys (ids, owners, roles, state) -- never their secrets."""
    with open_database().session() as session:
        keys = list_keys(session, principal=principal)
    for k in keys:
        state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
        if as_json:
            typer.echo(json.dumps({
                "key_id": k.key_id, "principal": k.principal, "role": k.role, "label": k.label,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }))
        else:
            typer.echo(f"{k.key_id}  {k.principal}  {k.role}  {state}  {k.label or ''}".rstrip())


@keys_app.command("passwd")
def passwd(
    user: str = typer.Argument(..., help="The person's user name."),
    stdin: bool = typer.Option(
        False, "--stdin", help="Read the password from the first line of stdin (automation)."
    ),
) -> None:
    """Set a person's password (stored as an scrypt hash)."""
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with open_database().session(immediate=True) as session:
        set_password(session, name=user, password=password)
    typer.echo(f"password set for {user}")


@keys_app.command("cert")
def cert(
    agency: str = typer.Argument(..., help="The agency id."),
    subject: str | None = typer.Option(
        None, "--subject", help="Certificate subject as the TLS proxy passes it; omit to clear."
    ),
) -> None:
    """Register the client-certificate subject an agency authenticates with (via the proxy)."""
    with open_database().session(immediate=True) as session:
        set_cert_subject(session, agency=agency, subject=subject)
    typer.echo(f"certificate subject {'set' if subject else 'cleared'} for {agency}")


@keys_app.command("disable")
def disable(
    name: str = typer.Argument(..., help="Agency id or user name."),
    enable: bool = typer.Option(False, "--enable", help="Re-enable instead."),
) -> None:
    """Disable a principal: every key, password and certificate of it stops working at once."""
    with open_database().session(immediate=True) as session:
        changed = set_disabled(session, name=name, disabled=not enable)
    state = "enabled" if enable else "disabled"
    typer.echo(f"{name} {state}" if changed else f"{name} was already {state}")
