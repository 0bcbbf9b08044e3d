"""The referral exchange end to end on memory://: gate twice, deliver once, nothing bypassed."""

from __future__ import annotations

import json

import httpx
import pytest
from kombu import Producer

from casebridge.adapters import get_adapter
from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import ConsentStore
from casebridge.errors import Forbidden, NoRoute, NotFound
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.pipeline import decode_envelope
from casebridge.routing.routes import parse_route_table
from casebridge.routing.store import DeliveryRow
from casebridge.routing.topology import connect

FALL = "jugendamt/fall-001.json"


def drain(routing, recipients, **kw):
    worker = routing.worker(push=recipients.client(), **kw)
    worker.run(idle_timeout=0.3)
    worker.close()
    return worker.counts


def deliveries(db):
    with db.session() as s:
        return {(r.recipient, r.state, r.reason) for r in s.query(DeliveryRow)}


def test_case_export_is_minimised_then_delivered_once_per_recipient(routing, recipients):
    [accepted] = routing.router().submit(sample_bytes(FALL), system="jugendamt")
    assert {r.recipient: r.queued for r in accepted.recipients} == {
        "jobcenter-duisburg": True, "sozialamt-duisburg": True}
    for r in accepted.recipients:
        assert r.outcome == "partial"
        assert "entrusted" in {w["category"] for w in r.withheld}  # the reason is the engine's
    assert drain(routing, recipients) == {"delivered": 2}
    urls = sorted(str(r.url) for r in recipients.requests)
    assert urls == ["http://jobcenter.test/inbox", "http://sozialamt.test/inbox"]
    for request in recipients.requests:
        # The child's entrusted note and the case notes never leave casebridge.
        assert "Einzelgespräch".encode() not in request.content
        assert b"Schlafproblemen" not in request.content
        assert request.headers["Idempotency-Key"].startswith("d-")
    assert deliveries(routing.db) == {("jobcenter-duisburg", "delivered", None),
                                      ("sozialamt-duisburg", "delivered", None)}
    # inbound + delivery decision per recipient: four audit entries, chain intact
    trail = AuditTrail(routing.db)
    stages = [(e.stage, e.recipient) for e in trail.entries() if e.kind == "decision"]
    assert sorted(stages) == sorted([("inbound", "jobcenter-duisburg"),
                                     ("inbound", "sozialamt-duisburg"),
                                     ("delivery", "jobcenter-duisburg"),
                                     ("delivery", "sozialamt-duisburg")])
    assert trail.verify().ok


def test_blocked_recipient_is_never_published(routing, recipients):
    [accepted] = routing.router().submit(
        sample_bytes("sozialamt/fallmitteilung-001.xml"), system="sozialamt")
    assert all(not r.queued and r.outcome == "block" for r in accepted.recipients)
    assert drain(routing, recipients) == {}
    assert recipients.requests == []


def test_withdrawal_while_queued_blocks_delivery_and_is_audited(routing, recipients):
    routing.router().submit(sample_bytes(FALL), system="jugendamt")
    ConsentStore(routing.db).withdraw("cons-ja-2026-0311", by="Ayşe Yılmaz (mother)")
    assert drain(routing, recipients) == {"blocked": 2}
    assert recipients.requests == []
    assert deliveries(routing.db) == {("jobcenter-duisburg", "blocked", "withdrawn"),
                                      ("sozialamt-duisburg", "blocked", "withdrawn")}
    delivery_entries = [e for e in AuditTrail(routing.db).entries() if e.stage == "delivery"]
    assert len(delivery_entries) == 2
    assert all(e.outcome == "block" for e in delivery_entries)


def test_redelivered_message_is_recognised_not_delivered_twice(routing, recipients):
    routing.router().submit(sample_bytes(FALL), system="jugendamt")
    conn = connect(routing.url)
    queue = routing.topology.queue("jobcenter-duisburg")(conn.default_channel)
    message = queue.get(no_ack=False)
    assert message is not None
    service = routing.delivery_service(push=recipients.client())
    first = service.process(message.body)
    # the worker "crashed" before acking: the broker hands the same message out again
    second = service.process(message.body)
    assert (first.kind, second.kind) == ("delivered", "duplicate")
    assert len(recipients.requests) == 1
    message.ack()
    conn.release()


