"""Fixtures of the console tests: the demo data (made once by the real pipeline), a fresh copy
per test, a gateway app on it, and signed-in browsers-in-a-test-client per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.settings import Settings
from tests.console.seed import PASSWORD, Seeded, add_incidents, seed_demo


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The demo scenario plus one statutory transfer, seeded once per test session."""
    seeded = seed_demo(tmp_path_factory.mktemp("console-demo"))
    reset_databases()  # closes SQLite connections so that the files can be copied whole
    return seeded


@pytest.fixture(scope="session")
def incident_data(demo_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The demo data plus a dead letter, a forged sender and a refused message, once."""
    seeded = demo_data.clone(tmp_path_factory.mktemp("console-incidents"))
    add_incidents(seeded)
    reset_databases()
    return seeded


@pytest.fixture
def incidents_client(incident_data: Seeded, tmp_path: Path) -> Iterator[TestClient]:
    """A test client (signed in as the DPO, English) on a copy of the incident data."""
    copy = incident_data.clone(tmp_path / "incidents")
    app = create_app(copy.settings())
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        sign_in(client, "dana-dpo")
        yield client
    reset_databases()


@pytest.fixture
def seeded(demo_data: Seeded, tmp_path: Path) -> Iterator[Seeded]:
    """A private copy of the demo data for one test."""
    copy = demo_data.clone(tmp_path / "data")
    yield copy
    reset_databases()


@pytest.fixture
def console_settings(seeded: Seeded) -> Settings:
    """Gateway settings on the copy (plain-http cookies, as TestClient speaks http)."""
    return seeded.settings()


@pytest.fixture
def app_client(console_settings: Settings) -> Iterator[TestClient]:
    """A test client of a gateway app on the copy, not following redirects."""
    app = create_app(console_settings)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def login_token(html: str) -> str:
    """The login form's CSRF token."""
    found = re.search(r'name="login_token" value="([^"]+)"', html)
    assert found, "no login token in the page"
    return found.group(1)


def csrf_token(html: str) -> str:
    """The session's CSRF token from any signed-in page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, user: str, *, lang: str = "en") -> None:
    """Sign ``user`` in through the login form."""
    form = client.get("/console/login")
    answer = client.post("/console/login", data={
        "username": user, "password": PASSWORD, "login_token": login_token(form.text),
        "next": "/console/", "lang": lang,
    })
    assert answer.status_code == 303, answer.text


SignIn = Callable[..., TestClient]


@pytest.fixture
def signed_in(app_client: TestClient) -> SignIn:
    """``signed_in("dana-dpo")``: the client with that user's session."""

    def make(user: str, *, lang: str = "en") -> TestClient:
        sign_in(app_client, user, lang=lang)
        return app_client

    return make


def audit_count(seeded: Seeded) -> int:
    """Entries in the copy's audit chain."""
    from casebridge.consent.audit import AuditTrail

    return AuditTrail(get_database(seeded.database_url)).count()


@pytest.fixture(scope="session")
def region_data(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A generated region of 12 agencies and 40 routes with traffic on every route."""
    from tests.console.region import seed_region

    seeded = seed_region(tmp_path_factory.mktemp("console-region"))
    reset_databases()
    return seeded
