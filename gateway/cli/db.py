"""``casebridge db``: the database schema, explicitly (deployments migrate before a roll-out).

Every process also migrates on first use (:func:`casebridge.db.get_database`); this command lets
an operator — or the Kubernetes migration Job — do it as a separate, observable step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from casebridge.db import create_db_engine, current_revisions, head_revisions, migrate
from casebridge.errors import ConfigError
from casebridge.gateway.cli import EXIT_FAILURE, app
from casebridge.settings import get_settings

db_app = typer.Typer(help="Inspect and upgrade the database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _show(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "empty"


@contextmanager
def _configured_engine() -> Iterator[Engine]:
    """The configured database's engine; a database that cannot be opened is a ConfigError."""
    engine = create_db_engine(get_settings().effective_database_url)
    try:
        yield engine
    except OperationalError as exc:
        raise ConfigError(
            f"cannot open the database ({type(exc.orig).__name__}); check CASEBRIDGE_DATABASE_URL"
        ) from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade() -> None:
    """Bring the schema to the newest revision (idempotent; safe while other processes run)."""
    with _configured_engine() as engine:
        before = current_revisions(engine)
        migrate(engine)
        after = current_revisions(engine)
    if before == after:
        typer.echo(f"schema already at {_show(after)}")
    else:
        typer.echo(f"schema upgraded from {_show(before)} to {_show(after)}")


@db_app.command("status")
def status() -> None:
    """Show the schema revision; exit 1 if the database is behind the installed code."""
    with _configured_engine() as engine:
        current = current_revisions(engine)
    heads = head_revisions()
    typer.echo(f"database: {_show(current)}")
    typer.echo(f"code:     {_show(heads)}")
    if current != heads:
        typer.echo("the database needs `casebridge db upgrade`", err=True)
        raise typer.Exit(EXIT_FAILURE)