def test_republished_message_after_publisher_retry_is_delivered_once(routing, recipients):
    router = routing.router()
    router.submit(sample_bytes(FALL), system="jugendamt")
    router.submit(sample_bytes(FALL), system="jugendamt")  # the sender retried its POST
    counts = drain(routing, recipients)
    assert counts == {"delivered": 2, "duplicate": 2}
    assert len(recipients.requests) == 2


def test_4xx_goes_to_the_dead_letter_queue_with_the_answer(routing, recipients):
    recipients.answer = lambda _r: httpx.Response(422, text="Fallnummer unbekannt")
    routing.router().submit(sample_bytes(FALL), system="jugendamt")
    assert drain(routing, recipients, agencies=["jobcenter-duisburg"]) == {"dead": 1}
    conn = connect(routing.url)
    dead = routing.topology.dead_queue(conn.default_channel).get(no_ack=True)
    assert dead is not None
    assert dead.headers["dead_reason"] == "refused"
    assert json.loads(dead.headers["dead_detail"]) == {
        "status_code": 422, "answer": "Fallnummer unbekannt"}
    assert decode_envelope(dead.body).recipients == ["jobcenter-duisburg"]
    conn.release()


def test_poison_message_is_dead_lettered_not_looped(routing, recipients):
    conn = connect(routing.url)
    routing.topology.declare(conn)
    Producer(conn.default_channel).publish(
        b"\x00not an envelope", exchange=routing.topology.exchange,
        routing_key=routing.topology.routing_key("jobcenter-duisburg"),
        content_type="application/octet-stream", content_encoding="binary",
        headers={"recipient": "jobcenter-duisburg"})
    assert drain(routing, recipients) == {"dead": 1}
    dead = routing.topology.dead_queue(conn.default_channel).get(no_ack=True)
    assert dead is not None and dead.headers["dead_reason"] == "undecodable"
    assert dead.body == b"\x00not an envelope"
    conn.release()


def test_no_route_is_refused_at_the_door_before_the_gate(routing, db):
    narrow = parse_route_table(
        "agencies:\n"
        "  - {id: jugendamt-duisburg, kind: youth_office, system: jugendamt,"
        " delivery: {mode: pull}}\n"
        "  - {id: jobcenter-duisburg, kind: jobcenter, system: jobcenter,"
        " delivery: {mode: pull}}\n"
        "  - {id: sozialamt-duisburg, kind: social_office, system: sozialamt,"
        " delivery: {mode: pull}}\n"
        "routes:\n"
        "  - {sender: youth_office, purposes: [case_conference], recipients: [jobcenter]}\n",
        source="narrow.yaml", fmt="yaml")
    routing.routes = narrow
    before = AuditTrail(db).count()
    router = routing.router()
    router.routes = narrow
    with pytest.raises(NoRoute, match="to sozialamt-duisburg"):
        router.submit(sample_bytes(FALL), system="jugendamt")
    assert AuditTrail(db).count() == before


def test_an_agency_may_only_send_as_itself(routing):
    with pytest.raises(Forbidden, match="may only send as itself"):
        routing.router().submit(sample_bytes(FALL), system="jugendamt",
                                sender="jobcenter-duisburg")
    # a Rueckmeldung is what the job centre accepts; a provider does not post it as 'jobcenter'
    with pytest.raises(NoRoute, match="uses system 'provider-fhir', not 'jobcenter'"):
        routing.router().submit(sample_bytes("jobcenter/rueckmeldung-001.xml"),
                                system="jobcenter")


def test_status_update_is_correlated_and_advances_the_referral(routing, recipients):
    from casebridge.canonical_model import StatusInfo

    store = ConsentStore(routing.db)
    store.import_fhir(sample_bytes_scenario("consent-report-back-001.json"), source="rb")
    router = routing.router()
    referral = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))[0]
    accepted = router.route(referral)
    assert [r.queued for r in accepted.recipients] == [True]
    assert routing.referrals().get("JC-DU-2026-000123") is None  # tracked once delivered
    assert drain(routing, recipients) == {"delivered": 1}  # into the provider's outbox
    view = routing.referrals().require("JC-DU-2026-000123")
    assert view.referral.status == "requested" and view.answered_at is None
    update = get_adapter("jobcenter").parse(sample_bytes("jobcenter/rueckmeldung-001.xml"))[0]
    assert router.route(update).status_effect == "pending"
    assert drain(routing, recipients) == {"delivered": 1}  # pushed to the job centre
    view = routing.referrals().require("JC-DU-2026-000123")
    assert view.referral.status == "in_progress" and view.answered_at is not None
    assert [c.reported_by for c in view.referral.history] == ["suchtberatung-diakonie-du"]
    # a later message reporting an earlier state is kept as ignored; the status stays
    late = update.model_copy(update={
        "message_id": "SB-DIAK-2026-7790",
        "status": StatusInfo(status="received", native_status="eingegangen")})
    router.route(late)
    assert drain(routing, recipients) == {"delivered": 1}
    view = routing.referrals().require("JC-DU-2026-000123")
    assert view.referral.status == "in_progress"
    assert [c.message_id for c in view.ignored] == ["SB-DIAK-2026-7790"]


