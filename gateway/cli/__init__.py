"""The ``casebridge`` command line.

Each command (or command group) lives in its own module of this package and is listed in
:data:`COMMANDS`; a module is imported only when its command runs (or its own ``--help`` is
asked for), so ``casebridge --help`` and a light command never import the web framework, the
database layer or the broker client. This module owns the one mapping from casebridge errors to
exit codes and one-line messages, so no command prints a stack trace for bad input.
"""

from __future__ import annotations

import importlib
import sys
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from casebridge import __version__
from casebridge.errors import CasebridgeError, ConfigError, InputError, NotFound

#: Every command in the order of ``casebridge --help``, with its one-line help. Command ``NAME``
#: lives in the module ``casebridge.gateway.cli.NAME``. The help line is the command's own (its
#: docstring's first line, or its group's ``help=``); tests/test_cli.py keeps the two equal and
#: the table complete, so listing the commands needs no import of them.
COMMANDS: dict[str, str] = {
    "demo": "Run the whole referral exchange on the embedded defaults and show each step.",
    "translate": (
        "Translate a native message into canonical JSON or into another system's native format."
    ),
    "consent": "Record, withdraw and inspect consents (FHIR R4 Consent in and out).",
    "clients": "Show, link and find candidate clients in the registry.",
    "decide": (
        "Decide every recipient of a message against the stored consents (dry run, no audit)."
    ),
    "audit": "Verify, report on and export the tamper-evident audit trail.",
    "serve": "Serve the gateway API (docs at /docs, schema at /openapi.json).",
    "worker": "Deliver queued messages to their recipients (push or outbox) until stopped.",
    "dlq": "Inspect and replay the dead-letter queue.",
    "status": "Show a referral's lifecycle, or list overdue referrals (Wiedervorlage).",
    "keys": "Issue, revoke and list API keys; set staff passwords and agency certificates.",
    "routes": "Validate a route table and print its agencies and routes.",
    "db": "Inspect and upgrade the database schema.",
    "schema": "Write the JSON Schema of the transfer envelope and of each canonical model.",
}


def load_commands(*names: str) -> None:
    """Import the modules of ``names`` (all commands if none are named), registering them."""
    for name in names or tuple(COMMANDS):
        importlib.import_module(f"casebridge.gateway.cli.{name}")


class LazyGroup(TyperGroup):
    """The root command group: lists :data:`COMMANDS` without importing them and imports a
    command's module when it is resolved."""

    listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        if self.listing:
            # only the help line is needed to list it; the real command is built when it runs
            return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name])
        load_commands(cmd_name)
        command = typer.main.get_command(app).commands.get(cmd_name)  # type: ignore[attr-defined]
        if command is not None:
            self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.list_commands(ctx):
            # the base class would suggest from the commands loaded so far, i.e. none
            matches = get_close_matches(name, self.list_commands(ctx), n=1)
            if matches:
                ctx.fail(f"No such command {name!r}. Did you mean {matches[0]!r}?")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="casebridge",
    cls=LazyGroup,
    help=(
        "casebridge carries referrals, case-conference invitations and support plans between "
        "job centres, social offices, youth offices and providers -- only with the client's "
        "consent, and with every decision in a tamper-evident audit trail."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain (click-formatted) help throughout: rich's help renderer and its imports about
    # tripled the time of `casebridge --help` (bench/bench_cli.py measures it).
    rich_markup_mode=None,
    context_settings={"max_content_width": 110},
)

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
    # imported here, not at the top: `casebridge --help` never reaches this callback
    from casebridge.logging import configure_logging
    from casebridge.settings import get_settings

    # Log format and level come from the settings; a command that needs settings reports an
    # invalid configuration itself, so logging falls back to its defaults rather than failing.
    try:
        settings = get_settings()
    except ConfigError:
        return
    configure_logging(fmt=settings.log_format, level=settings.log_level, force=True)


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
