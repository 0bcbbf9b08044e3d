"""Every DPO page against the demo data, through the gateway app (TestClient)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from casebridge.consent.store import AuditEntryRow, ConsentStore
from casebridge.db import get_database
from tests.console.conftest import SignIn
from tests.console.html import links, page, table, text
from tests.console.seed import JUSTIFICATION, Seeded

#: What the demo scenario and the statutory transfer produce, per edge, by fate:
#: (permit, partial, block, override).
EXPECTED_FLOWS = {
    "jobcenter-duisburg → jugendamt-duisburg": (0, 0, 0, 1),
    "jobcenter-duisburg → suchtberatung-diakonie-du": (0, 1, 0, 0),
    "jugendamt-duisburg → jobcenter-duisburg": (0, 1, 1, 0),
    "jugendamt-duisburg → sozialamt-duisburg": (0, 1, 1, 0),
    "sozialamt-duisburg → jobcenter-duisburg": (0, 0, 1, 0),
    "sozialamt-duisburg → jugendamt-duisburg": (0, 0, 1, 0),
    "suchtberatung-diakonie-du → jobcenter-duisburg": (1, 0, 0, 0),
}


def flow_counts(html: str) -> dict[str, tuple[int, ...]]:
    """The flows table's rows: "sender-id → recipient-id" → counts by fate."""
    rows = table(html, "Transfers per route")
    return {" ".join(r[0].split()[-3:]): tuple(int(c) for c in r[1:5]) for r in rows[1:-1]}


