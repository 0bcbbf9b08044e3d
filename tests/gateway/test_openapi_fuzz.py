"""Drive every operation of the OpenAPI schema with schemathesis, authenticated per role.

Each operation is called with a key of the role it needs (agency, consent desk, DPO, admin) on
a store that holds a consent, a routed referral and a pending outbox item. No answer may be a
5xx, and every answer must match the schema: documented status, content type and body.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.gateway.demo import sample_bytes
from casebridge.gateway.principals import PrincipalKind, Role, issue_key
from casebridge.routing.routes import demo_route_table_text
from casebridge.routing.topology import connect, release
from casebridge.routing.worker import consume_all
from casebridge.settings import Settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
KEYS: dict[str, str] = {}


@pytest.fixture(scope="module")
def gateway_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app for the whole module, with some data behind every kind of endpoint."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    routes = tmp / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    cfg = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'g.db'}", broker_url="memory://",
                   route_table=routes, max_message_bytes=64 * 1024, log_level="error")
    app = create_app(cfg)
    db = get_database(cfg.effective_database_url)
    with db.session() as session:
        for name, kind, role in (
            ("jobcenter-duisburg", PrincipalKind.AGENCY, Role.AGENCY),
            ("suchtberatung-diakonie-du", PrincipalKind.AGENCY, Role.AGENCY),
            ("desk.fuzz", PrincipalKind.USER, Role.CONSENT_DESK),
            ("dpo.fuzz", PrincipalKind.USER, Role.DPO),
            ("admin.fuzz", PrincipalKind.USER, Role.ADMIN),
        ):
            KEYS[name] = issue_key(session, name=name, kind=kind, role=role).secret
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {KEYS['desk.fuzz']}"}
        client.post("/v1/consents", content=sample_bytes("consent-fhir/consent-self-001.json"),
                    headers={**auth, "Content-Type": "application/fhir+json"})
        jc = {"Authorization": f"Bearer {KEYS['jobcenter-duisburg']}"}
        r = client.post("/v1/inbound/jobcenter", headers={**jc, "Content-Type": "application/xml"},
                        content=sample_bytes("jobcenter/zuweisung-001.xml"))
        assert r.status_code == 202
        worker = app.state.routing.worker(["suchtberatung-diakonie-du"])
        consume_all(worker, idle_timeout=0.3)
        worker.close()
        yield app
    connection = connect(app.state.routing.url)
    try:
        app.state.routing.topology.declare(connection)
        app.state.routing.topology.delete(connection)
    finally:
        release(connection)
    reset_databases()


@pytest.fixture(scope="module")
def api_schema(gateway_app: FastAPI):  # type: ignore[no-untyped-def]
    """The gateway's own OpenAPI document, called in-process."""
    return schemathesis.openapi.from_asgi("/openapi.json", gateway_app)


def _principal_for(path: str) -> str | None:
    if path.startswith("/health"):
        return None
    if path == "/metrics":
        return "admin.fuzz"
    if path.startswith("/v1/audit"):
        return "dpo.fuzz"
    if path.startswith(("/v1/consents", "/v1/clients")):
        return "desk.fuzz"
    if path.startswith("/v1/outbox"):
        return "suchtberatung-diakonie-du"
    return "jobcenter-duisburg"


def _call(case) -> None:  # type: ignore[no-untyped-def]
    principal = _principal_for(case.operation.path)
    headers = dict(case.headers or {})
    if principal is not None:
        headers["Authorization"] = f"Bearer {KEYS[principal]}"
    case.headers = headers
    case.call_and_validate(checks=CHECKS)


def test_every_operation_answers_within_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    # schemathesis' own pytest plugin does not support this pytest version, so each operation
    # gets its own hypothesis run here (bounded: 20 examples per operation).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:
        @settings(max_examples=20, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            _call(case)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