def sample_bytes_scenario(name: str) -> bytes:
    from importlib.resources import files

    return files("casebridge.gateway.demo").joinpath("scenario", name).read_bytes()


def test_dead_letters_are_listed_and_replayed_through_the_gate(routing, recipients):
    from casebridge.routing.dlq import DeadLetters

    recipients.answer = lambda _r: httpx.Response(503)
    routing.router().submit(sample_bytes(FALL), system="jugendamt")
    assert drain(routing, recipients) == {"dead": 2}
    dlq = DeadLetters(routing)
    letters = dlq.list()
    assert {d.recipient for d in letters} == {"jobcenter-duisburg", "sozialamt-duisburg"}
    assert {d.reason for d in letters} == {"retries_exhausted"}
    assert len(dlq.list()) == 2  # listing does not consume
    one = dlq.show(letters[0].id)
    assert "entrusted" not in one.categories and "identity" in one.categories
    with pytest.raises(NotFound):
        dlq.show("d-nope")
    # the recipient is back; the mother withdraws before the second letter is replayed
    recipients.answer = lambda _r: httpx.Response(200)
    seen = []
    assert [o.result for o in dlq.replay([letters[0].id], progress=lambda n, t: seen.append(n))
            ] == ["requeued"]
    assert seen == [1]
    ConsentStore(routing.db).withdraw("cons-ja-2026-0311", by="mother")
    assert [o.result for o in dlq.replay()] == ["blocked"]
    assert dlq.list() == []
    assert drain(routing, recipients) == {"blocked": 1}  # withdrawn before delivery, too
    assert [e.kind for e in AuditTrail(routing.db).entries()].count("dead_letter_replayed") == 1
    assert AuditTrail(routing.db).verify().ok


def test_resent_after_new_consent_is_decided_again(routing, recipients):
    from casebridge.consent.fhir import parse_consents

    router = routing.router()
    router.submit(sample_bytes(FALL), system="jugendamt")
    ConsentStore(routing.db).withdraw("cons-ja-2026-0311", by="mother")
    assert drain(routing, recipients) == {"blocked": 2}
    renewed = sample_bytes("consent-fhir/consent-guardian-001.json").replace(
        b"cons-ja-2026-0311", b"cons-ja-2026-0400")
    assert parse_consents(renewed, source="renewed")
    ConsentStore(routing.db).import_fhir(renewed, source="renewed")
    router.submit(sample_bytes(FALL), system="jugendamt")  # the youth office sends it again
    assert drain(routing, recipients) == {"delivered": 2}
    assert len(recipients.requests) == 2


def test_threaded_worker_delivers_each_message_once(routing, recipients):
    raw = sample_bytes(FALL)
    router = routing.router()
    for i in range(10):
        router.submit(raw.replace(b"2026-11-21T11:30:00", f"2026-11-21T12:00:{i:02d}".encode()),
                      system="jugendamt")
    ConsentStore(routing.db)  # the store is shared by the delivery threads
    worker = routing.worker(push=recipients.client(), threads=4)
    worker.run(idle_timeout=0.5)
    worker.close()
    assert worker.counts == {"delivered": 20}
    keys = [r.headers["Idempotency-Key"] for r in recipients.requests]
    assert len(keys) == 20 and len(set(keys)) == 20
    assert AuditTrail(routing.db).verify().ok


def test_only_what_the_gate_released_can_be_published(routing):
    from datetime import UTC, datetime

    env = get_adapter("sozialamt").parse(sample_bytes("sozialamt/fallmitteilung-001.xml"))[0]
    result = routing.gate.check(env, at=datetime.now(UTC), stage="inbound")
    assert result.released == {}  # no consent covers the social office's disclosure
    with pytest.raises(ValueError, match="released nothing"):
        routing.publisher().publish(result, "jobcenter-duisburg", headers={})