def test_flows_table_counts_each_transfer_once_by_its_fate(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")
    answer = client.get("/console/flows")
    assert answer.status_code == 200
    rows = table(answer.text, "Transfers per route")
    assert rows[0][1:] == ["✓ in full", "◐ partial", "✕ blocked", "§ statutory", "Total"]
    # a route by the agencies' names, their ids beneath
    assert flow_counts(answer.text) == EXPECTED_FLOWS
    assert rows[1][0] == ("Jobcenter Duisburg → Jugendamt Duisburg "
                          "jobcenter-duisburg → jugendamt-duisburg")
    assert rows[-1] == ["Total", "1", "3", "4", "1", "9"]


def test_the_diagram_has_a_node_per_agency_and_a_link_per_edge(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/flows")
    svg = page(answer.text).xpath("//*[local-name()='svg']")[0]
    nodes = svg.xpath(".//*[local-name()='g'][@class='node']")
    assert len(nodes) == 4  # the debt counselling service had no traffic
    edges = svg.xpath(".//*[local-name()='a'][@class='edge']")
    assert len(edges) == len(EXPECTED_FLOWS)
    labels = {e.get("aria-label") for e in edges}
    # the visible counts first (only those that are not 0), then every count in words
    assert ("§1 – Jobcenter Duisburg → Jugendamt Duisburg: released in full 0, partially "
            "released 0, blocked 0, statutory (without consent) 1") in labels
    for edge in edges:
        query = parse_qs(urlsplit(edge.get("href")).query)
        assert {"sender", "recipient", "from", "to"} <= set(query)


def test_an_edge_lists_all_its_decisions(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")
    flows = client.get("/console/flows").text
    href = next(h for h in links(flows) if "sender=jugendamt-duisburg" in h
                and "recipient=jobcenter-duisburg" in h)
    answer = client.get(href)
    assert answer.status_code == 200
    rows = table(answer.text, "Decisions")[1:]
    # two messages: each decided on arrival and again at delivery
    assert [r[0] for r in rows] == ["#13", "#11", "#7", "#5"]
    outcomes = [r[4] for r in rows]
    assert outcomes == ["blocked", "partially released", "released in full",
                        "partially released"]
    assert "consent was withdrawn" in rows[0][6]


def test_a_period_without_traffic_shows_nothing(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/flows?from=2020-01-01&to=2020-01-31")
    rows = table(answer.text, "Transfers per route")
    assert rows[1:] == [["No entries for this selection."]]


def test_a_malformed_period_is_an_html_error_not_a_500(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/flows?from=yesterday")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "From/to: a date as YYYY-MM-DD" in text(answer.text)


def test_withheld_lists_what_from_whom_and_why(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")
    rows = table(client.get("/console/withheld").text, "What was withheld")[1:]
    # blocked, partial and statutory decisions, newest first
    assert [r[0] for r in rows] == ["#16", "#15", "#14", "#13", "#12", "#11", "#6", "#5", "#4",
                                    "#3", "#1"]
    first = rows[-1]
    # agencies by their names from the route table, ids beside them
    assert first[2] == ("Jobcenter Duisburg jobcenter-duisburg → "
                        "Suchtberatung der Diakonie Duisburg suchtberatung-diakonie-du")
    assert "§ 4 KKG – notifying the youth office to protect a child" in rows[0][4]
    assert "social benefits: the consent does not cover this kind of data" in first[6]


def test_withheld_filters_by_reason_agency_purpose_and_period(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")

    def seqs(query: str) -> list[str]:
        answer = client.get(f"/console/withheld?{query}")
        assert answer.status_code == 200, answer.text
        return [r[0] for r in table(answer.text, "What was withheld")[1:]
                if r[0].startswith("#")]

    assert seqs("reason=withdrawn") == ["#14", "#13"]
    assert seqs("reason=sender_not_covered") == ["#4", "#3"]
    assert seqs("agency=sozialamt-duisburg") == ["#14", "#12", "#6", "#4", "#3"]
    assert seqs("purpose=referral") == ["#1"]
    assert seqs("agency=sozialamt-duisburg&reason=withdrawn") == ["#14"]
    assert seqs("from=2020-01-01&to=2020-12-31") == []
    assert seqs("outcome=block") == ["#14", "#13", "#4", "#3"]
    assert seqs("outcome=partial") == ["#12", "#11", "#6", "#5", "#1"]
    assert seqs("outcome=override") == ["#16", "#15"]
    assert seqs("outcome=block&agency=sozialamt-duisburg") == ["#14", "#4", "#3"]
    assert client.get("/console/withheld?reason=because").status_code == 422
    assert client.get("/console/withheld?outcome=permit").status_code == 422


def test_withheld_links_to_the_audit_entry_with_its_hashes(
    signed_in: SignIn, seeded: Seeded
) -> None:
    client = signed_in("dana-dpo")
    assert "/console/audit/3" in links(client.get("/console/withheld").text)
    answer = client.get("/console/audit/3")
    with get_database(seeded.database_url).session() as session:
        row = session.get(AuditEntryRow, 3)
        assert row is not None
        stored_hash, stored_prev = row.hash, row.prev_hash
    shown = text(answer.text)
    assert "Audit entry 3" in shown
    assert stored_hash in shown and stored_prev in shown
    assert client.get("/console/audit/999").status_code == 404
    assert client.get("/console/audit/x1").status_code == 422


def test_overrides_show_legal_basis_and_justification(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/overrides")
    shown = text(answer.text)
    assert "Awaiting review (1)" in shown and "Reviewed (0)" in shown
    assert "kkg-4" in shown
    assert JUSTIFICATION in shown
    assert "§ 4 KKG – notifying the youth office to protect a child" in shown
    card = page(answer.text).get_element_by_id("o15")
    assert ("Jobcenter Duisburg jobcenter-duisburg → Jugendamt Duisburg jugendamt-duisburg"
            in " ".join(card.text_content().split()))
    assert "#16" in card.text_content()  # the delivery-time decision of the same transfer


def test_report_speaks_to_the_client_in_german_and_english(
    signed_in: SignIn, seeded: Seeded
) -> None:
    client = signed_in("dana-dpo", lang="de")
    german = client.get(f"/console/report?client_id={seeded.client_id}")
    assert german.status_code == 200
    shown = text(german.text)
    assert "Auskunft nach Art. 15 DSGVO" in shown
    assert ("hat Jobcenter Duisburg folgende Daten über Sie an Suchtberatung der Diakonie "
            "Duisburg übermittelt") in shown
    assert ("Grundlage: § 4 KKG — Mitteilung an das Jugendamt zum Schutz eines Kindes, ohne "
            "Einwilligung.") in shown
    assert "kkg-4" not in shown
    # each transfer once (decided on arrival and at delivery): three went, two were stopped
    lists = page(german.text).xpath("//ol[@class='sentences']")
    assert [len(ol.findall("li")) for ol in lists] == [3, 2]
    assert ("Nicht mit übermittelt: Sozialleistungen, Notizen der Fallbearbeitung"
            in lists[0].findall("li")[0].text_content())
    assert "die Einwilligung erlaubt diesem Absender keine Übermittlung" in \
        lists[1].text_content()
    english = client.get(f"/console/report?client_id={seeded.client_id}&lang=en")
    shown = text(english.text)
    assert "Jobcenter Duisburg passed the following data about you to Suchtberatung der " \
           "Diakonie Duisburg" in shown
    assert 'lang="en"' in english.text
    assert "@media print" in client.get("/console/static/console.css").text


def test_report_for_an_unknown_client_is_404(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo").get("/console/report?client_id=c-nobody")
    assert answer.status_code == 404
    assert "not known to casebridge" in text(answer.text)


def test_consents_show_history_and_withdrawal(signed_in: SignIn, seeded: Seeded) -> None:
    record = ConsentStore(get_database(seeded.database_url)).require("cons-ja-2026-0311")
    answer = signed_in("dana-dpo").get(f"/console/consents?client_id={record.client_id}")
    assert answer.status_code == 200
    shown = text(answer.text)
    assert "cons-ja-2026-0311 – withdrawn" in shown
    history = [r for r in table(answer.text, "History") if r and r[1] == "withdrawn"]
    assert history and "Ayşe Yılmaz (mother)" in history[0][2]
    assert signed_in("dana-dpo").get("/console/consents?client_id=c-none").status_code == 404


def test_ops_view_for_administrators(signed_in: SignIn) -> None:
    answer = signed_in("adam-admin").get("/console/ops")
    assert answer.status_code == 200
    rows = {r[0].split()[-1]: r for r in table(answer.text, "Deliveries per recipient")[1:]}
    assert rows["jobcenter-duisburg"][0] == "Jobcenter Duisburg jobcenter-duisburg"
    # header: recipient, depth, queued, delivered, blocked, dead, outbox
    assert rows["jobcenter-duisburg"][3] == "2"  # case file and status update delivered
    assert rows["jobcenter-duisburg"][4] == "1"  # the update blocked after the withdrawal
    assert rows["jobcenter-duisburg"][1] == "0"  # the broker queue is empty
    assert rows["suchtberatung-diakonie-du"][6] == "0"  # fetched and acknowledged


def test_home_sends_each_role_to_its_start(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo")
    assert client.get("/console/").headers["location"] == "/console/flows"


def test_audit_events_of_the_console_hold_no_payload(signed_in: SignIn, seeded: Seeded) -> None:
    with get_database(seeded.database_url).session() as session:
        details = [json.loads(r.details) for r in session.query(AuditEntryRow)]
    assert all(JUSTIFICATION not in json.dumps(d) for d in details)
