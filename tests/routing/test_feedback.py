"""The sender hears back about copies blocked at delivery or dead-lettered; measures past due."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Purpose, StatutoryClaim
from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import ConsentStore
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.feedback import Feedback, feedback_envelope
from casebridge.routing.store import DeliveryRow, MeasureRow
from tests.consent.store_fixtures import example_envelope
from tests.routing.test_rabbitmq_faults import vhost  # noqa: F401 - per-test vhost

CET = timezone(timedelta(hours=1))
AT = datetime(2026, 12, 3, 10, 0, tzinfo=CET)
JC, SA, JA = "jobcenter-duisburg", "sozialamt-duisburg", "jugendamt-duisburg"
SB = "suchtberatung-diakonie-du"
REFERRAL = "JC-DU-2026-000123"
CLIENT_DATA = (b"962D123456", "Yılmaz".encode(), b"Yilmaz", "Ayşe".encode())


def drain(routing, recipients):
    worker = routing.worker(push=recipients.client())
    worker.run(idle_timeout=0.3)
    worker.close()
    return worker.counts


def states(db):
    with db.session() as s:
        return {(r.sender, r.message_id, r.recipient): (r.state, r.reason)
                for r in s.query(DeliveryRow)}


def pulled(routing, agency):
    outbox = routing.outbox()
    return [outbox.fetch(agency, item.item_id)[1] for item in outbox.pending(agency)]


def test_withdrawal_while_queued_is_reported_to_the_job_centre_as_rueckmeldung(
    routing, recipients
):
    routing.clock = lambda: AT
    routing.router().submit(sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter")
    ConsentStore(routing.db).withdraw("cons-jc-2026-0815", by="Kundin",
                                      at=AT + timedelta(minutes=30))
    routing.clock = lambda: AT + timedelta(hours=1)  # delivery, after the withdrawal
    assert drain(routing, recipients) == {"blocked": 1, "delivered": 1}
    assert pulled(routing, SB) == []  # the provider got nothing
    [request] = recipients.requests
    assert str(request.url) == "http://jobcenter.test/inbox"
    assert b"<jc:Rueckmeldung" in request.content and b"abgelehnt" in request.content
    for value in CLIENT_DATA:
        assert value not in request.content
    [report] = get_adapter("jobcenter").parse(request.content)
    assert (report.sender, report.recipients, report.correlation_id) == (SB, [JC], REFERRAL)
    assert report.status is not None and str(report.status.status) == "rejected"
    [note] = report.parts
    assert "withdrawn" in note.content.text and "widerrufen" in note.content.text
    rows = states(routing.db)
    assert rows[(JC, REFERRAL, SB)] == ("blocked", "withdrawn")
    assert [v for (s, _m, r), v in rows.items() if (s, r) == (SB, JC)] == [("delivered", None)]
    events = [e for e in AuditTrail(routing.db).entries() if e.kind == "sender_feedback"]
    assert [(e.message_id, e.recipient, e.details["state"], e.details["reason"])
            for e in events] == [(REFERRAL, SB, "blocked", "withdrawn")]
    # feedback is not a referral status: nothing was recorded for the referral
    assert routing.referrals().get(REFERRAL) is None


def test_a_dead_lettered_copy_is_reported_to_a_provider_as_a_rejected_task(
    routing, recipients
):
    routing.clock = lambda: AT
    recipients.answer = lambda _r: httpx.Response(422, text="nicht lesbar")
    claim = StatutoryClaim(legal_basis="kkg-4", justification="Anzeichen einer Gefährdung")
    notification = example_envelope(sender=SB, recipients=[JA], purpose=Purpose.CHILD_PROTECTION,
                                    statutory=claim, message_id="SB-KS-1")
    routing.router().route(notification)
    counts = drain(routing, recipients)
    assert counts["dead"] == 1 and counts["delivered"] == 1
    dead_reason = states(routing.db)[(SB, "SB-KS-1", JA)]
    assert dead_reason[0] == "dead" and dead_reason[1] in ("refused", "render_failed")
    [task_bytes] = pulled(routing, SB)
    task = json.loads(task_bytes)
    assert task["resourceType"] == "Task" and task["status"] == "rejected"
    assert task["focus"]["identifier"]["value"] == "SB-KS-1"
    assert task["owner"]["identifier"]["value"] == JA
    assert dead_reason[1] in task["statusReason"]["text"]
    assert b"Gef\xc3\xa4hrdung" not in task_bytes and b"962D123456" not in task_bytes
    [report] = get_adapter("provider-fhir").parse(task_bytes)
    assert report.correlation_id == "SB-KS-1" and str(report.status.status) == "rejected"


def test_feedback_goes_only_where_the_format_has_a_feedback_message(routing, recipients):
    routing.clock = lambda: AT
    routing.router().submit(sample_bytes("jugendamt/fall-001.json"), system="jugendamt")
    ConsentStore(routing.db).withdraw("cons-ja-2026-0311", by="Mutter",
                                      at=AT + timedelta(minutes=30))
    routing.clock = lambda: AT + timedelta(hours=1)
    assert drain(routing, recipients) == {"blocked": 2}  # the youth office has none
    assert recipients.requests == []
    assert not [e for e in AuditTrail(routing.db).entries() if e.kind == "sender_feedback"]


@pytest.mark.parametrize("text", ["", "{}", '{"message_id": "x"}'])
def test_a_broken_feedback_body_is_dead_lettered_not_delivered(routing, text):
    service = routing.delivery_service()
    verdict = service.process(text.encode(), {"casebridge_feedback": 1})
    assert (verdict.kind, verdict.reason) == ("dead", "undecodable")


def test_feedback_carries_ids_and_a_reason_only():
    with pytest.raises(ValueError):
        Feedback.model_validate({"message_id": "M-1", "sender": JC, "recipient": SB,
                                 "state": "blocked", "reason": "withdrawn", "at": AT.isoformat(),
                                 "parts": []})
    from casebridge.routing.routes import demo_route_table

    envelope = feedback_envelope(Feedback(message_id="M-1", sender=JC, recipient=SB,
                                          state="dead", reason="retries_exhausted", at=AT),
                                 demo_route_table())
    assert [p.category for p in envelope.parts] == ["case_notes"]
    assert "nicht erreichbar" in envelope.parts[0].content.text


# --- measures past due ------------------------------------------------------------------------


def test_delivered_plan_measures_are_followed_up_by_the_responsible_agency(
    routing, recipients
):
    routing.clock = lambda: AT
    routing.router().submit(sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter")
    routing.router().submit(sample_bytes("jugendamt/fall-001.json"), system="jugendamt")
    assert drain(routing, recipients) == {"delivered": 3}
    service = routing.referrals()
    assert service.overdue_measures(today=date(2026, 12, 15)) == []  # due that day: not yet
    late = service.overdue_measures(today=date(2027, 3, 1))
    summary = {(m.owner, m.position): (m.responsible_role, m.follow_up_by, m.due.isoformat(),
                                       tuple(m.recipients)) for m in late}
    assert summary == {
        # "Kundin": the client's own step, followed up by the job centre whose plan it is
        (JC, 1): ("client", JC, "2026-12-15", (SB,)),
        (JC, 2): ("agency", JC, "2027-01-31", (SB,)),
        # "Träger" while no provider is party to the plan: the youth office follows it up
        (JA, 1): ("other", JA, "2027-02-28", (JC, SA)),
    }
    assert [m.position for m in service.overdue_measures(today=date(2027, 1, 1))] == [1]
    assert {(m.owner, m.position) for m in service.overdue_measures(
        today=date(2027, 3, 1), agency=JC)} == {(JC, 1), (JC, 2)}
    assert service.overdue_measures(today=date(2027, 3, 1), agency=SB) == []
    report = late[0].as_report(date(2027, 3, 1))
    assert report["days_overdue"] == 76 and "text" not in report


def test_a_newer_plan_replaces_the_measures_of_the_earlier_one(routing, recipients):
    routing.clock = lambda: AT
    raw = sample_bytes("jobcenter/zuweisung-001.xml")
    routing.router().submit(raw, system="jobcenter")
    newer = raw.replace(b"JC-DU-2026-000123", b"JC-DU-2026-000124").replace(
        b'bis="2026-12-15"', b'bis="2027-06-30"')
    routing.router().submit(newer, system="jobcenter")
    assert drain(routing, recipients) == {"delivered": 2}
    with routing.db.session() as s:
        rows = {(r.message_id, r.position, r.due.isoformat()) for r in s.query(MeasureRow)}
    assert rows == {("JC-DU-2026-000124", 1, "2027-06-30"),
                    ("JC-DU-2026-000124", 2, "2027-01-31")}


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_feedback_on_rabbitmq_and_postgresql(vhost):  # noqa: F811 - the fixture
    """The same path on the production servers: the feedback is published to the job centre's
    queue on RabbitMQ and delivered; the copy's state is in PostgreSQL."""
    from casebridge.db import get_database
    from casebridge.routing.routes import demo_route_table
    from casebridge.routing.runtime import Routing
    from tests.consent.store_fixtures import pg_schema_url
    from tests.routing.conftest import PUSH_URLS, Recipients

    urls = pg_schema_url()
    db_url = next(urls)
    try:
        db = get_database(db_url)
        ConsentStore(db).import_fhir(sample_bytes("consent-fhir/consent-self-001.json"),
                                     source="s")
        routing = Routing(routes=demo_route_table(PUSH_URLS), db=db,
                          url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}", prefix="cbt",
                          clock=lambda: AT)
        recipients = Recipients()
        try:
            routing.router().submit(sample_bytes("jobcenter/zuweisung-001.xml"),
                                    system="jobcenter")
            ConsentStore(db).withdraw("cons-jc-2026-0815", by="Kundin",
                                      at=AT + timedelta(minutes=30))
            routing.clock = lambda: AT + timedelta(hours=1)
            assert drain(routing, recipients) == {"blocked": 1, "delivered": 1}
            [request] = recipients.requests
            [report] = get_adapter("jobcenter").parse(request.content)
            assert report.correlation_id == REFERRAL and str(report.status.status) == "rejected"
            assert states(db)[(JC, REFERRAL, SB)] == ("blocked", "withdrawn")
        finally:
            routing.close()
    finally:
        next(urls, None)



