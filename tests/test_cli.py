"""The command line: help lists every command; errors become exit codes, never tracebacks."""

from __future__ import annotations

import subprocess
import sys

import typer

from casebridge.gateway.cli import COMMANDS, app, load_commands


def registered_commands() -> set[str]:
    load_commands()
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def test_help_lists_every_command(run_cli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for name in registered_commands():
        assert name in result.stdout


def test_every_command_has_help_text() -> None:
    load_commands()
    for command in app.registered_commands:
        assert command.callback is not None and command.callback.__doc__, command.name


def test_unknown_command_is_a_usage_error(run_cli) -> None:
    result = run_cli("no-such-command")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_console_script_runs_demo() -> None:
    proc = subprocess.run([sys.executable, "-m", "casebridge", "--version"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("casebridge ")


def test_command_table_is_complete_and_its_help_lines_are_the_commands_own() -> None:
    # `casebridge --help` lists COMMANDS without importing the commands: the table must not drift
    load_commands()
    real = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(COMMANDS) == set(real)
    for name, line in COMMANDS.items():
        assert line == real[name].get_short_help_str(limit=500), name


#: Modules `casebridge --help` must not import (the web stack, database, broker, FHIR, XML).
HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "kombu",
         "fhir", "lxml", "jinja2", "httpx", "prometheus_client", "jsonschema_rs", "yaml",
         "pydantic", "pydantic_settings", "structlog", "casebridge.adapters",
         "casebridge.consent", "casebridge.routing", "casebridge.canonical_model")

_PROBE = """
import sys
sys.argv = ["casebridge", *ARGS]
from casebridge.gateway.cli import main
try:
    main()
except SystemExit:
    pass
print("imported:" + "|".join(m for m in sys.modules if m.split(".")[0] in TOPS or m in NAMES),
      file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    tops = {h for h in HEAVY if "." not in h}
    names = set(HEAVY) - tops
    code = (_PROBE.replace("ARGS", repr(list(args))).replace("TOPS", repr(tops))
            .replace("NAMES", repr(names)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("imported:")]
    return {m for m in line.removeprefix("imported:").split("|") if m}


def test_help_imports_no_heavy_module() -> None:
    assert imported_by("--help") == set()
    assert imported_by() == set()  # no arguments: the help too


def test_translate_imports_only_what_translating_needs(tmp_path) -> None:
    from casebridge.gateway.demo import sample_bytes

    sample = tmp_path / "z.xml"
    sample.write_bytes(sample_bytes("jobcenter/zuweisung-001.xml"))
    loaded = {m.split(".")[0] for m in imported_by("translate", "--from", "jobcenter", str(sample))}
    assert {"lxml", "pydantic"} <= loaded  # the probe sees real imports
    assert loaded.isdisjoint({"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic",
                              "psycopg", "kombu", "fhir", "jinja2", "prometheus_client"})


def test_misspelt_command_gets_a_suggestion(run_cli) -> None:
    result = run_cli("transalte")
    assert result.exit_code == 2
    assert "Did you mean 'translate'?" in result.stderr
