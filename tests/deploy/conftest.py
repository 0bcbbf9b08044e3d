"""Shared paths and tool lookup for the deployment tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"

#: checkov pins packaging<24 while pytest>=8 needs packaging>=24, so it cannot share the test
#: environment; it runs from its own virtual environment (created on first use, then cached).
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = Path.home() / ".cache" / "casebridge-tools" / f"checkov-{CHECKOV_VERSION}"


def venv_tool(name: str) -> str:
    """The path of a console script installed into the running interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def checkov_executable() -> str:
    """checkov from $CHECKOV, or its cached virtual environment (installed if missing)."""
    configured = os.environ.get("CHECKOV")
    if configured:
        return configured
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=900,
        )
    return str(binary)