def test_a_copy_dead_lettered_by_a_bug_is_on_record_and_reported(
    routing, recipients, monkeypatch
):
    import casebridge.routing.worker as worker_module

    real = worker_module.render_for

    def broken_for_the_provider(routes, envelope):
        if envelope.recipients == [SB]:
            raise RuntimeError("a bug")
        return real(routes, envelope)

    monkeypatch.setattr(worker_module, "render_for", broken_for_the_provider)
    routing.clock = lambda: AT
    routing.router().submit(sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter")
    assert drain(routing, recipients) == {"dead": 1, "delivered": 1}
    assert states(routing.db)[(JC, REFERRAL, SB)] == ("dead", "internal_error")
    [request] = recipients.requests
    [report] = get_adapter("jobcenter").parse(request.content)
    assert report.correlation_id == REFERRAL and "internal_error" in report.parts[0].content.text


@pytest.mark.postgres
def test_concurrent_plans_of_one_client_replace_each_other_without_errors_on_postgresql():
    """Workers deliver plans of the same client at once (the fault suite's repeated worker
    kills found a StaleDataError here): the read-then-replace is serialised per plan owner and
    client, so every delivery records its plan and one consistent plan remains."""
    import threading

    from casebridge.adapters import get_adapter
    from casebridge.db import get_database
    from casebridge.routing.routes import demo_route_table
    from casebridge.routing.status import record_plan
    from tests.consent.store_fixtures import pg_schema_url

    raw = sample_bytes("jobcenter/zuweisung-001.xml")
    plan = get_adapter("jobcenter").parse(raw, source="test")[0]
    routes = demo_route_table()
    for url in pg_schema_url():
        db = get_database(url)
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def deliver(worker: int, db=db, start=start, errors=errors) -> None:
            start.wait()
            for n in range(12):
                # two workers deliver the two copies of one plan, two others a rival plan
                envelope = plan.model_copy(update={
                    "message_id": f"plan-{worker // 2}-{n}",
                    "created_at": AT + timedelta(minutes=n, seconds=worker // 2)})
                try:
                    with db.session() as session:
                        record_plan(session, envelope, (SB, SA)[worker % 2],
                                    client_id="c-same", routes=routes, at=AT)
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        with db.session() as s:
            rows = list(s.query(MeasureRow))
        assert len({r.message_id for r in rows}) == 1
        assert sorted(r.position for r in rows) == [1, 2]
