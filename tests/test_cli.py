"""The command line: help lists every command; errors become exit codes, never tracebacks."""

from __future__ import annotations

import subprocess
import sys

from casebridge.gateway.cli import app


def registered_commands() -> set[str]:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def test_help_lists_every_command(run_cli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for name in registered_commands():
        assert name in result.stdout


def test_every_command_has_help_text() -> None:
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
