"""Login, sessions, cookies, CSRF and roles of the console."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from casebridge.db import get_database
from casebridge.gateway.app import create_app
from casebridge.gateway.console.store import ConsoleSessionRow
from casebridge.gateway.principals import set_disabled
from tests.console.conftest import SignIn, audit_count, csrf_token, login_token
from tests.console.html import text
from tests.console.seed import PASSWORD, Seeded

DPO_PAGES = ["/console/flows", "/console/flows/edge?sender=a-b-c&recipient=d-e-f",
             "/console/withheld", "/console/overrides", "/console/audit/1",
             "/console/report", "/console/consents", "/console/integrity"]
DPO_FORMS = ["/console/overrides/15/review", "/console/integrity/verify"]


def test_pages_need_a_login(app_client: TestClient) -> None:
    for path in [*DPO_PAGES, "/console/ops", "/console/"]:
        answer = app_client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=")


def test_a_wrong_password_is_refused(app_client: TestClient) -> None:
    form = app_client.get("/console/login")
    answer = app_client.post("/console/login", data={
        "username": "dana-dpo", "password": "not the password", "next": "/console/",
        "login_token": login_token(form.text), "lang": "en",
    })
    assert answer.status_code == 401
    assert "The user name or password is wrong." in text(answer.text)
    assert app_client.get("/console/flows").status_code == 303


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_login_without_the_form_token_is_refused(app_client: TestClient, token: str | None
                                                 ) -> None:
    app_client.get("/console/login")  # sets the login cookie
    data = {"username": "dana-dpo", "password": PASSWORD, "next": "/console/", "lang": "en"}
    if token is not None:
        data["login_token"] = token
    answer = app_client.post("/console/login", data=data)
    assert answer.status_code == 403
    assert "expired" in text(answer.text)
    assert app_client.get("/console/flows").status_code == 303


def test_session_cookie_flags_secure_by_default(seeded: Seeded) -> None:
    app = create_app(seeded.settings(console_cookie_secure=True))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        form = client.get("/console/login")
        login_cookie = form.headers["set-cookie"]
        assert login_cookie.startswith("__Host-casebridge-console-login=")
        answer = client.post("/console/login", data={
            "username": "dana-dpo", "password": PASSWORD, "next": "/console/flows",
            "login_token": login_token(form.text), "lang": "de",
        })
        assert answer.status_code == 303
        cookies = answer.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("__Host-casebridge-console="))
        flags = {f.strip().lower() for f in session.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
        assert client.get("/console/flows").status_code == 200


def test_local_http_cookies_are_not_secure_when_configured(app_client: TestClient) -> None:
    form = app_client.get("/console/login")
    answer = app_client.post("/console/login", data={
        "username": "dana-dpo", "password": PASSWORD, "next": "/console/",
        "login_token": login_token(form.text), "lang": "en"})
    session = next(c for c in answer.headers.get_list("set-cookie")
                   if c.startswith("casebridge-console="))
    flags = {f.strip().lower() for f in session.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags


def test_open_redirects_are_refused(app_client: TestClient) -> None:
    form = app_client.get("/console/login")
    answer = app_client.post("/console/login", data={
        "username": "dana-dpo", "password": PASSWORD, "next": "https://evil.example/",
        "login_token": login_token(form.text), "lang": "en"})
    assert answer.headers["location"] == "/console/"


def test_consent_desk_is_refused_every_page_and_form(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("desk-clerk")
    # the consent desk finds persons and produces their reports (tests/console/
    # test_access_report.py); every other page is refused
    assert client.get("/console/").headers["location"] == "/console/persons"
    for path in [*(p for p in DPO_PAGES if p != "/console/report"), "/console/ops"]:
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "Access denied" in text(answer.text)
    before = audit_count(seeded)
    token = csrf_token(client.get("/console/flows").text)
    for path in DPO_FORMS:
        assert client.post(path, data={"csrf_token": token, "comment": "x"}).status_code == 403
    assert audit_count(seeded) == before


def test_admin_sees_only_the_operations_view(signed_in: SignIn) -> None:
    client = signed_in("adam-admin")
    assert client.get("/console/").headers["location"] == "/console/ops"
    assert client.get("/console/ops").status_code == 200
    for path in DPO_PAGES:
        assert client.get(path).status_code == 403, path
    nav = client.get("/console/ops").text
    assert "/console/flows" not in nav


def test_dpo_is_refused_the_operations_view(signed_in: SignIn) -> None:
    assert signed_in("dana-dpo").get("/console/ops").status_code == 403


@pytest.mark.parametrize("token", [None, "wrong"])
def test_forms_without_the_session_token_are_refused(
    signed_in: SignIn, seeded: Seeded, token: str | None
) -> None:
    client = signed_in("dana-dpo")
    before = audit_count(seeded)
    for path in [*DPO_FORMS, "/console/logout"]:
        data = {"comment": "reviewed"}
        if token is not None:
            data["csrf_token"] = token
        answer = client.post(path, data=data)
        assert answer.status_code == 403, path
        assert "CSRF" in text(answer.text)
    assert audit_count(seeded) == before
    assert client.get("/console/flows").status_code == 200  # still signed in


def test_logout_ends_the_session_server_side(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    stolen = dict(client.cookies)
    token = csrf_token(client.get("/console/flows").text)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/console/flows").status_code == 303
    client.cookies.update(stolen)  # the old cookie is worthless now
    assert client.get("/console/flows").status_code == 303
    with get_database(seeded.database_url).session() as session:
        assert session.scalars(select(ConsoleSessionRow)).all() == []


def test_disabling_a_principal_ends_their_session_at_once(
    signed_in: SignIn, seeded: Seeded
) -> None:
    client = signed_in("dana-dpo")
    assert client.get("/console/flows").status_code == 200
    with get_database(seeded.database_url).session() as session:
        set_disabled(session, name="dana-dpo", disabled=True)
    assert client.get("/console/flows").status_code == 303


def test_console_pages_carry_security_headers(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/flows")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "<script" not in answer.text


def test_the_api_keeps_its_problem_documents(app_client: TestClient) -> None:
    answer = app_client.get("/v1/no-such-thing")
    assert answer.headers["content-type"].startswith("application/problem+json")
    answer = app_client.get("/v1/audit/entries")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_console_routes_are_not_in_the_openapi_schema(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


def test_unknown_console_paths_get_an_html_page(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")
    missing = client.get("/console/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no such page." in text(missing.text)  # in the session's language
    assert "Sign out" in text(missing.text)
    wrong_method = client.get("/console/logout")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("text/html")
