"""``casebridge routes check [FILE]``: validate a route table and show what it admits."""

from __future__ import annotations

from pathlib import Path

import typer

from casebridge.gateway.cli import app

routes_app = typer.Typer(
    help="Validate a route table and print its agencies and routes.", no_args_is_help=True
)
app.add_typer(routes_app, name="routes")


def columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain aligned text columns (readable in a terminal, a log and a diff alike)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]]


@routes_app.command("check")
def check(
    file: Path | None = typer.Argument(
        None, help="The route table (.yaml/.toml); default: the one CASEBRIDGE_ROUTE_TABLE names."
    ),
) -> None:
    """Validate a route table; print its agencies and its routes in matching order."""
    from casebridge.routing.routes import PushDelivery, configured_route_table, load_route_table

    table = configured_route_table() if file is None else load_route_table(file)
    config = table.config
    agencies = [
        [a.id, str(a.kind), a.system,
         f"push {a.delivery.url}" if isinstance(a.delivery, PushDelivery) else "pull"]
        for a in config.agencies
    ]
    routes = [
        [str(n), ", ".join(r.senders), ", ".join(map(str, r.purposes)), ", ".join(r.recipients),
         ", ".join(map(str, r.message_types)) if r.message_types else "all",
         ", ".join(map(str, r.required_categories)) or "-",
         ", ".join(r.statutory_bases) or "-", str(r.response_days)]
        for n, r in enumerate(config.routes)
    ]
    out = [f"{table.source}: valid, {len(agencies)} agencies, {len(routes)} routes", "",
           *columns(["agency", "kind", "system", "delivery"], agencies), ""]
    if routes:
        out += columns(["#", "senders", "purposes", "recipients", "message types",
                        "required categories", "statutory bases", "response days"], routes)
    else:
        out.append("no routes: every message is refused")
    typer.echo("\n".join(out))
