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
