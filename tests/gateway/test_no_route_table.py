"""Without a route table: what the README, docs/configuration.md and docs/gateway.md say
happens is what the command line and the gateway do."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from casebridge.gateway.principals import Role
from casebridge.settings import Settings, get_settings
from tests.conftest import REPO_ROOT
from tests.gateway.conftest import Issue

DOCS = {name: (REPO_ROOT / name).read_text(encoding="utf-8")
        for name in ("README.md", "docs/configuration.md", "docs/gateway.md")}
#: The commands the documents name as failing without a table, with what each needs to run.
COMMANDS = {
    "worker": ["worker", "--idle-exit", "0.1"],
    "dlq": ["dlq", "list"],
    "keys issue AGENCY": ["keys", "issue", "jobcenter-duisburg"],
    "routes check": ["routes", "check"],
}
LISTED = "`worker`, `dlq`, `keys issue AGENCY` and `routes check`"


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_each_document_says_the_same(name: str) -> None:
    text = flat(DOCS[name])
    assert LISTED in text, name
    assert "503" in text and "exit with code 3" in text, name
    assert "only `casebridge demo`" in text.lower() or "only `demo`" in text, name


@pytest.fixture
def unconfigured(tmp_path, monkeypatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("CASEBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("listed", sorted(COMMANDS))
def test_the_commands_named_exit_3_naming_the_setting(run_cli, unconfigured, listed) -> None:
    result = run_cli(*COMMANDS[listed])
    assert result.exit_code == 3, (listed, result.stderr)
    assert "CASEBRIDGE_ROUTE_TABLE" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def gateway_settings(tmp_path) -> Settings:
    """Overrides the settings of tests/gateway/conftest.py's app fixtures: no route table."""
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
                    broker_url="memory://", log_format="json", log_level="warning")


def test_gateway_answers_routing_with_503_and_keeps_the_consent_desk(
    client: TestClient, issue: Issue
) -> None:
    agency = issue("jobcenter-duisburg")
    outbox = client.get("/v1/outbox", headers=agency.headers)
    assert outbox.status_code == 503
    assert outbox.json()["code"] == "invalid_configuration"
    desk = issue("desk", role=Role.CONSENT_DESK)
    consents = client.get("/v1/consents", params={"client_id": "c-1"}, headers=desk.headers)
    assert consents.status_code == 200 and consents.json() == []
