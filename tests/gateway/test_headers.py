"""Security headers, the locally served API documentation, and client disconnects in metrics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from casebridge.gateway.app import create_app
from casebridge.gateway.metrics import HTTP_REQUESTS
from casebridge.gateway.principals import Role
from casebridge.settings import Settings
from tests.gateway.conftest import Issue
from tests.gateway.test_audit_api import _traffic


def test_responses_with_personal_data_are_not_cached_and_locked_down(
    client: TestClient, issue: Issue, sample
) -> None:
    client_id = _traffic(client, issue, sample)
    dpo = issue("dpo.hanna", role=Role.DPO).headers
    desk = issue("desk.ida", role=Role.CONSENT_DESK).headers
    for path, headers in ((f"/v1/audit/clients/{client_id}/report.html", dpo),
                          (f"/v1/audit/clients/{client_id}/report", dpo),
                          (f"/v1/clients/{client_id}", desk),
                          (f"/v1/consents?client_id={client_id}", desk),
                          ("/v1/outbox", desk)):  # a 403 problem document, too
        r = client.get(path, headers=headers)
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["content-security-policy"].startswith("default-src 'none'"), path
        assert "strict-transport-security" not in r.headers  # local: no HSTS
    html = client.get(f"/v1/audit/clients/{client_id}/report.html", headers=dpo)
    style = re.search(r"<style>(.*?)</style>", html.text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in html.headers["content-security-policy"]  # the report renders


#: Where a documentation page would load code or styles from if it were not served locally.
CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "cdn.redoc.ly", "fonts.googleapis.com",
             "fonts.gstatic.com", "fastapi.tiangolo.com", "validator.swagger.io")


def _no_cdn(text: str) -> None:
    lowered = text.lower()
    assert not [host for host in CDN_HOSTS if host in lowered]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_come_from_the_installed_packages(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    _no_cdn(r.text)
    assert "<script>" not in r.text and "<style" not in r.text  # nothing inline
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    scripts = re.findall(r'<script src="([^"]+)"', r.text)
    assert scripts and all(s.startswith(("/docs/", "/redoc/")) for s in sources), sources
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        if source.endswith((".js", ".css")) and "swagger-ui-bundle" not in source:
            _no_cdn(asset.text)
    assert client.get("/openapi.json").json()["info"]["title"] == "casebridge gateway"


def test_swagger_ui_starts_from_a_script_without_inline_code_or_validator(
    client: TestClient,
) -> None:
    init = client.get("/docs/swagger-initializer.js")
    assert init.status_code == 200 and "javascript" in init.headers["content-type"]
    assert '"/openapi.json"' in init.text and '"validatorUrl": null' in init.text
    assert client.get("/redoc/logo-mini.svg").status_code == 200  # the bundle's footer logo


def test_production_guards_the_docs_and_sends_hsts(
    gateway_settings: Settings, client: TestClient, issue: Issue
) -> None:
    # model_copy does not validate: production's refusal of SQLite is tested elsewhere.
    production = gateway_settings.model_copy(update={"environment": "production"})
    with TestClient(create_app(production), raise_server_exceptions=False) as prod:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert prod.get(path).status_code == 401, path
        staff = issue("kai.admin", role=Role.ADMIN).headers
        assert prod.get("/docs", headers=staff).status_code == 200
        assert prod.get("/redoc", headers=staff).status_code == 200
        r = prod.get("/openapi.json", headers=staff)
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert prod.get("/health/live").headers["strict-transport-security"]


def _count(route: str, status: str) -> float:
    value = HTTP_REQUESTS.labels("POST", route, status)._value.get()
    return float(value)


def test_a_client_that_goes_away_is_not_a_server_error(
    client: TestClient, issue: Issue
) -> None:
    app = client.app
    key = issue("jobcenter-duisburg").secret
    route = "/v1/inbound/{system}"
    before = (_count(route, "499"), _count(route, "500"), _count("<unmatched>", "500"))
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/inbound/jobcenter", "raw_path": b"/v1/inbound/jobcenter",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80),
             "headers": [(b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/xml"), (b"content-length", b"5000")]}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    assert sent == []  # nobody left to answer
    after = (_count(route, "499"), _count(route, "500"), _count("<unmatched>", "500"))
    assert after[0] == before[0] + 1
    assert after[1:] == before[1:]
