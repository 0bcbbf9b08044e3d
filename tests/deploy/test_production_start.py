"""Production processes refuse embedded defaults and default credentials: exit 3, one clear line.

Run as real processes through the console script, as a container would start them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASEBRIDGE = str(Path(sys.executable).parent / "casebridge")


def _start(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    clean.update({"CASEBRIDGE_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [CASEBRIDGE, *args], env=clean, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


@pytest.mark.parametrize(
    "command",
    [["serve", "--port", "18999"], ["worker"], ["db", "upgrade"], ["dlq", "list"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_production_with_embedded_defaults_exits_3(command, tmp_path) -> None:
    result = _start(command, {"CASEBRIDGE_ENVIRONMENT": "production"}, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "CASEBRIDGE_DATABASE_URL must name a server database" in result.stderr
    assert "CASEBRIDGE_BROKER_URL must be an amqp(s):// broker" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.db")), "nothing may be created before the refusal"


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        (
            {"CASEBRIDGE_DATABASE_URL": "sqlite:///cb.db",
             "CASEBRIDGE_BROKER_URL": "amqp://cb:Xy7-s3cret@rabbit//"},
            "server database",
        ),
        (
            {"CASEBRIDGE_DATABASE_URL": "postgresql+psycopg://cb:Xy7-s3cret@db/cb",
             "CASEBRIDGE_BROKER_URL": "amqp://guest:guest@rabbit//"},
            "guest",
        ),
        (
            {"CASEBRIDGE_DATABASE_URL": "postgresql+psycopg://postgres:postgres@db/cb",
             "CASEBRIDGE_BROKER_URL": "amqp://cb:Xy7-s3cret@rabbit//"},
            "default password",
        ),
        (
            {"CASEBRIDGE_DATABASE_URL_FILE": "/nonexistent/secret",
             "CASEBRIDGE_BROKER_URL": "amqp://cb:Xy7-s3cret@rabbit//"},
            "CASEBRIDGE_DATABASE_URL_FILE: cannot read",
        ),
    ],
)
def test_serve_refuses_default_credentials(env, complaint, tmp_path) -> None:
    result = _start(
        ["serve", "--port", "18999"], {"CASEBRIDGE_ENVIRONMENT": "production", **env}, tmp_path
    )
    assert result.returncode == 3, result.stderr
    assert complaint in result.stderr
    assert "Xy7-s3cret" not in result.stderr  # the message names the variable, not its value


GOOD_SERVER_URLS = {
    "CASEBRIDGE_DATABASE_URL": "postgresql+psycopg://cb:Xy7-s3cret-9wLq@127.0.0.1:9/cb",
    "CASEBRIDGE_BROKER_URL": "amqp://cb:Xy7-s3cret-9wLq@127.0.0.1:9//",
}


def test_serve_refuses_counting_failed_logins_in_memory(tmp_path) -> None:
    env = {"CASEBRIDGE_ENVIRONMENT": "production", **GOOD_SERVER_URLS}
    for storage in ({}, {"CASEBRIDGE_RATE_LIMIT_STORAGE": "memory://"}):
        result = _start(["serve", "--port", "18999"], {**env, **storage}, tmp_path)
        assert result.returncode == 3, result.stderr
        assert "CASEBRIDGE_RATE_LIMIT_STORAGE must be a shared storage" in result.stderr
        assert "Traceback" not in result.stderr and "Xy7-s3cret" not in result.stderr
