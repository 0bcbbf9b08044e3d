"""The ``casebridge`` command line.

Each command group lives in its own module of this package and is registered in
:data:`COMMAND_MODULES`; this module owns the one mapping from casebridge errors to exit codes
and one-line messages, so no command prints a stack trace for bad input.
"""

from __future__ import annotations

import importlib
import sys

import typer

from casebridge import __version__
from casebridge.errors import CasebridgeError, ConfigError, InputError, NotFound
from casebridge.logging import configure_logging
from casebridge.settings import get_settings

app = typer.Typer(
    name="casebridge",
    help=(
        "casebridge carries referrals, case-conference invitations and support plans between "
        "job centres, social offices, youth offices and providers -- only with the client's "
        "consent, and with every decision in a tamper-evident audit trail."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules that add commands to :data:`app` when imported (each calls ``app.command`` or
#: ``app.add_typer``). Kept as a list so a new command group is one line here.
COMMAND_MODULES = [
    "casebridge.gateway.cli.schema",
    "casebridge.gateway.cli.demo",
    "casebridge.gateway.cli.consent",
    "casebridge.gateway.cli.clients",
    "casebridge.gateway.cli.decide",
    "casebridge.gateway.cli.audit",
    "casebridge.gateway.cli.keys",
    "casebridge.gateway.cli.serve",
    "casebridge.gateway.cli.db",
    "casebridge.gateway.cli.translate",
    "casebridge.gateway.cli.worker",
    "casebridge.gateway.cli.dlq",
    "casebridge.gateway.cli.status",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # the operation ran and found a problem (e.g. a broken audit chain)
EXIT_BAD_INPUT = 2  # the input or the command line was wrong
EXIT_CONFIG = 3  # settings or configuration files are invalid
EXIT_NOT_FOUND = 4
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug; reported without a traceback


def exit_code_for(exc: CasebridgeError) -> int:
    """The process exit code of a casebridge error (the CLI's one mapping)."""
    if isinstance(exc, InputError):
        return EXIT_BAD_INPUT
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    return EXIT_FAILURE


def _version(value: bool) -> None:
    if value:
        typer.echo(f"casebridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """casebridge: consent-gated case exchange between social-service agencies."""
    # Log format and level come from the settings; a command that needs settings reports an
    # invalid configuration itself, so logging falls back to its defaults rather than failing.
    try:
        settings = get_settings()
    except ConfigError:
        return
    configure_logging(fmt=settings.log_format, level=settings.log_level, force=True)


for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main() -> None:
    """Console entry point: run the app, turning casebridge errors into exit codes.

    typer (standalone mode) handles usage errors itself (exit 2) and exits through SystemExit;
    everything else that escapes a command is mapped here, in one place.
    """
    try:
        app()
    except CasebridgeError as exc:
        for line in exc.lines():
            typer.echo(f"casebridge: {line}", err=True)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: never show a traceback to a user
        typer.echo(
            f"casebridge: internal error ({type(exc).__name__}); this is a bug, please report it",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
