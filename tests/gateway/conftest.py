"""Fixtures of the gateway tests: an app on a temporary SQLite store and kombu's memory broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.gateway.principals import PrincipalKind, Role, issue_key, set_password
from casebridge.routing.routes import demo_route_table_text
from casebridge.routing.topology import connect, release
from casebridge.settings import Settings


@pytest.fixture
def gateway_settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite file, the in-memory broker and the pilot route table."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    return Settings(
        route_table=routes,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        broker_url="memory://",
        max_message_bytes=64 * 1024,
        log_format="json",
        log_level="warning",
    )


@pytest.fixture
def client(gateway_settings: Settings) -> Iterator[TestClient]:
    """A test client of a fresh gateway app (errors answered as the server would)."""
    app = create_app(gateway_settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    routing = app.state.routing
    if routing is not None:
        # kombu's memory transport is process-wide: leave no queued message to the next test.
        connection = connect(routing.url)
        try:
            routing.topology.declare(connection)
            routing.topology.delete(connection)
        finally:
            release(connection)
    reset_databases()


@dataclass(frozen=True)
class Caller:
    """An issued key and the headers that present it."""

    key_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <key>``."""
        return {"Authorization": f"Bearer {self.secret}"}


Issue = Callable[..., Caller]


@pytest.fixture
def issue(gateway_settings: Settings, client: TestClient) -> Issue:
    """Issue a key: ``issue("jobcenter-duisburg")`` or ``issue("anna", role=Role.DPO)``;
    returns the :class:`Caller`."""
    db = get_database(gateway_settings.effective_database_url)

    def make(name: str, *, role: Role = Role.AGENCY, password: str | None = None) -> Caller:
        kind = PrincipalKind.AGENCY if role is Role.AGENCY else PrincipalKind.USER
        with db.session() as session:
            issued = issue_key(session, name=name, kind=kind, role=role)
            if password is not None:
                set_password(session, name=name, password=password)
        return Caller(issued.key_id, issued.secret)

    return make
