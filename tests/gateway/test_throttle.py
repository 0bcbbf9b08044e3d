"""Failed authentication is throttled per account and per address; a lock is audited and shown.

The counters run in memory by default and in the Redis on 127.0.0.1:6379 (the production set-up,
shared by several gateway processes: two apps here) in the Redis test.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.gateway.principals import Role
from casebridge.settings import Settings
from tests.console.conftest import csrf_token, login_token
from tests.gateway.conftest import Issue

PASSWORD = "correct horse battery staple"


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _locks(settings: Settings) -> list[dict[str, object]]:
    trail = AuditTrail(get_database(settings.effective_database_url))
    return [dict(e.details) for e in trail.entries() if e.kind == "login_locked"]


def _app(settings: Settings, **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)),
                      raise_server_exceptions=False)


def test_wrong_passwords_lock_the_account_even_for_the_right_one(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    issue("anna.desk", role=Role.CONSENT_DESK, password=PASSWORD)
    assert client.get("/v1/consents?client_id=C-1", headers=_basic("anna.desk", PASSWORD)
                      ).status_code == 200
    for _ in range(10):  # the default: 10 failures per account in 15 minutes
        r = client.get("/v1/consents?client_id=C-1", headers=_basic("anna.desk", "guess-" * 3))
        assert r.status_code == 401
    r = client.get("/v1/consents?client_id=C-1", headers=_basic("anna.desk", PASSWORD))
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 60 < int(r.headers["Retry-After"]) <= 15 * 60 + 1
    assert r.json()["code"] == "too_many_attempts"
    locks = _locks(gateway_settings)
    assert [(lock["scope"], lock["subject"], lock["auth"]) for lock in locks] == [
        ("account", "anna.desk", "password")]
    # Another account from the same address is not affected (the address limit is higher).
    issue("bernd.desk", role=Role.CONSENT_DESK, password=PASSWORD)
    assert client.get("/v1/consents?client_id=C-1", headers=_basic("bernd.desk", PASSWORD)
                      ).status_code == 200


def test_a_success_resets_the_account_count(client: TestClient, issue: Issue) -> None:
    issue("carla.desk", role=Role.CONSENT_DESK, password=PASSWORD)
    for _ in range(3):
        for _ in range(9):
            assert client.get("/v1/consents?client_id=C-1",
                              headers=_basic("carla.desk", "nope" * 4)).status_code == 401
        assert client.get("/v1/consents?client_id=C-1",
                          headers=_basic("carla.desk", PASSWORD)).status_code == 200


def test_api_keys_lock_per_key_id_and_per_address(
    gateway_settings: Settings, client: TestClient, issue: Issue
) -> None:
    reset_databases()
    strict = _app(gateway_settings, auth_failures_per_account="3/minute",
                  auth_failures_per_address="6/minute")
    with strict:
        jc = issue("jobcenter-duisburg")
        forged = f"cbk_{jc.key_id}_{secrets.token_urlsafe(32)}"  # the right id, a wrong secret
        for _ in range(3):
            assert strict.get("/v1/outbox", headers={"X-API-Key": forged}).status_code == 401
        assert strict.get("/v1/outbox", headers=jc.headers).status_code == 429  # key id locked
        for _ in range(3):  # random keys: no account, but the same address
            assert strict.get("/v1/outbox", headers={"Authorization": "Bearer cbk_nonsense"}
                              ).status_code == 401
        desk = issue("dora.desk", role=Role.CONSENT_DESK)
        r = strict.get("/v1/consents?client_id=C-1", headers=desk.headers)
        assert r.status_code == 429  # the address is locked for everyone now
        scopes = sorted(str(lock["scope"]) for lock in _locks(gateway_settings))
        assert scopes == ["account", "address"]
        address = next(lk for lk in _locks(gateway_settings) if lk["scope"] == "address")
        assert str(address["subject"]).startswith("sha256:")  # no address in the audit trail


def test_inbound_without_valid_credentials_counts_too(
    gateway_settings: Settings, client: TestClient
) -> None:
    strict = _app(gateway_settings, auth_failures_per_address="2/minute")
    with strict:
        for _ in range(2):
            r = strict.post("/v1/inbound/jobcenter", content=b"<x/>",
                            headers={"X-API-Key": "cbk_wrong", "Content-Type": "application/xml"})
            assert r.status_code == 401
        r = strict.post("/v1/inbound/jobcenter", content=b"<x/>",
                        headers={"X-API-Key": "cbk_wrong", "Content-Type": "application/xml"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


@pytest.mark.redis
def test_redis_counters_are_shared_by_gateway_processes(
    gateway_settings: Settings, client: TestClient, issue: Issue
) -> None:
    shared = {"rate_limit_storage": "redis://127.0.0.1:6379/0",
              "broker_prefix": f"test-{secrets.token_hex(6)}",
              "auth_failures_per_account": "4/minute"}
    issue("erik.desk", role=Role.CONSENT_DESK, password=PASSWORD)
    first, second = _app(gateway_settings, **shared), _app(gateway_settings, **shared)
    with first, second:
        for app in (first, second, first, second):
            assert app.get("/v1/consents?client_id=C-1",
                           headers=_basic("erik.desk", "wrong" * 4)).status_code == 401
        for app in (first, second):
            assert app.get("/v1/consents?client_id=C-1",
                           headers=_basic("erik.desk", PASSWORD)).status_code == 429


def test_console_sign_in_locks_and_the_dpo_sees_the_lock(
    gateway_settings: Settings, client: TestClient, issue: Issue, tmp_path: Path
) -> None:
    issue("frida.dpo", role=Role.DPO, password=PASSWORD)
    issue("gerd.dpo", role=Role.DPO, password=PASSWORD)
    console = _app(gateway_settings, console_cookie_secure=False,
                   auth_failures_per_account="3/minute")
    with console:
        def attempt(user: str, password: str) -> int:
            form = console.get("/console/login")
            return console.post("/console/login", data={
                "username": user, "password": password, "login_token": login_token(form.text),
                "next": "/console/", "lang": "en"}, follow_redirects=False).status_code

        assert [attempt("frida.dpo", "wrong" * 4) for _ in range(3)] == [401] * 3
        assert attempt("frida.dpo", PASSWORD) == 429
        assert attempt("gerd.dpo", PASSWORD) == 303
        page = console.get("/console/locks")
        assert page.status_code == 200
        assert "frida.dpo" in page.text and "console" in page.text
        csrf_token(page.text)  # a signed-in page
