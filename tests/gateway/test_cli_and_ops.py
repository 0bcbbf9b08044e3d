"""``casebridge keys`` and ``serve``; health, metrics and the request log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from casebridge.db import get_database
from casebridge.gateway.principals import ApiKeyRow, PrincipalRow, Role, principal_for_key
from casebridge.logging import configure_logging
from casebridge.settings import get_settings
from tests.conftest import REPO_ROOT
from tests.consent.store_fixtures import cli_env  # noqa: F401 - fixture
from tests.gateway.conftest import Issue

ROUTES = REPO_ROOT / "deploy" / "config" / "routes.yaml"


@pytest.fixture
def routes_env(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(ROUTES))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_keys_issue_refuses_an_agency_not_in_the_route_table(
    run_cli, cli_env: str, monkeypatch  # noqa: F811
) -> None:
    monkeypatch.delenv("CASEBRIDGE_ROUTE_TABLE", raising=False)
    get_settings.cache_clear()
    unconfigured = run_cli("keys", "issue", "jobcenter-duisburg")
    assert unconfigured.exit_code == 3 and "CASEBRIDGE_ROUTE_TABLE" in unconfigured.stderr
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(ROUTES))
    get_settings.cache_clear()
    try:
        typo = run_cli("keys", "issue", "jobcenter-duisbrug")
    finally:
        get_settings.cache_clear()
    assert typo.exit_code == 2 and typo.stdout == ""
    assert "agency 'jobcenter-duisbrug' is not in the route table" in typo.stderr
    assert "jobcenter-duisburg" in typo.stderr  # the agencies it does list
    with get_database(cli_env).session() as session:
        assert session.query(ApiKeyRow).count() == 0


def test_keys_issue_list_revoke(run_cli, cli_env: str, routes_env: None) -> None:  # noqa: F811
    issued = run_cli("keys", "issue", "jobcenter-duisburg", "--label", "prod system")
    assert issued.exit_code == 0, issued.stderr
    secret = issued.stdout.strip()
    assert secret.startswith("cbk_") and "store it now" in issued.stderr
    db = get_database(cli_env)
    with db.session() as session:
        principal = principal_for_key(session, key=secret)
        assert principal is not None and principal.agency == "jobcenter-duisburg"
        assert session.get(ApiKeyRow, principal.key_id) is not None

    listed = run_cli("keys", "list", "--json")
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["principal"] == "jobcenter-duisburg" and entry["revoked_at"] is None
    assert secret not in listed.stdout

    assert run_cli("keys", "revoke", entry["key_id"]).exit_code == 0
    with db.session() as session:
        assert principal_for_key(session, key=secret) is None
    assert run_cli("keys", "revoke", entry["key_id"]).exit_code != 0  # already revoked
    assert run_cli("keys", "revoke", "0000000000000000").exit_code == 4


def test_keys_for_people_and_passwords(run_cli, cli_env: str) -> None:  # noqa: F811
    assert run_cli("keys", "issue", "--user", "anna.dpo", "--role", "dpo").exit_code == 0
    assert run_cli("keys", "passwd", "anna.dpo", "--stdin",
                   stdin=b"a long enough passphrase\n").exit_code == 0
    with get_database(cli_env).session() as session:
        row = session.get(PrincipalRow, "anna.dpo")
        assert row is not None and row.role == "dpo"
        assert row.password_hash and row.password_hash.startswith("scrypt$")
    assert run_cli("keys", "passwd", "anna.dpo", "--stdin", stdin=b"short\n").exit_code == 2
    assert run_cli("keys", "issue", "--user", "bob", "--role", "agency").exit_code == 2
    assert run_cli("keys", "issue", "--user", "bob", "--role", "root").exit_code == 2
    assert run_cli("keys", "issue").exit_code == 2
    # An existing principal keeps its role: no silent promotion.
    assert run_cli("keys", "issue", "--user", "anna.dpo", "--role", "admin").exit_code == 1
    assert run_cli("keys", "disable", "anna.dpo").exit_code == 0
    assert run_cli("keys", "issue", "--user", "anna.dpo", "--role", "dpo").exit_code == 1


def test_serve_help_names_its_options(run_cli) -> None:
    result = run_cli("serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers"):
        assert option in result.stdout


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
    client.app.state.settings = client.app.state.settings.model_copy(
        update={"broker_url": "amqp://casebridge:x@127.0.0.1:1//"})
    down = client.get("/health/ready")
    assert down.status_code == 503 and down.json()["checks"]["broker"] == "fail"


def test_metrics_count_messages_and_decisions(client: TestClient, issue: Issue, sample) -> None:
    admin = issue("root.a", role=Role.ADMIN).headers

    def value(text: str, prefix: str) -> float:
        lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)

    before = client.get("/metrics", headers=admin).text
    jc = issue("jobcenter-duisburg").headers
    r = client.post("/v1/inbound/jobcenter", content=sample("zuweisung"),
                    headers={**jc, "Content-Type": "application/xml"})
    assert r.status_code == 202
    after = client.get("/metrics", headers=admin).text
    key = 'casebridge_messages_in_total{agency="jobcenter-duisburg",system="jobcenter"}'
    assert value(after, key) == value(before, key) + 1
    block = 'casebridge_decisions_total{outcome="block",stage="inbound"}'
    assert value(after, block) == value(before, block) + 1
    for name in ("casebridge_messages_out_total", "casebridge_delivery_latency_seconds",
                 "casebridge_delivery_retries_total", "casebridge_dead_letters_total",
                 "casebridge_http_requests_total"):
        assert f"# TYPE {name}" in after or f"# HELP {name}" in after, name


def test_request_log_has_no_personal_data(
    client: TestClient, issue: Issue, sample, capsys
) -> None:
    jc = issue("jobcenter-duisburg").headers
    configure_logging(fmt="json", level="info", force=True)  # binds the captured stderr
    capsys.readouterr()
    client.post("/v1/inbound/jobcenter", content=sample("zuweisung"),
                headers={**jc, "Content-Type": "application/xml"})
    client.get("/v1/consents", params={"client_id": "c-secret-query-value"}, headers=jc)
    err = capsys.readouterr().err
    lines = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    requests = [ln for ln in lines if ln.get("event") == "request"]
    assert [r["path"] for r in requests] == ["/v1/inbound/{system}", "/v1/consents"]
    assert requests[0]["agency"] == "jobcenter-duisburg" and requests[0]["status_code"] == 202
    assert requests[1]["status_code"] == 403
    for text in ("962D123456", "Yılmaz", "Ayşe", "1988-04-12", "c-secret-query-value",
                 "Bearer", "cbk_"):
        assert text not in err, text
