"""Drive every operation of the OpenAPI schema with schemathesis, authenticated per role.

Each operation is called with a key of every role (agency, consent desk, DPO, admin) on a store
that holds a consent, a routed referral and a pending outbox item, with schema-valid and with
schema-violating data. Every check of schemathesis runs (``--checks all``): no 5xx, documented
status, content type, headers and body, invalid data refused, valid data accepted, the ``Allow``
header of a 405, authentication not ignored. Two exceptions, where the rules are beyond what JSON
Schema can express, so a schema-valid body may rightly be refused (422) and
``positive_data_acceptance`` is not applied: ``POST /v1/consents`` (a FHIR ``Consent`` and its
profile) and ``POST /v1/clients/candidates`` (a name that is only separators after Unicode
normalisation, such as ``", "``).

The CLI does the same against a running server (docs/gateway.md, "Security"):
``st run http://127.0.0.1:8000/openapi.json --checks all -H "Authorization: Bearer <key>"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.gateway.demo import sample_bytes
from casebridge.gateway.principals import PrincipalKind, Role, issue_key
from casebridge.routing.routes import demo_route_table_text
from casebridge.routing.topology import connect, release
from casebridge.routing.worker import consume_all
from casebridge.settings import Settings

KEYS: dict[str, str] = {}
#: Operations whose request bodies have rules beyond JSON Schema (see the module docstring).
SEMANTIC_BODIES = {("POST", "/v1/consents"), ("POST", "/v1/clients/candidates")}
ROLES = ("jobcenter-duisburg", "desk.fuzz", "dpo.fuzz", "admin.fuzz")


@pytest.fixture(scope="module")
def gateway_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app for the whole module, with some data behind every kind of endpoint."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    routes = tmp / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    cfg = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'g.db'}", broker_url="memory://",
                   route_table=routes, max_message_bytes=64 * 1024, log_level="error",
                   # ignored_auth probes every operation with wrong credentials: the lockout
                   # (tested in test_throttle) would rightly answer them 429 after a while
                   auth_failures_per_address="1000000/minute",
                   auth_failures_per_account="1000000/minute")
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


def _call(case, principal: str | None) -> None:  # type: ignore[no-untyped-def]
    generated = {name.lower() for name in case.headers or {}} & {"authorization", "x-api-key"}
    # The key is passed explicitly (not as part of the case), so that the ignored_auth check
    # knows it is valid and probes the operation without it and with a wrong one.
    explicit = ({"Authorization": f"Bearer {KEYS[principal]}"}
                if principal is not None and not generated else None)
    key = (case.operation.method.upper(), case.operation.path)
    case.call_and_validate(
        headers=explicit,
        excluded_checks=[positive_data_acceptance] if key in SEMANTIC_BODIES else None,
    )


def _runs(operation) -> list[tuple[str | None, GenerationMode, int]]:  # type: ignore[no-untyped-def]
    own = _principal_for(operation.path)
    runs = [(own, GenerationMode.POSITIVE, 20), (own, GenerationMode.NEGATIVE, 10)]
    if own is not None:  # every other role: refused, and refused as documented
        runs += [(role, GenerationMode.POSITIVE, 3) for role in ROLES if role != own]
    return runs


def _runner(operation, principal: str | None, mode: GenerationMode, examples: int):  # type: ignore[no-untyped-def]
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        _call(case, principal)

    return run


def test_every_operation_answers_within_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    # schemathesis' own pytest plugin does not support this pytest version, so each operation
    # gets its own hypothesis runs here (bounded: a few dozen examples per operation).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:
        for principal, mode, examples in _runs(operation):
            run = _runner(operation, principal, mode, examples)
            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                failures.append(f"{operation.method.upper()} {operation.path} as {principal} "
                                f"({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
