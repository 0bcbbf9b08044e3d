"""A crashed request never locks its message id; broker outages at the gateway are reported right.

On PostgreSQL and RabbitMQ. The decision, its audit entries, the claim with the answer and the
released messages are one transaction (the outbox); these tests cut the request right after it
(as a process killed there would) and stop a private broker (port 5676) and a private PostgreSQL
(port 5436) to check the answers, the readiness report and the pool's recovery.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.relay import Relay, RelaySweeper, pending_publications
from casebridge.routing.topology import connect, release
from tests.gateway.test_servers import _app, _key, pg_url  # noqa: F401 - fixture
from tests.private_pg import PrivatePostgres
from tests.private_rabbit import PrivateRabbit
from tests.routing.test_rabbitmq_faults import vhost  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]
XML = {"Content-Type": "application/xml"}
BODY = "jobcenter/zuweisung-001.xml"


class Crash(Exception):
    """The process 'dies' right after the decision's transaction committed."""


def _setup(client: TestClient, db_url: str) -> dict[str, str]:
    _, desk = _key(db_url, "desk.o", role=_desk_role())
    r = client.post("/v1/consents", content=sample_bytes("consent-fhir/consent-self-001.json"),
                    headers={**desk, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    return _key(db_url, "jobcenter-duisburg")[1]


def _desk_role():  # type: ignore[no-untyped-def]
    from casebridge.gateway.principals import Role

    return Role.CONSENT_DESK


def _decisions(db_url: str) -> int:
    return sum(e.kind == "decision" for e in AuditTrail(get_database(db_url)).entries())


def _queued(client: TestClient, agency: str) -> int:
    routing = client.app.state.routing  # type: ignore[attr-defined]
    conn = connect(routing.url)
    try:
        queue = routing.topology.queue(agency)(conn.default_channel)
        return int(queue.queue_declare().message_count)
    finally:
        release(conn)


def test_repost_after_a_crash_between_decision_and_publish_resolves_at_once(
    tmp_path: Path, pg_url: str, vhost: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    client = _app(tmp_path, pg_url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    jc = _setup(client, pg_url)

    def crash(self: Relay, sender: str, message_id: str, **_publish: object) -> int:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(Relay, "publish_message", crash)
        first = client.post("/v1/inbound/jobcenter", content=sample_bytes(BODY),
                            headers={**jc, **XML})
    assert first.status_code == 500  # the client learnt nothing
    decided = _decisions(pg_url)
    assert decided >= 1
    db = get_database(pg_url)
    assert pending_publications(db)["pending"] == 1
    with db.connection() as conn:
        assert conn.execute(text("SELECT state FROM gateway_inbound")).scalar_one() == "decided"
    again = client.post("/v1/inbound/jobcenter", content=sample_bytes(BODY), headers={**jc, **XML})
    assert again.status_code == 200, again.text  # at once: no 409, no second decision
    message = again.json()["messages"][0]
    assert message["replayed"] is True and message["recipients"][0]["queued"] is True
    assert _decisions(pg_url) == decided
    assert pending_publications(db)["pending"] == 0
    assert _queued(client, "suchtberatung-diakonie-du") == 1
    third = client.post("/v1/inbound/jobcenter", content=sample_bytes(BODY), headers={**jc, **XML})
    assert third.status_code == 200 and _queued(client, "suchtberatung-diakonie-du") == 1
    assert AuditTrail(db).verify().ok


def test_the_sweeper_publishes_what_a_dead_request_left_once(
    tmp_path: Path, pg_url: str, vhost: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    client = _app(tmp_path, pg_url, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    jc = _setup(client, pg_url)
    with monkeypatch.context() as patch:
        patch.setattr(Relay, "publish_message", lambda *a, **k: (_ for _ in ()).throw(Crash()))
        assert client.post("/v1/inbound/jobcenter", content=sample_bytes(BODY),
                           headers={**jc, **XML}).status_code == 500
    routing = client.app.state.routing  # type: ignore[attr-defined]
    sweeper = RelaySweeper(routing.db, routing.publisher, older_than=timedelta(hours=1))
    assert sweeper.sweep() == 0  # young rows belong to a request that may still publish them
    sweeper = RelaySweeper(routing.db, routing.publisher, older_than=timedelta(0))
    assert sweeper.sweep() == 1
    assert sweeper.sweep() == 0
    assert _queued(client, "suchtberatung-diakonie-du") == 1
    again = client.post("/v1/inbound/jobcenter", content=sample_bytes(BODY), headers={**jc, **XML})
    assert again.status_code == 200 and again.json()["messages"][0]["replayed"] is True
    assert _queued(client, "suchtberatung-diakonie-du") == 1


@pytest.fixture
def private_servers() -> Iterator[tuple[PrivatePostgres, PrivateRabbit]]:
    pg = PrivatePostgres(5436)
    try:
        rabbit = PrivateRabbit(5676, 25676)
        try:
            yield pg, rabbit
        finally:
            rabbit.close()
    finally:
        pg.close()


@pytest.mark.slow
def test_broker_down_after_a_database_restart_is_503_broker_and_recovers(
    tmp_path: Path, private_servers: tuple[PrivatePostgres, PrivateRabbit],
) -> None:
    pg, rabbit = private_servers
    client = _app(tmp_path, pg.url, rabbit.url)
    jc = _setup(client, pg.url)
    bodies = [sample_bytes(BODY).replace(b"JC-DU-2026-000123", f"JC-DU-2026-9{i:05d}".encode())
              for i in range(3)]
    assert client.post("/v1/inbound/jobcenter", content=bodies[0],
                       headers={**jc, **XML}).status_code == 202
    pg.stop()
    pg.start()  # every pooled connection is now stale
    rabbit.stop()
    down = client.post("/v1/inbound/jobcenter", content=bodies[1], headers={**jc, **XML})
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "broker_unavailable"
    assert down.json()["type"].endswith("broker-unavailable")
    assert down.headers["Retry-After"]
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "broker": "fail"}
    rabbit.start()
    back = client.post("/v1/inbound/jobcenter", content=bodies[1], headers={**jc, **XML})
    assert back.status_code in (200, 202), back.text
    assert back.json()["messages"][0]["recipients"][0]["queued"] is True
    third = client.post("/v1/inbound/jobcenter", content=bodies[2], headers={**jc, **XML})
    assert third.status_code == 202, third.text
    assert client.get("/health/ready").status_code == 200
    # each message decided once, whatever the outage did to the first attempt
    entries = AuditTrail(get_database(pg.url)).entries()
    per_message: dict[str | None, int] = {}
    for e in entries:
        if e.kind == "decision":
            per_message[e.message_id] = per_message.get(e.message_id, 0) + 1
    assert len(per_message) == 3 and len(set(per_message.values())) == 1
    assert pending_publications(get_database(pg.url))["pending"] == 0
