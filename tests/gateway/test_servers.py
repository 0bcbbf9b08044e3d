"""The gateway on the real servers: PostgreSQL (store, audit, keys) and RabbitMQ (confirms)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database
from casebridge.gateway.app import create_app
from casebridge.gateway.demo import sample_bytes
from casebridge.gateway.intake import Intake
from casebridge.gateway.principals import PrincipalKind, Role, issue_key, revoke_key
from casebridge.routing.routes import demo_route_table, demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.topology import connect, release
from casebridge.settings import Settings
from tests.consent.store_fixtures import pg_schema_url

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private PostgreSQL schema for this test."""
    yield from pg_schema_url()


def _app(tmp_path: Path, database_url: str, broker_url: str) -> TestClient:
    routes = tmp_path / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    cfg = Settings(data_dir=tmp_path, database_url=database_url, broker_url=broker_url,
                   route_table=routes, log_level="error")
    return TestClient(create_app(cfg), raise_server_exceptions=False)


def _key(url: str, name: str, role: Role = Role.AGENCY) -> tuple[str, dict[str, str]]:
    kind = PrincipalKind.AGENCY if role is Role.AGENCY else PrincipalKind.USER
    with get_database(url).session() as session:
        issued = issue_key(session, name=name, kind=kind, role=role)
    return issued.key_id, {"Authorization": f"Bearer {issued.secret}"}


@pytest.mark.postgres
def test_auth_rotation_idempotency_and_forgery_on_postgres(tmp_path: Path, pg_url: str) -> None:
    client = _app(tmp_path, pg_url, "memory://")
    key_id, jc = _key(pg_url, "jobcenter-duisburg")
    _, spare = _key(pg_url, "jobcenter-duisburg")
    _, desk = _key(pg_url, "desk.pg", Role.CONSENT_DESK)
    _, dpo = _key(pg_url, "dpo.pg", Role.DPO)
    r = client.post("/v1/consents", content=sample_bytes("consent-fhir/consent-self-001.json"),
                    headers={**desk, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    xml = {"Content-Type": "application/xml"}
    body = sample_bytes("jobcenter/zuweisung-001.xml")
    first = client.post("/v1/inbound/jobcenter", content=body, headers={**jc, **xml})
    assert first.status_code == 202, first.text
    assert first.json()["messages"][0]["recipients"][0]["outcome"] == "partial"
    again = client.post("/v1/inbound/jobcenter", content=body, headers={**jc, **xml})
    assert again.status_code == 200 and again.json()["messages"][0]["replayed"] is True

    forged = client.post("/v1/inbound/sozialamt", headers={**jc, **xml},
                         content=sample_bytes("sozialamt/fallmitteilung-001.xml"))
    assert forged.status_code == 403
    trail = AuditTrail(get_database(pg_url))
    assert [e.sender for e in trail.entries() if e.kind == "forged_sender"] == [
        "sozialamt-duisburg"]
    assert client.get("/v1/audit/verify", headers=dpo).json()["ok"] is True

    with get_database(pg_url).session() as session:
        revoke_key(session, key_id=key_id)
    assert client.get("/v1/outbox", headers=jc).status_code == 401
    assert client.get("/v1/outbox", headers=spare).status_code == 200


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_inbound_answers_after_rabbitmq_confirmed(tmp_path: Path, pg_url: str) -> None:
    client = _app(tmp_path, pg_url, RABBIT)
    app = client.app
    # A queue prefix of this test's own, so parallel runs never share a queue.
    routing = Routing(routes=demo_route_table(), db=get_database(pg_url), url=RABBIT,
                      prefix=f"cbt-{secrets.token_hex(4)}")
    app.state.routing = routing
    app.state.intake = Intake(routing.db, routing, max_bytes=app.state.settings.max_message_bytes)
    try:
        _, desk = _key(pg_url, "desk.pg", Role.CONSENT_DESK)
        _, jc = _key(pg_url, "jobcenter-duisburg")
        client.post("/v1/consents", content=sample_bytes("consent-fhir/consent-self-001.json"),
                    headers={**desk, "Content-Type": "application/fhir+json"})
        r = client.post("/v1/inbound/jobcenter",
                        content=sample_bytes("jobcenter/zuweisung-001.xml"),
                        headers={**jc, "Content-Type": "application/xml"})
        assert r.status_code == 202, r.text
        assert r.json()["messages"][0]["recipients"][0]["queued"] is True
        # The broker holds it: exactly one message waits in the provider's durable queue.
        connection = connect(RABBIT)
        try:
            queue = routing.topology.queue("suchtberatung-diakonie-du")
            _, count, _ = queue.bind(connection.default_channel).queue_declare(passive=True)
            assert count == 1
        finally:
            release(connection)
        assert client.get("/health/ready").json()["checks"] == {"database": "ok", "broker": "ok"}
    finally:
        app.state.intake.close()
        connection = connect(RABBIT)
        try:
            routing.topology.delete(connection)
        finally:
            release(connection)
        routing.close()


@pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres),
                                   "sqlite"])
def test_concurrent_posts_of_one_message_are_routed_once(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from casebridge.errors import ConflictError
    from casebridge.gateway.principals import Principal

    db_url = (request.getfixturevalue("pg_url") if store == "postgres"
              else f"sqlite:///{tmp_path / 'casebridge.db'}")
    client = _app(tmp_path, db_url, "memory://")
    intake = client.app.state.intake
    _, desk = _key(db_url, "desk.pg", Role.CONSENT_DESK)
    client.post("/v1/consents", content=sample_bytes("consent-fhir/consent-self-001.json"),
                headers={**desk, "Content-Type": "application/fhir+json"})
    caller = Principal("jobcenter-duisburg", PrincipalKind.AGENCY, Role.AGENCY,
                       "jobcenter-duisburg", "api_key")
    body = sample_bytes("jobcenter/zuweisung-001.xml")

    def post(_: int) -> str:
        try:
            [outcome] = intake.submit(body, system="jobcenter", caller=caller)
        except ConflictError:
            return "in_progress"
        return "replayed" if outcome.replayed else "routed"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(post, range(6)))
    assert results.count("routed") == 1, results
    decisions = [e for e in AuditTrail(get_database(db_url)).entries() if e.kind == "decision"]
    assert len(decisions) == 1


@pytest.mark.postgres
def test_dropped_database_connections_give_503_then_recover(tmp_path: Path, pg_url: str) -> None:
    """Without a ping before each checkout, a connection the server dropped fails once: the
    caller gets a 503 problem (retry), never a 500, and the next request works again."""
    from sqlalchemy import create_engine, text

    client = _app(tmp_path, pg_url, "memory://")
    _, desk = _key(pg_url, "desk.drop", Role.CONSENT_DESK)
    assert client.get("/v1/consents?client_id=nobody", headers=desk).status_code == 200
    engine = get_database(pg_url).engine
    with engine.connect() as a, engine.connect() as b:  # the pool's connections, both idle after
        pids = {c.execute(text("SELECT pg_backend_pid()")).scalar() for c in (a, b)}
    admin = create_engine(pg_url.split("?")[0], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()
    statuses = [client.get("/v1/consents?client_id=nobody", headers=desk).status_code
                for _ in range(3)]
    assert set(statuses) <= {200, 503} and statuses[-1] == 200, statuses
