"""Hostile and malformed requests: size limits, content types, every adapter error, fuzzing.

Every answer is a problem document with a 4xx status; nothing yields a 500 or leaks internals.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casebridge.gateway.limits import BodySizeLimit
from casebridge.gateway.principals import Role
from casebridge.settings import Settings
from tests.gateway.conftest import Issue

ADAPTER_CODES = {"parse_error", "schema_violation", "mapping_error", "input_too_large",
                 "adapter_error", "invalid_canonical_data", "invalid_input"}

# (system, agency, content type, body): each is wrong in a different way.
BROKEN = [
    ("jobcenter", "jobcenter-duisburg", "application/xml", b"<jc:Zuweisung"),
    ("jobcenter", "jobcenter-duisburg", "application/xml", b"\xff\xfe<x/>"),
    ("jobcenter", "jobcenter-duisburg", "application/xml",
     b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b"<r>&b;</r>"),
    ("jobcenter", "jobcenter-duisburg", "application/xml",
     b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'),
    ("jobcenter", "jobcenter-duisburg", "application/xml",
     b'<Zuweisung xmlns="urn:de:jobcenter:schnittstelle:zuweisung:2" version="2.3"/>'),
    ("jobcenter", "jobcenter-duisburg", "application/xml", b"<other xmlns='urn:x'/>"),
    ("sozialamt", "sozialamt-duisburg", "application/xml",
     b'<?xml version="1.0" encoding="ISO-8859-1"?><Fallmitteilungen '
     b'xmlns="urn:de:sozialamt:fallmitteilung:1" format="1.4"/>'),
    ("sozialamt", "sozialamt-duisburg", "application/xml", b"not xml at all"),
    ("jugendamt", "jugendamt-duisburg", "application/json", b"{"),
    ("jugendamt", "jugendamt-duisburg", "application/json", b"[]"),
    ("jugendamt", "jugendamt-duisburg", "application/json", b'{"schema": "jugendamt-fallakte/3"}'),
    ("jugendamt", "jugendamt-duisburg", "application/json", b'{"schema": "jugendamt-fallakte/2"}'),
    ("jugendamt", "jugendamt-duisburg", "application/json", b'{"a": 1, "a": 2}'),
    ("provider-fhir", "suchtberatung-diakonie-du", "application/fhir+json", b"{}"),
    ("provider-fhir", "suchtberatung-diakonie-du", "application/fhir+json",
     b'{"resourceType": "Task"}'),
    ("provider-fhir", "suchtberatung-diakonie-du", "application/fhir+json",
     b'{"resourceType": "Patient", "id": "x"}'),
    ("provider-fhir", "suchtberatung-diakonie-du", "application/fhir+xml", b"<Task"),
    ("provider-fhir", "suchtberatung-diakonie-du", "application/fhir+xml",
     b'<Task xmlns="http://hl7.org/fhir"><status value="bogus"/></Task>'),
]


def _is_problem(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["status"] == response.status_code
    assert {"type", "title", "code"} <= set(doc)
    assert "Traceback" not in response.text
    return doc


@pytest.mark.parametrize(("system", "agency", "content_type", "body"), BROKEN)
def test_every_adapter_error_is_a_problem_document(
    client: TestClient, issue: Issue, system: str, agency: str, content_type: str, body: bytes
) -> None:
    r = client.post(f"/v1/inbound/{system}", content=body,
                    headers={**issue(agency).headers, "Content-Type": content_type})
    doc = _is_problem(r, 400, 422)
    assert doc["code"] in ADAPTER_CODES
    assert doc["errors"], "the adapter's problems are listed"
    assert all(set(e) == {"location", "detail"} for e in doc["errors"])
    assert "/etc/passwd" not in r.text or "root:" not in r.text


def test_parse_errors_are_400_and_schema_errors_422(client: TestClient, issue: Issue) -> None:
    jc = {**issue("jobcenter-duisburg").headers, "Content-Type": "application/xml"}
    assert client.post("/v1/inbound/jobcenter", content=b"<a", headers=jc).status_code == 400
    valid_xml = b'<Zuweisung xmlns="urn:de:jobcenter:schnittstelle:zuweisung:2" version="2.3"/>'
    assert client.post("/v1/inbound/jobcenter", content=valid_xml, headers=jc).status_code == 422


def test_wrong_content_type_is_415(client: TestClient, issue: Issue, sample) -> None:
    jc = issue("jobcenter-duisburg").headers
    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        r = client.post("/v1/inbound/jobcenter", content=sample("zuweisung"),
                        headers={**jc, "Content-Type": content_type})
        _is_problem(r, 415)
    r = client.post("/v1/inbound/jobcenter", content=sample("zuweisung"), headers=jc)
    _is_problem(r, 415)
    ja = issue("jugendamt-duisburg").headers
    r = client.post("/v1/inbound/jugendamt", content=sample("fall"),
                    headers={**ja, "Content-Type": "application/xml"})
    _is_problem(r, 415)
    # Parameters (charset) do not matter; the media type does.
    r = client.post("/v1/inbound/jobcenter", content=sample("zuweisung"),
                    headers={**jc, "Content-Type": "application/xml; charset=UTF-8"})
    # accepted as a message (no consent yet, so nothing is sent), not refused as a media type
    assert r.status_code == 422 and r.json()["code"] == "nothing_sent", r.text


def test_unknown_system_and_unknown_agency(client: TestClient, issue: Issue, sample) -> None:
    jc = {**issue("jobcenter-duisburg").headers, "Content-Type": "application/xml"}
    doc = _is_problem(client.post("/v1/inbound/jobcentre", content=b"<x/>", headers=jc), 404)
    assert doc["code"] == "unknown_system" and "jobcenter" in doc["detail"]
    _is_problem(client.post("/v1/inbound/NOT%20A%20SYSTEM", content=b"<x/>", headers=jc), 422)
    # A message to an agency the route table does not know is refused at the door.
    unknown = sample("zuweisung").replace(b'Empfaenger dienststelle="suchtberatung-diakonie-du"',
                                          b'Empfaenger dienststelle="unbekannt-traeger-du"')
    doc = _is_problem(client.post("/v1/inbound/jobcenter", content=unknown, headers=jc), 422)
    assert doc["code"] == "no_route"
    # An agency key whose agency is not in the route table.
    stranger = issue("jobcenter-elsewhere").headers
    own = sample("zuweisung").replace(b'dienststelle="jobcenter-duisburg"',
                                      b'dienststelle="jobcenter-elsewhere"')
    r = client.post("/v1/inbound/jobcenter", content=own,
                    headers={**stranger, "Content-Type": "application/xml"})
    assert _is_problem(r, 422)["code"] == "no_route"


def test_body_over_the_limit_is_413(
    client: TestClient, issue: Issue, gateway_settings: Settings
) -> None:
    jc = {**issue("jobcenter-duisburg").headers, "Content-Type": "application/xml"}
    limit = gateway_settings.max_message_bytes
    doc = _is_problem(client.post("/v1/inbound/jobcenter", content=b"x" * (limit + 1),
                                  headers=jc), 413)
    assert doc["code"] == "input_too_large"

    def chunks():  # no Content-Length: the streaming cap must stop it
        for _ in range(limit // 1000 + 10):
            yield b"x" * 1000

    _is_problem(client.post("/v1/inbound/jobcenter", content=chunks(), headers=jc), 413)
    desk = issue("desk.a", role=Role.CONSENT_DESK).headers
    r = client.post("/v1/consents", content=b" " * (limit + 1),
                    headers={**desk, "Content-Type": "application/fhir+json"})
    _is_problem(r, 413)
    # Exactly at the limit is read (and then refused for what it is, not for its size).
    r = client.post("/v1/inbound/jobcenter", content=b" " * limit, headers=jc)
    assert r.status_code == 400


def test_declared_length_over_the_limit_is_refused_without_reading() -> None:
    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the application was called")

    async def receive():
        raise AssertionError("the body was read")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/inbound/jobcenter",
             "headers": [(b"content-length", b"1000001")]}
    asyncio.run(BodySizeLimit(app, max_bytes=1_000_000)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "input_too_large"


def test_unexpected_errors_are_500_problems_without_internals(
    client: TestClient, issue: Issue, monkeypatch: pytest.MonkeyPatch
) -> None:
    import casebridge.gateway.api.ops as ops

    def boom(*_args: object) -> tuple[bytes, str]:
        raise RuntimeError("secret internal detail /var/lib/x")

    monkeypatch.setattr(ops, "render", boom)
    r = client.get("/metrics", headers=issue("root.a", role=Role.ADMIN).headers)
    doc = _is_problem(r, 500)
    assert doc["code"] == "internal_error"
    assert "secret" not in r.text and "RuntimeError" not in r.text


def test_malformed_json_bodies_are_problems(client: TestClient, issue: Issue) -> None:
    desk = issue("desk.a", role=Role.CONSENT_DESK).headers
    for body in (b"{", b"[]", b'{"system": 1}', b"null"):
        r = client.post("/v1/clients/lookup", content=body,
                        headers={**desk, "Content-Type": "application/json"})
        doc = _is_problem(r, 422)
        assert doc["errors"]


_SAMPLES = [("jobcenter", "jobcenter-duisburg", "zuweisung", "application/xml"),
            ("sozialamt", "sozialamt-duisburg", "fallmitteilung", "application/xml"),
            ("jugendamt", "jugendamt-duisburg", "fall", "application/json"),
            ("provider-fhir", "suchtberatung-diakonie-du", "task_update",
             "application/fhir+json")]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.sampled_from(_SAMPLES), cut=st.integers(min_value=0, max_value=4000),
       junk=st.binary(max_size=64), flip=st.integers(min_value=0, max_value=4000))
def test_mutated_samples_never_give_a_server_error(
    client: TestClient, issue: Issue, sample, which, cut: int, junk: bytes, flip: int
) -> None:
    system, agency, name, content_type = which
    raw = bytearray(sample(name))
    if raw:
        raw[flip % len(raw)] ^= 0x5A
    body = bytes(raw[: cut % (len(raw) + 1)]) + junk
    r = client.post(f"/v1/inbound/{system}", content=body,
                    headers={**issue(agency).headers, "Content-Type": content_type})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        _is_problem(r, r.status_code)
