"""The incidents page: forged senders, messages refused at the door, dead letters; filters."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database, reset_databases
from tests.console.html import links, table, text
from tests.console.seed import FORGED_SENDER, UNKNOWN_RECIPIENT, Seeded


def _rows(client: TestClient, query: str = "") -> list[list[str]]:
    answer = client.get(f"/console/incidents?{query}")
    assert answer.status_code == 200, answer.text
    return [r for r in table(answer.text, "Events")[1:] if r[0].startswith("#")]


def test_every_kind_of_incident_is_listed_with_names_and_reasons(
    incidents_client: TestClient,
) -> None:
    rows = _rows(incidents_client)
    kinds = [r[2] for r in rows]
    # newest first: the refusal, the forgery, the dead letter
    assert kinds == ["refused at the door", "forged sender", "dead letter"]
    refused, forged, dead = rows
    assert refused[4] == "Jobcenter Duisburg jobcenter-duisburg"
    assert UNKNOWN_RECIPIENT in refused[3]
    assert refused[7] == "no route admits this transfer"
    assert forged[3] == f"claimed sender: Sozialamt Duisburg {FORGED_SENDER}"
    assert forged[4] == "Jobcenter Duisburg jobcenter-duisburg"
    assert dead[3] == ("Jobcenter Duisburg jobcenter-duisburg → "
                       "Jugendamt Duisburg jugendamt-duisburg")
    assert dead[6] == "kinderschutz-2026-0002"
    assert dead[7] == "the recipient refused the message"


def test_incidents_filter_by_kind_agency_and_period(incidents_client: TestClient) -> None:
    def kinds(query: str) -> list[str]:
        return [r[2] for r in _rows(incidents_client, query)]

    assert kinds("kind=forged_sender") == ["forged sender"]
    assert kinds("kind=message_refused") == ["refused at the door"]
    assert kinds("kind=dead_letter") == ["dead letter"]
    # the caller of a forgery counts as an agency of it, as does the claimed sender
    assert kinds("agency=jobcenter-duisburg") == [
        "refused at the door", "forged sender", "dead letter"]
    assert kinds(f"agency={FORGED_SENDER}") == ["forged sender"]
    assert kinds("agency=jugendamt-duisburg") == ["dead letter"]
    assert kinds("agency=jugendamt-duisburg&kind=forged_sender") == []
    assert kinds("from=2020-01-01&to=2020-01-31") == []
    bad = incidents_client.get("/console/incidents?kind=decision")
    assert bad.status_code == 422
    assert "Kind: this value is not one of the choices." in text(bad.text)


def test_an_incident_links_to_its_audit_entry(incidents_client: TestClient) -> None:
    answer = incidents_client.get("/console/incidents?kind=forged_sender")
    href = next(h for h in links(answer.text) if h.startswith("/console/audit/"))
    entry = text(incidents_client.get(href).text)
    assert "forged sender (at the gateway)" in entry
    assert "Sozialamt Duisburg" in entry


def test_refusals_at_the_door_are_recorded_as_metadata_only(incident_data: Seeded) -> None:
    entries = [e for e in AuditTrail(get_database(incident_data.database_url)).entries()
               if e.kind in ("message_refused", "forged_sender")]
    refused = next(e for e in entries if e.kind == "message_refused")
    assert refused.details == {
        "caller": "jobcenter-duisburg", "principal": "jobcenter-duisburg", "system": "jobcenter",
        "reason": "no_route", "message_type": "referral", "recipients": UNKNOWN_RECIPIENT}
    assert (refused.sender, refused.stage, refused.outcome) == (
        "jobcenter-duisburg", "gateway", "refused")
    # the referral's person (Ayşe Yılmaz, born 1988-04-12) appears nowhere in the chain
    for e in entries:
        flat = json.dumps(e.as_json(), ensure_ascii=False)
        assert "Yılmaz" not in flat and "1988-04-12" not in flat
    reset_databases()
