"""Audit endpoints: DPO only; query with filters and pages; verify; Art. 15 and Art. 30."""

from __future__ import annotations

from fastapi.testclient import TestClient

from casebridge.gateway.principals import Role
from tests.gateway.conftest import Issue


def _traffic(client: TestClient, issue: Issue, sample) -> str:
    desk = issue("desk.jc", role=Role.CONSENT_DESK).headers
    r = client.post("/v1/consents", content=sample("consent_self"),
                    headers={**desk, "Content-Type": "application/fhir+json"})
    client_id = r.json()["recorded"][0]["client_id"]
    jc = issue("jobcenter-duisburg").headers
    r = client.post("/v1/inbound/jobcenter", content=sample("zuweisung"),
                    headers={**jc, "Content-Type": "application/xml"})
    assert r.status_code == 202
    return client_id


def test_only_the_dpo_reads_the_audit_trail(client: TestClient, issue: Issue, sample) -> None:
    client_id = _traffic(client, issue, sample)
    paths = ["/v1/audit/entries", "/v1/audit/verify", "/v1/audit/processing-records"]
    reports = [f"/v1/audit/clients/{client_id}/report",
               f"/v1/audit/clients/{client_id}/report.html"]
    desk = issue("desk.b", role=Role.CONSENT_DESK).headers
    others = [issue("jobcenter-duisburg").headers, issue("root.a", role=Role.ADMIN).headers]
    dpo = issue("dpo.anna", role=Role.DPO).headers
    for path in paths + reports:
        assert client.get(path).status_code == 401, path
        for headers in others:
            assert client.get(path, headers=headers).status_code == 403, path
        assert client.get(path, headers=dpo).status_code == 200, path
        # the consent desk serves the client in person: it produces the report, nothing else
        assert client.get(path, headers=desk).status_code == (200 if path in reports else 403)


def test_query_filters_and_pages(client: TestClient, issue: Issue, sample) -> None:
    client_id = _traffic(client, issue, sample)
    dpo = issue("dpo.anna", role=Role.DPO).headers
    everything = client.get("/v1/audit/entries", headers=dpo).json()["entries"]
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    [decision] = [e for e in everything if e["kind"] == "decision"]
    assert decision["outcome"] == "partial" and decision["client_id"] == client_id

    def q(**params):
        r = client.get("/v1/audit/entries", headers=dpo, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    assert [e["seq"] for e in q(outcome="partial")["entries"]] == [decision["seq"]]
    assert q(outcome="block")["entries"] == []
    assert q(purpose="case_conference")["entries"] == []
    assert decision["seq"] in [e["seq"] for e in q(agency="suchtberatung-diakonie-du")["entries"]]
    assert q(agency="sozialamt-duisburg")["entries"] == []
    assert {e["client_id"] for e in q(client_id=client_id)["entries"]} == {client_id}
    assert q(since="2999-01-01T00:00:00Z")["entries"] == []
    assert len(q(until="2999-01-01T00:00:00Z")["entries"]) == len(everything)
    page = q(limit=1)
    assert len(page["entries"]) == 1 and page["next_after"] == 1
    rest = q(after=page["next_after"], limit=1000)
    assert [e["seq"] for e in rest["entries"]] == [e["seq"] for e in everything[1:]]
    assert rest["next_after"] is None
    bad = client.get("/v1/audit/entries", headers=dpo, params={"since": "2026-01-01T00:00:00"})
    assert bad.status_code == 422  # a time without offset is ambiguous
    assert client.get("/v1/audit/entries", headers=dpo,
                      params={"outcome": "maybe"}).status_code == 422


def test_verify_report_and_processing_records(client: TestClient, issue: Issue, sample) -> None:
    client_id = _traffic(client, issue, sample)
    dpo = issue("dpo.anna", role=Role.DPO).headers
    verified = client.get("/v1/audit/verify", headers=dpo).json()
    assert verified["ok"] is True and verified["checked"] >= 2

    report = client.get(f"/v1/audit/clients/{client_id}/report", headers=dpo).json()
    [transfer] = report["transfers"]
    assert transfer["recipient"] == "suchtberatung-diakonie-du"
    assert "addiction" in transfer["released"] and transfer["state"] == "partial"
    assert report["chain_head_seq"] == verified["last_seq"]
    html = client.get(f"/v1/audit/clients/{client_id}/report.html", headers=dpo)
    assert html.headers["content-type"].startswith("text/html")
    assert "Suchtmittelkonsum" in html.text and "<script" not in html.text
    assert client.get("/v1/audit/clients/c-nobody/report", headers=dpo).status_code == 404

    records = client.get("/v1/audit/processing-records", headers=dpo).json()["records"]
    assert records
    statutory = [r for r in records if "child_protection" in r["purposes"]]
    assert statutory
    assert {"sgb-viii-8a", "kkg-4"} <= {b["code"] for b in statutory[0]["legal_bases"]}
    assert [a["id"] for a in statutory[0]["recipients"]] == ["jugendamt-duisburg"]
    referral = next(r for r in records if r["purposes"] == ["referral", "service_delivery"]
                    and r["message_types"] is None)
    assert {"suchtberatung-diakonie-du", "schuldnerberatung-caritas-du"} == {
        a["id"] for a in referral["recipients"]}
    health = next(c for c in referral["categories"] if c["category"] == "health")
    assert health["special"] is True
    identity = next(c for c in referral["categories"] if c["category"] == "identity")
    assert identity["required"] is True
