"""Inbound, outbox and referral status end to end on SQLite and kombu's memory broker."""

from __future__ import annotations

from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database
from casebridge.gateway.principals import Role
from casebridge.routing.worker import consume_all
from casebridge.settings import Settings
from tests.gateway.conftest import Issue

XML = {"Content-Type": "application/xml"}
REFERRAL_ID = "JC-DU-2026-000123"
PROVIDER = "suchtberatung-diakonie-du"  # a pull agency in the pilot route table


def _post(client: TestClient, system: str, raw: bytes, headers: dict[str, str],
          content_type: str = "application/xml"):
    return client.post(f"/v1/inbound/{system}", content=raw,
                       headers={**headers, "Content-Type": content_type})


def _consent(client: TestClient, issue: Issue, sample) -> None:
    desk = issue("desk.jc", role=Role.CONSENT_DESK).headers
    r = client.post("/v1/consents", content=sample("consent_self"),
                    headers={**desk, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201


def test_referral_is_decided_queued_and_answered_with_outcomes(
    client: TestClient, issue: Issue, sample
) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    r = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["message_ids"] == [REFERRAL_ID]
    [message] = body["messages"]
    assert message["replayed"] is False
    [decision] = message["recipients"]
    assert decision["recipient"] == PROVIDER
    assert decision["outcome"] == "partial" and decision["queued"] is True
    assert {"identity", "contact", "addiction"} <= set(decision["released"])
    withheld = {w["category"]: w["reason"] for w in decision["withheld"]}
    assert withheld["health"] == "special_category_not_named"
    # Categories and reasons only: nothing of the client's data is in the answer.
    assert "962D123456" not in r.text and "Yılmaz" not in r.text and "Ayşe" not in r.text


def test_same_message_id_is_accepted_once(
    client: TestClient, issue: Issue, sample, gateway_settings: Settings
) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    first = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert first.status_code == 202
    trail = AuditTrail(get_database(gateway_settings.effective_database_url))
    decisions_before = sum(1 for e in trail.entries() if e.kind == "decision")
    second = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert second.status_code == 200
    assert second.json()["messages"][0]["replayed"] is True
    first_msgs = [{**m, "replayed": None} for m in first.json()["messages"]]
    second_msgs = [{**m, "replayed": None} for m in second.json()["messages"]]
    assert second_msgs == first_msgs
    # Not decided, audited or published a second time.
    assert sum(1 for e in trail.entries() if e.kind == "decision") == decisions_before
    worker = client.app.state.routing.worker([PROVIDER])
    try:
        counts = consume_all(worker, idle_timeout=0.3)
    finally:
        worker.close()
    assert counts == {"delivered": 1}
    # The same id with other content is a conflict, not a silent replay.
    altered = sample("zuweisung").replace(b"Team 612", b"Team 613")
    r = _post(client, "jobcenter", altered, jc)
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_blocked_message_is_decided_again_when_resent_after_consent(
    client: TestClient, issue: Issue, sample, gateway_settings: Settings
) -> None:
    jc = issue("jobcenter-duisburg").headers
    first = _post(client, "jobcenter", sample("zuweisung"), jc)
    # wholly blocked at the door: not 202, and the problem document says why, per category
    assert first.status_code == 422, first.text
    assert first.headers["content-type"] == "application/problem+json"
    problem = first.json()
    assert problem["code"] == "nothing_sent" and problem["title"] == "Nothing was sent"
    reasons = {e["location"]: e["detail"] for e in problem["errors"]}
    assert reasons[f"{REFERRAL_ID}/{PROVIDER}"] == "block"
    assert reasons[f"{REFERRAL_ID}/{PROVIDER}/identity"] == "unknown_client"
    assert "962D123456" not in first.text and "Yılmaz" not in first.text
    _consent(client, issue, sample)
    second = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert second.status_code == 202
    [decision] = second.json()["messages"][0]["recipients"]
    assert second.json()["messages"][0]["replayed"] is False
    assert decision["outcome"] == "partial" and decision["queued"] is True
    third = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert third.status_code == 200 and third.json()["messages"][0]["replayed"] is True
    trail = AuditTrail(get_database(gateway_settings.effective_database_url))
    outcomes = [e.outcome for e in trail.entries() if e.kind == "decision"]
    assert outcomes == ["block", "partial"]


def test_forged_sender_is_403_and_audited(
    client: TestClient, issue: Issue, sample, gateway_settings: Settings
) -> None:
    jc = issue("jobcenter-duisburg")
    r = _post(client, "sozialamt", sample("fallmitteilung"), jc.headers)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "forbidden"
    trail = AuditTrail(get_database(gateway_settings.effective_database_url))
    [event] = [e for e in trail.entries() if e.kind == "forged_sender"]
    assert event.sender == "sozialamt-duisburg"
    assert event.details["caller"] == "jobcenter-duisburg"
    assert event.details["key_id"] == jc.key_id
    assert not [e for e in trail.entries() if e.kind == "decision"]
    assert trail.verify().ok


def test_people_cannot_post_messages(client: TestClient, issue: Issue, sample) -> None:
    for name, role in (("desk.a", Role.CONSENT_DESK), ("dpo.a", Role.DPO),
                       ("root.a", Role.ADMIN)):
        r = _post(client, "jobcenter", sample("zuweisung"), issue(name, role=role).headers)
        assert r.status_code == 403, name
    assert _post(client, "jobcenter", sample("zuweisung"), {}).status_code == 401


def test_agency_posting_in_another_system_is_refused(
    client: TestClient, issue: Issue, sample
) -> None:
    # The youth office's key posting a job-centre file: the sender inside is not the caller.
    ja = issue("jugendamt-duisburg").headers
    assert _post(client, "jobcenter", sample("zuweisung"), ja).status_code == 403


def test_outbox_is_per_agency_and_acknowledged_once(
    client: TestClient, issue: Issue, sample
) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    provider = issue(PROVIDER).headers
    assert _post(client, "jobcenter", sample("zuweisung"), jc).status_code == 202
    worker = client.app.state.routing.worker([PROVIDER])
    try:
        consume_all(worker, idle_timeout=0.3)
    finally:
        worker.close()

    metrics = client.get("/metrics", headers=issue("root.a", role=Role.ADMIN).headers).text
    assert (f'casebridge_store_deliveries{{agency="{PROVIDER}",state="delivered"}} 1.0'
            in metrics)
    assert f'casebridge_store_outbox_pending{{agency="{PROVIDER}"}} 1.0' in metrics
    assert f'casebridge_store_delivery_retries{{agency="{PROVIDER}"}} 0.0' in metrics

    page = client.get("/v1/outbox", headers=provider).json()
    [item] = page["items"]
    assert item["message_id"] == REFERRAL_ID and item["sender"] == "jobcenter-duisburg"
    assert client.get("/v1/outbox", headers=jc).json()["items"] == []

    fetched = client.get(f"/v1/outbox/{item['item_id']}", headers=provider)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("application/fhir+json")
    assert fetched.headers["x-casebridge-message-id"] == REFERRAL_ID
    assert b'"Bundle"' in fetched.content or b'"resourceType"' in fetched.content
    # Another agency can neither read nor acknowledge it.
    assert client.get(f"/v1/outbox/{item['item_id']}", headers=jc).status_code == 404
    assert client.post(f"/v1/outbox/{item['item_id']}/ack", headers=jc).status_code == 404

    ack = client.post(f"/v1/outbox/{item['item_id']}/ack", headers=provider)
    assert ack.json() == {"item_id": item["item_id"], "acknowledged": True}
    again = client.post(f"/v1/outbox/{item['item_id']}/ack", headers=provider)
    assert again.json()["acknowledged"] is False
    assert client.get("/v1/outbox", headers=provider).json()["items"] == []
    assert client.get(f"/v1/outbox/{item['item_id']}", headers=provider).status_code == 404
    assert client.get("/v1/outbox/99999999", headers=provider).status_code == 404
    desk = issue("desk.b", role=Role.CONSENT_DESK).headers
    assert client.get("/v1/outbox", headers=desk).status_code == 403


def test_referral_status_only_for_parties(client: TestClient, issue: Issue, sample) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    assert _post(client, "jobcenter", sample("zuweisung"), jc).status_code == 202
    # Routing records the referral when it is delivered to a recipient.
    worker = client.app.state.routing.worker([PROVIDER])
    try:
        consume_all(worker, idle_timeout=0.3)
    finally:
        worker.close()
    r = client.get(f"/v1/referrals/{REFERRAL_ID}", headers=jc)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requested"
    assert r.json()["recipients"] == [PROVIDER]
    assert client.get(f"/v1/referrals/{REFERRAL_ID}",
                      headers=issue(PROVIDER).headers).status_code == 200
    outsider = issue("sozialamt-duisburg").headers
    assert client.get(f"/v1/referrals/{REFERRAL_ID}", headers=outsider).status_code == 404
    assert client.get("/v1/referrals/NO-SUCH-ID", headers=jc).status_code == 404
    dpo = issue("dpo.a", role=Role.DPO).headers
    assert client.get(f"/v1/referrals/{REFERRAL_ID}", headers=dpo).status_code == 403


def test_preview_shows_each_recipients_document_masked_and_sends_nothing(
    client: TestClient, issue: Issue, sample, gateway_settings: Settings
) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    r = client.post("/v1/inbound/jobcenter/preview", content=sample("zuweisung"),
                    headers={**jc, **XML})
    assert r.status_code == 200, r.text
    [message] = r.json()["messages"]
    assert message["message_id"] == REFERRAL_ID
    [copy] = message["recipients"]
    assert copy["recipient"] == PROVIDER and copy["outcome"] == "partial"
    assert copy["media_type"] == "application/fhir+json"
    assert '"resourceType": "Bundle"' in copy["document"]  # the structure is shown ...
    assert "962D123456" not in r.text and "Yılmaz" not in r.text  # ... the data is not
    trail = AuditTrail(get_database(gateway_settings.effective_database_url))
    assert [(e.kind, e.message_id) for e in trail.entries()
            if e.kind in ("preview", "decision")] == [("preview", REFERRAL_ID)]
    worker = client.app.state.routing.worker([PROVIDER])
    try:
        assert consume_all(worker, idle_timeout=0.3) == {}
    finally:
        worker.close()
    # the preview claimed nothing: the real post is a first post
    posted = _post(client, "jobcenter", sample("zuweisung"), jc)
    assert posted.status_code == 202 and posted.json()["messages"][0]["replayed"] is False


def test_preview_is_for_the_callers_own_messages_only(
    client: TestClient, issue: Issue, sample
) -> None:
    jc = issue("jobcenter-duisburg").headers
    forged = client.post("/v1/inbound/sozialamt/preview", content=sample("fallmitteilung"),
                         headers={**jc, **XML})
    assert forged.status_code == 403 and forged.json()["code"] == "forbidden"
    anonymous = client.post("/v1/inbound/jobcenter/preview", content=sample("zuweisung"),
                            headers=XML)
    assert anonymous.status_code == 401


def test_status_api_tells_the_sender_what_became_of_each_copy(
    client: TestClient, issue: Issue, sample
) -> None:
    jc = issue("jobcenter-duisburg").headers
    assert _post(client, "jobcenter", sample("zuweisung"), jc).status_code == 422
    url = f"/v1/status/messages/{REFERRAL_ID}"
    [door] = client.get(url, headers=jc).json()["recipients"]
    assert (door["recipient"], door["state"], door["stage"], door["reason"]) == (
        PROVIDER, "blocked", "inbound", "unknown_client")
    _consent(client, issue, sample)
    assert _post(client, "jobcenter", sample("zuweisung"), jc).status_code == 202
    [queued] = client.get(url, headers=jc).json()["recipients"]
    assert queued["state"] == "queued"
    desk = issue("desk.jc2", role=Role.CONSENT_DESK).headers
    withdrawn = client.post("/v1/consents/cons-jc-2026-0815/withdraw", headers=desk)
    assert withdrawn.status_code == 200, withdrawn.text
    worker = client.app.state.routing.worker([PROVIDER])  # the job centre's feedback waits
    try:
        consume_all(worker, idle_timeout=0.3)
    finally:
        worker.close()
    r = client.get(url, headers=jc)
    [later] = r.json()["recipients"]
    assert (later["state"], later["stage"], later["reason"]) == ("blocked", "delivery",
                                                                 "withdrawn")
    assert "962D123456" not in r.text and "Yılmaz" not in r.text
    # only the sender may ask: for anyone else the message does not exist
    other = issue(PROVIDER).headers
    assert client.get(url, headers=other).status_code == 404
    assert client.get("/v1/status/messages/NOPE-1", headers=jc).status_code == 404


def test_overdue_lists_plan_measures_past_due_for_the_agency_following_them_up(
    client: TestClient, issue: Issue, sample
) -> None:
    _consent(client, issue, sample)
    jc = issue("jobcenter-duisburg").headers
    late_plan = sample("zuweisung").replace(b'bis="2026-12-15"', b'bis="2026-11-30"')
    assert _post(client, "jobcenter", late_plan, jc).status_code == 202
    worker = client.app.state.routing.worker()
    try:
        consume_all(worker, idle_timeout=0.3)
    finally:
        worker.close()
    r = client.get("/v1/status/overdue", headers=jc)
    assert r.status_code == 200, r.text
    [measure] = r.json()["measures"]
    assert (measure["plan_message_id"], measure["measure"], measure["goal"]) == (
        REFERRAL_ID, 1, 1)
    assert (measure["responsible_role"], measure["follow_up_by"], measure["due"]) == (
        "client", "jobcenter-duisburg", "2026-11-30")
    assert r.json()["referrals"] == []
    provider = client.get("/v1/status/overdue", headers=issue(PROVIDER).headers).json()
    assert provider == {"referrals": [], "measures": []}
