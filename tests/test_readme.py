"""The README's two commands are what CI and users run."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def block_after(marker: str) -> list[str]:
    match = re.search(rf"<!-- {marker} -->\s*```\n(.*?)```", README, re.S)
    assert match, f"README has no code block after <!-- {marker} -->"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_one_main_and_one_test_command() -> None:
    assert len(block_after("main-command")) == 1
    assert len(block_after("test-command")) == 1
    assert "casebridge demo" in block_after("main-command")[0]
    assert "pytest" in block_after("test-command")[0]


def test_ci_runs_both_readme_commands() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "for marker in main-command test-command" in ci


def test_readme_names_the_route_table_setting() -> None:
    configuration = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "`CASEBRIDGE_ROUTE_TABLE`" in configuration


def test_production_setup_block_uses_real_settings_and_commands(run_cli) -> None:
    import shlex

    from casebridge.settings import Settings

    lines = [line.split("#", 1)[0].strip() for line in block_after("production-setup")]
    exported = [line.removeprefix("export ").split("=", 1)[0] for line in lines
                if line.startswith("export ")]
    settings = {name.removeprefix("CASEBRIDGE_").removesuffix("_FILE").lower()
                for name in exported}
    assert {"environment", "route_table", "database_url", "broker_url"} <= settings
    assert settings <= set(Settings.model_fields), settings - set(Settings.model_fields)
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("casebridge ")]
    assert [c[:2] for c in commands][:3] == [["routes", "check"], ["db", "upgrade"],
                                            ["keys", "issue"]]
    assert {"serve", "worker"} <= {c[0] for c in commands}
    for command in commands:
        # --help is parsed first: the command, its options and their spelling exist
        result = run_cli(*command, "--help")
        assert result.exit_code == 0, (command, result.stderr)
        for option in (word for word in command if word.startswith("--")):
            assert option in result.stdout, (command, option)
