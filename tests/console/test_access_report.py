"""Issue 17 items 1-3 on the demo data (seeded by the real pipeline): one access report for the
command line, the API and the console; the mother in the youth office's file; finding a person
by Kundennummer or by name; the consent desk confirming a link and printing the report."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from casebridge.consent.access import access_report
from casebridge.consent.audit import AuditTrail
from casebridge.consent.subjects import SubjectIndex
from casebridge.db import get_database
from casebridge.gateway.principals import PrincipalKind, Role, issue_key
from casebridge.settings import get_settings
from tests.console.conftest import SignIn, csrf_token
from tests.console.html import page, text
from tests.console.seed import Seeded

KUNDENNUMMER = "urn:casebridge:id:jobcenter-duisburg:kundennummer"


def _api_key(seeded: Seeded, role: Role, name: str) -> dict[str, str]:
    kind = PrincipalKind.AGENCY if role is Role.AGENCY else PrincipalKind.USER
    with get_database(seeded.database_url).session() as session:
        key = issue_key(session, name=name, kind=kind, role=role)
    return {"Authorization": f"Bearer {key.secret}"}


@pytest.fixture
def report_cli(seeded: Seeded, run_cli, monkeypatch) -> Callable[..., tuple[int, str]]:
    """``casebridge audit report ARGS`` through the real entry point, on the seeded store."""
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", seeded.database_url)
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(seeded.routes_file))
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str]:
        result = run_cli("audit", "report", *args)
        return result.exit_code, result.stdout + result.stderr

    yield run
    get_settings.cache_clear()


def _sentences(html: str) -> list[list[str]]:
    article = page(html).xpath("//article[@class='report']")[0]
    return [[" ".join(li.text_content().split()) for li in ol.findall("li")]
            for ol in article.xpath(".//ol[@class='sentences']")]


def _without_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("generated_at", "chain_head_seq",
                                                         "chain_head_hash")}


def test_one_report_for_cli_api_and_console(
    signed_in: SignIn, app_client: TestClient, seeded: Seeded, report_cli
) -> None:
    """The same transfers and the same sentences everywhere, including the update blocked at
    delivery after the mother's withdrawal (never reported as released): the son's report."""
    db = get_database(seeded.database_url)
    cid = SubjectIndex(db).by_identifier(
        "urn:casebridge:id:jugendamt-duisburg:fallnummer", "JA-51-2026-1189")[0].ref
    dpo = _api_key(seeded, Role.DPO, "dpo.api")
    api_json = app_client.get(f"/v1/audit/clients/{cid}/report", headers=dpo).json()
    code, cli_out = report_cli("--client", cid, "--format", "json")
    assert code == 0, cli_out
    assert _without_time(json.loads(cli_out)) == _without_time(api_json)

    blocked = [t for t in api_json["transfers"] if t["blocked_at"] == "delivery"]
    assert blocked and all(t["state"] == "not_transferred" and t["released"] == []
                           and t["blocked_reason"] == "withdrawn" for t in blocked)

    api_html = app_client.get(f"/v1/audit/clients/{cid}/report.html?lang=en", headers=dpo).text
    console = signed_in("dana-dpo", lang="en").get(f"/console/report?client_id={cid}").text
    code, cli_html = report_cli("--client", cid, "--format", "html", "--lang", "en")
    assert code == 0
    sentences = _sentences(api_html)
    assert sentences == _sentences(console) == _sentences(cli_html)
    code, cli_text = report_cli("--client", cid, "--format", "text", "--lang", "en")
    assert [s[2:] for s in cli_text.splitlines() if s.startswith("- ")] == \
        sentences[0] + sentences[1]
    assert sum("not transferred (blocked at delivery: the consent was withdrawn)" in s
               for s in sentences[1]) == len(blocked)
    # every transfer once; the sentences name agencies and legal bases in words, no codes
    assert len(sentences[0]) + len(sentences[1]) == len(api_json["transfers"])
    shown = " ".join(sentences[0] + sentences[1])
    assert "Jobcenter Duisburg" in shown and "jobcenter-duisburg" not in shown
    assert not re.search(r"\bcons-|kkg-4|\bc-[0-9a-f]{6}", shown)


def test_unknown_client_is_a_clear_error_everywhere(
    signed_in: SignIn, app_client: TestClient, seeded: Seeded, report_cli
) -> None:
    code, out = report_cli("--client", "c-nobody", "--format", "text")
    assert code == 2 and "not known to casebridge" in out
    dpo = _api_key(seeded, Role.DPO, "dpo.api")
    assert app_client.get("/v1/audit/clients/c-nobody/report", headers=dpo).status_code == 404
    assert signed_in("dana-dpo").get("/console/report?client_id=c-nobody").status_code == 404


def test_access_to_a_report_is_audited(app_client: TestClient, seeded: Seeded) -> None:
    desk = _api_key(seeded, Role.CONSENT_DESK, "desk.api")
    before = AuditTrail(get_database(seeded.database_url)).count()
    r = app_client.get(f"/v1/audit/clients/{seeded.client_id}/report.html", headers=desk)
    assert r.status_code == 200 and "Auskunft nach Art. 15 DSGVO" in r.text
    entries = list(AuditTrail(get_database(seeded.database_url)).entries())
    assert len(entries) == before + 1
    last = entries[-1]
    assert last.kind == "report_accessed" and last.client_id == seeded.client_id
    assert last.details["by"] == "desk.api" and last.details["format"] == "html"
    assert AuditTrail(get_database(seeded.database_url)).verify().ok


def test_look_up_by_kundennummer_and_by_name(app_client: TestClient, seeded: Seeded) -> None:
    for role, name in ((Role.DPO, "dpo.api"), (Role.CONSENT_DESK, "desk.api")):
        headers = _api_key(seeded, role, name)
        r = app_client.post("/v1/persons/lookup", headers=headers, json={
            "agency": "jobcenter-duisburg", "kind": "kundennummer", "value": "962D123456"})
        assert r.status_code == 200, r.text
        [found] = r.json()
        assert found["kind"] == "client" and found["ref"] == seeded.client_id
    agency = _api_key(seeded, Role.AGENCY, "jobcenter-duisburg")
    assert app_client.post("/v1/persons/lookup", headers=agency, json={
        "agency": "jobcenter-duisburg", "kind": "kundennummer", "value": "1"}).status_code == 403
    assert app_client.post("/v1/persons/lookup", headers=headers, json={
        "agency": "jobcenter-duisburg", "value": "962D123456"}).status_code == 422
    r = app_client.post("/v1/persons/candidates", headers=headers,
                        json={"name": "Yilmaz, Ayse", "birth_date": "1988-04-12"})
    found = sorted((p["kind"], p["client_id"]) for p in r.json())
    # the client herself, and the mother in the youth office's file: a candidate, not linked
    assert found == [("client", seeded.client_id), ("subject", None)]


def test_the_mother_in_the_childs_file(
    app_client: TestClient, seeded: Seeded
) -> None:
    """Her data travelled inside her son's youth-office file; her report lists it once the
    consent desk confirmed who she is, and only with the household data."""
    db = get_database(seeded.database_url)
    [subject] = [m for m in SubjectIndex(db).by_name("Yılmaz, Ayşe", None)
                 if m.kind == "subject"]
    assert subject.role == "guardian" and subject.seen_by == "jugendamt-duisburg"
    assert subject.client_id is None
    before = access_report(db, seeded.client_id)
    assert not [t for t in before.transfers if t.sender == "jugendamt-duisburg"]
    desk = _api_key(seeded, Role.CONSENT_DESK, "desk.api")
    r = app_client.post(f"/v1/persons/{subject.ref}/link", headers=desk,
                        json={"client_id": seeded.client_id})
    assert r.status_code == 201 and r.json()["linked"] is True
    r = app_client.post(f"/v1/persons/{subject.ref}/link", headers=desk,
                        json={"client_id": seeded.client_id})
    assert r.status_code == 200 and r.json()["linked"] is False
    last = list(AuditTrail(db).entries())[-1]
    assert last.kind == "subject_linked" and last.details["ref"] == subject.ref
    report = access_report(db, seeded.client_id)
    youth = [t for t in report.transfers if t.sender == "jugendamt-duisburg"]
    assert {t.recipient for t in youth} == {"jobcenter-duisburg", "sozialamt-duisburg"}
    assert all(t.roles == ["guardian"] for t in youth)
    went = [t for t in youth if t.state != "not_transferred"]
    assert went and all(t.released == ["household"] for t in went)
    stopped = [t for t in youth if t.state == "not_transferred"]
    assert stopped and all(t.blocked_at == "delivery" for t in stopped)
    # the audit entries carry her reference, never her name
    for entry in AuditTrail(db).entries():
        assert "Ayşe" not in json.dumps(entry.as_json(), ensure_ascii=False)
    # the son's report does not list the mother's own referral to addiction counselling
    son = SubjectIndex(db).by_identifier(
        "urn:casebridge:id:jugendamt-duisburg:fallnummer", "JA-51-2026-1189")
    [son_client] = [m for m in son if m.kind == "client"]
    senders = {t.sender for t in access_report(db, son_client.ref).transfers}
    assert "jugendamt-duisburg" in senders
    son_report = access_report(db, son_client.ref)
    assert all(t.roles for t in son_report.transfers)
    referral = [t for t in son_report.transfers if t.recipient == "suchtberatung-diakonie-du"]
    assert referral == []  # he is in her referral's household but not yet confirmed: not his


def test_consent_desk_finds_confirms_and_prints(signed_in: SignIn, seeded: Seeded) -> None:
    """The console flow: search by name, confirm the link of a person seen in a file
    (here: the son in the job centre's Bedarfsgemeinschaft), produce the report."""
    desk = signed_in("desk-clerk", lang="de")
    start = desk.get("/console/")
    assert start.status_code == 303 and start.headers["location"] == "/console/persons"
    form = desk.get("/console/persons")
    assert form.status_code == 200
    token = csrf_token(form.text)
    found = desk.post("/console/persons", data={
        "csrf_token": token, "mode": "name", "name": "Yılmaz, Emre", "birth_date": "2012-02-03"})
    assert found.status_code == 200
    refs = re.findall(r'name="ref" value="(s-[0-9a-f]+)"', found.text)
    assert len(refs) == 1  # seen in the job centre's referral, not confirmed yet
    clients = re.findall(r'<option value="(c-[0-9a-f]+)">', found.text)
    assert len(clients) == 1
    refused = desk.post("/console/persons/link", data={
        "csrf_token": token, "ref": refs[0], "client_id": clients[0]})
    assert refused.status_code == 422  # the identity check box is required
    done = desk.post("/console/persons/link", data={
        "csrf_token": token, "ref": refs[0], "client_id": clients[0], "checked": "yes"})
    assert done.status_code == 303
    report = desk.get(done.headers["location"])
    assert report.status_code == 200
    shown = text(report.text)
    assert "Suchtberatung der Diakonie Duisburg" in shown
    assert "Mitglied des Haushalts" in shown or "Kind" in shown
    again = desk.post("/console/persons/link", data={
        "csrf_token": token, "ref": refs[0], "client_id": seeded.client_id, "checked": "yes"})
    assert again.status_code == 422  # never moved to another client
    assert AuditTrail(get_database(seeded.database_url)).verify().ok
