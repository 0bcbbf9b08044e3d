"""Statutory child-protection notifications (rule 8) through the gateway, in native formats.

The job centre's §4 KKG notification travels to the youth office as an override on the one route
that admits its legal basis, with the justification in the youth office's own format, its hash in
the audit chain and the text beside it for the DPO's review. Anything else is refused at the
door with a problem document that says why.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.consent.claims import justification_digest
from casebridge.db import get_database
from casebridge.gateway.console import data as console
from casebridge.gateway.demo import sample_bytes
from casebridge.gateway.intake import Intake
from casebridge.routing.delivery import PushClient
from casebridge.routing.routes import demo_route_table, demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.topology import connect, release
from casebridge.routing.worker import consume_all
from casebridge.settings import Settings
from tests.consent.store_fixtures import pg_schema_url
from tests.gateway.conftest import Issue
from tests.gateway.test_servers import RABBIT, _app, _key

KS = "jobcenter/kinderschutz-001.xml"
XML = {"Content-Type": "application/xml"}
YOUTH_OFFICE = "jugendamt-duisburg"
JUSTIFICATION_START = "Beim Termin am 02.12.2026 war die Kundin deutlich alkoholisiert"


def _ks(**replace: str) -> bytes:
    text = sample_bytes(KS).decode()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text.encode()


def _begruendung() -> str:
    text = sample_bytes(KS).decode()
    start = text.index("<jc:Begruendung>") + len("<jc:Begruendung>")
    return text[start:text.index("</jc:Begruendung>")]


# --- refused at the door ----------------------------------------------------------------------


def _refused(client: TestClient, issue: Issue, raw: bytes) -> dict[str, object]:
    jc = issue("jobcenter-duisburg").headers
    r = client.post("/v1/inbound/jobcenter", content=raw, headers={**jc, **XML})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, object] = r.json()
    return problem


def test_missing_justification_is_refused(client: TestClient, issue: Issue) -> None:
    raw = _ks(**{f"<jc:Begruendung>{_begruendung()}</jc:Begruendung>": ""})
    problem = _refused(client, issue, raw)
    assert problem["code"] == "mapping_error"
    assert "needs a written justification" in json.dumps(problem)
    assert JUSTIFICATION_START not in json.dumps(problem)


def test_unknown_legal_basis_is_refused(client: TestClient, issue: Issue) -> None:
    problem = _refused(client, issue, _ks(**{'schluessel="kkg-4"': 'schluessel="bgb-1666"'}))
    assert problem["code"] == "statutory_not_admitted"
    assert "legal basis 'bgb-1666' is not admitted on the route to jugendamt-duisburg" in (
        str(problem["detail"]))


def test_betrifft_pointing_nowhere_is_refused(client: TestClient, issue: Issue) -> None:
    problem = _refused(client, issue, _ks(**{'betrifft="1"': 'betrifft="3"'}))
    assert problem["code"] == "mapping_error"
    assert "names member 3, but the Bedarfsgemeinschaft has 1" in json.dumps(problem)


def test_ks_to_an_agency_without_a_child_protection_route_is_refused(
    client: TestClient, issue: Issue
) -> None:
    raw = _ks(**{'<jc:Empfaenger dienststelle="jugendamt-duisburg"/>':
                 '<jc:Empfaenger dienststelle="sozialamt-duisburg"/>'})
    assert _refused(client, issue, raw)["code"] == "no_route"


def test_ks_on_a_route_without_statutory_bases_is_refused(
    tmp_path: Path, gateway_settings: Settings, issue: Issue, client: TestClient
) -> None:
    # A region that lets the job centre send child-protection messages to providers, but admits
    # no legal basis for them there: the notification may not pass without consent.
    table = yaml.safe_load(demo_route_table_text())
    table["routes"].insert(0, {"sender": "jobcenter", "purposes": ["child_protection"],
                               "recipients": ["provider"]})
    routes = tmp_path / "routes-without-bases.yaml"
    routes.write_text(yaml.safe_dump(table), encoding="utf-8")
    from casebridge.gateway.app import create_app

    settings = gateway_settings.model_copy(update={"route_table": routes})
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        raw = _ks(**{'<jc:Empfaenger dienststelle="jugendamt-duisburg"/>':
                     '<jc:Empfaenger dienststelle="suchtberatung-diakonie-du"/>'})
        problem = _refused(other, issue, raw)
    assert problem["code"] == "statutory_not_admitted"
    assert "admits no transfer without consent" in str(problem["detail"])


# --- end to end on PostgreSQL and RabbitMQ ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_job_centre_notification_reaches_the_youth_office_for_dpo_review(
    tmp_path: Path, pg_url: str
) -> None:
    client = _app(tmp_path, pg_url, RABBIT)
    app = client.app
    pushed: list[httpx.Request] = []

    def youth_office(request: httpx.Request) -> httpx.Response:
        pushed.append(request)
        return httpx.Response(202)

    routing = Routing(
        routes=demo_route_table({YOUTH_OFFICE: "http://jugendamt.test/inbox"}),
        db=get_database(pg_url), url=RABBIT, prefix=f"cbt-{secrets.token_hex(4)}")
    app.state.routing = routing  # type: ignore[attr-defined]
    app.state.intake = Intake(  # type: ignore[attr-defined]
        routing.db, routing, max_bytes=app.state.settings.max_message_bytes)  # type: ignore[attr-defined]
    try:
        _, jc = _key(pg_url, "jobcenter-duisburg")
        # No consent of anybody is on record: the notification passes under its legal basis.
        r = client.post("/v1/inbound/jobcenter", content=sample_bytes(KS), headers={**jc, **XML})
        assert r.status_code == 202, r.text
        [recipient] = r.json()["messages"][0]["recipients"]
        assert (recipient["recipient"], recipient["outcome"], recipient["queued"]) == (
            YOUTH_OFFICE, "override", True)

        push = PushClient(transport=httpx.MockTransport(youth_office), sleep=lambda _s: None)
        worker = routing.worker([YOUTH_OFFICE], push=push)
        try:
            consume_all(worker, idle_timeout=1.0)
        finally:
            worker.close()
        [request] = pushed
        doc = json.loads(request.content)
        assert doc["zweck"] == "kinderschutz"
        assert doc["rechtsgrundlage"] == {"code": "kkg-4", "begruendung": _begruendung()}
        assert doc["fall"]["kind"] == {"vorname": "Emre", "nachname": "Yılmaz",
                                       "geburtsdatum": "2012-02-03"}
        assert [g["rolle"] for g in doc["fall"]["sorgeberechtigte"]] == ["Mutter"]
        assert doc["fall"]["kinderschutz"]["hinweise"][0]["text"].startswith(
            "Sohn versorgt sich")

        db = get_database(pg_url)
        decisions = [e for e in AuditTrail(db).entries() if e.kind == "decision"]
        assert [(e.stage, e.outcome, e.legal_basis) for e in decisions] == [
            ("inbound", "override", "kkg-4"), ("delivery", "override", "kkg-4")]
        digest = justification_digest(_begruendung())
        assert all(e.details["justification_sha256"] == digest for e in decisions)
        assert all(e.review_required for e in decisions)
        # The DPO console lists the transfer for review, with the justification it relied on.
        [override] = console.overrides(db)
        assert override.claim is not None and override.review is None
        assert override.claim.justification == _begruendung()
        assert override.claim.justification_sha256 == digest
    finally:
        app.state.intake.close()  # type: ignore[attr-defined]
        connection = connect(RABBIT)
        try:
            routing.topology.delete(connection)
        finally:
            release(connection)
        routing.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private PostgreSQL schema for this test."""
    yield from pg_schema_url()
