"""Consent and client endpoints: roles, recording, withdrawal at once, audit events, links."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database
from casebridge.gateway.principals import Role
from casebridge.settings import Settings
from tests.gateway.conftest import Issue

FHIR = {"Content-Type": "application/fhir+json"}


def _record(client: TestClient, headers: dict[str, str], raw: bytes) -> dict:
    r = client.post("/v1/consents", content=raw, headers={**headers, **FHIR})
    assert r.status_code == 201, r.text
    return r.json()


def test_only_consent_desk_and_admin_may_record(
    client: TestClient, issue: Issue, sample
) -> None:
    raw = sample("consent_self")
    for name, role in (("jobcenter-duisburg", Role.AGENCY), ("dpo.anna", Role.DPO)):
        r = client.post("/v1/consents", content=raw, headers={**issue(name, role=role).headers,
                                                               **FHIR})
        assert r.status_code == 403, name
    assert client.post("/v1/consents", content=raw, headers=FHIR).status_code == 401
    admin = issue("ops.admin", role=Role.ADMIN)
    assert _record(client, admin.headers, raw)["recorded"][0]["created"] is True


def test_record_list_show_withdraw(
    client: TestClient, issue: Issue, sample, gateway_settings: Settings
) -> None:
    desk = issue("desk.jc", role=Role.CONSENT_DESK).headers
    result = _record(client, desk, sample("consent_self"))["recorded"][0]
    consent_id, client_id = result["consent_id"], result["client_id"]
    # Recording the same file again changes nothing.
    again = _record(client, desk, sample("consent_self"))["recorded"][0]
    assert again == {**result, "created": False}

    listed = client.get("/v1/consents", params={"client_id": client_id}, headers=desk).json()
    assert [c["consent_id"] for c in listed] == [consent_id]
    assert listed[0]["withdrawn_at"] is None

    r = client.post(f"/v1/consents/{consent_id}/withdraw", headers=desk)
    assert r.status_code == 200, r.text
    assert r.json()["by"] == "desk.jc"
    shown = client.get(f"/v1/consents/{consent_id}", headers=desk).json()
    assert shown["state"] == "withdrawn"
    assert [h["event"] for h in shown["history"]] == ["given", "recorded", "withdrawn"]
    # A second withdrawal is a conflict, an unknown consent a 404.
    assert client.post(f"/v1/consents/{consent_id}/withdraw", headers=desk).status_code == 409
    assert client.post("/v1/consents/nope/withdraw", headers=desk).status_code == 404
    fhir = client.get(f"/v1/consents/{consent_id}/fhir", headers=desk)
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert json.loads(fhir.content)["status"] == "inactive"

    trail = AuditTrail(get_database(gateway_settings.effective_database_url))
    kinds = [(e.kind, e.consents, e.client_id) for e in trail.entries()]
    assert ("consent_recorded", [consent_id], client_id) in kinds
    assert ("consent_withdrawn", [consent_id], client_id) in kinds
    assert trail.verify().ok


def test_invalid_consent_file_is_a_problem_listing_errors(client: TestClient, issue: Issue) -> None:
    desk = issue("desk.jc", role=Role.CONSENT_DESK).headers
    bad = json.dumps({"resourceType": "Consent", "id": "x", "status": "active"}).encode()
    r = client.post("/v1/consents", content=bad, headers={**desk, **FHIR})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "consent_import_rejected"
    assert r.json()["errors"] and all({"location", "detail"} <= set(e) for e in r.json()["errors"])
    r = client.post("/v1/consents", content=b"{not json", headers={**desk, **FHIR})
    assert r.status_code in (400, 422) and r.json()["status"] == r.status_code
    r = client.post("/v1/consents", content=b"<Consent/>", headers={**desk,
                                                                   "Content-Type": "text/xml"})
    assert r.status_code == 415


def test_clients_show_lookup_link_candidates(client: TestClient, issue: Issue, sample) -> None:
    desk = issue("desk.jc", role=Role.CONSENT_DESK).headers
    client_id = _record(client, desk, sample("consent_self"))["recorded"][0]["client_id"]
    shown = client.get(f"/v1/clients/{client_id}", headers=desk).json()
    systems = {i["system"] for i in shown["identifiers"]}
    assert "urn:casebridge:id:jobcenter-duisburg:kundennummer" in systems

    found = client.post("/v1/clients/lookup", headers=desk, json={
        "system": "urn:casebridge:id:jobcenter-duisburg:kundennummer", "value": "962D123456"})
    assert found.status_code == 200 and found.json()["client_id"] == client_id
    missing = client.post("/v1/clients/lookup", headers=desk, json={
        "system": "urn:casebridge:id:jobcenter-duisburg:kundennummer", "value": "nope"})
    assert missing.status_code == 404

    new = {"system": "urn:casebridge:id:jugendamt-duisburg:fallnummer", "value": "FN-1"}
    r = client.post(f"/v1/clients/{client_id}/identifiers", headers=desk, json=new)
    assert r.status_code == 201 and r.json()["linked"] is True
    r = client.post(f"/v1/clients/{client_id}/identifiers", headers=desk, json=new)
    assert r.status_code == 200 and r.json()["linked"] is False
    r = client.post("/v1/clients/c-unknown/identifiers", headers=desk, json=new)
    assert r.status_code == 404
    r = client.post(f"/v1/clients/{client_id}/identifiers", headers=desk,
                    json={"system": "not a uri", "value": "x"})
    assert r.status_code == 422

    cands = client.post("/v1/clients/candidates", headers=desk,
                        json={"name": "Yilmaz, Ayse", "birth_date": "1988-04-12"})
    assert cands.status_code == 200
    assert [c["client_id"] for c in cands.json()] == [client_id]
    agency = issue("jobcenter-duisburg").headers
    assert client.get(f"/v1/clients/{client_id}", headers=agency).status_code == 403
