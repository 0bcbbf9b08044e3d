"""Job centre adapter: sample mapping per category, round trips, rendering from other systems."""

from __future__ import annotations

from datetime import date

import pytest
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.adapters.jobcenter import SCHEMA
from casebridge.canonical_model import (
    MessageType,
    Note,
    Part,
    PersonName,
    Purpose,
    ReferralStatus,
    StatusInfo,
    TransferEnvelope,
)
from casebridge.errors import RenderError

JC = get_adapter("jobcenter")


def valid(raw: bytes) -> bool:
    return etree.XMLSchema(etree.parse(str(SCHEMA))).validate(etree.fromstring(raw))


def by_category(envelope: TransferEnvelope) -> dict[str, list[Part]]:
    out: dict[str, list[Part]] = {}
    for p in envelope.parts:
        out.setdefault(p.category.value, []).append(p)
    return out


def test_zuweisung_header(sample) -> None:
    (env,) = JC.parse(sample("zuweisung"), source="z.xml")
    assert env.message_id == "JC-DU-2026-000123"
    assert env.message_type == MessageType.REFERRAL and env.purpose == Purpose.REFERRAL
    assert env.sender == "jobcenter-duisburg"
    assert env.recipients == ["suchtberatung-diakonie-du"]
    assert env.created_at.isoformat() == "2026-11-20T09:15:00+01:00"
    assert env.service == "Zuweisung zu einer kommunalen Eingliederungsleistung (§16a SGB II)"
    assert env.source_system == "jobcenter"


def test_zuweisung_categories(sample) -> None:
    (env,) = JC.parse(sample("zuweisung"))
    cats = by_category(env)
    identity = cats["identity"][0].content
    assert [(i.system, i.value) for i in identity.identifiers] == [
        ("urn:casebridge:id:jobcenter-duisburg:kundennummer", "962D123456"),
        ("urn:casebridge:id:jobcenter-duisburg:bg-nummer", "23501//0012345"),
    ]
    assert identity.name == PersonName(family="Yılmaz", given=["Ayşe"], birth_name="Demir")
    assert identity.birth_date == date(1988, 4, 12) and identity.sex == "female"
    contact = cats["contact"][0].content
    assert contact.addresses[0].street == "Musterstraße" and contact.addresses[0].city == "Duisburg"
    assert [(t.system, t.value) for t in contact.telecom] == [
        ("phone", "0203 555 0142"),
        ("email", "a.yilmaz@example.org"),
    ]
    household = cats["household"][0].content
    assert household.members[0].role == "child" and household.members[0].role_label == "Kind"
    assert cats["benefits"][0].content.benefit_type == "Bürgergeld"
    assert cats["benefits"][0].content.granted_until == date(2027, 3, 31)
    assert [p.content.label for p in cats["education"]] == ["Schulabschluss", "Berufsabschluss"]
    job = cats["employment"][0].content
    assert (job.text, job.period_start, job.period_end) == ("Helferin Lager", "2019-01", "2022-06")
    assert cats["health"][0].content.text.startswith("Eingeschränkte Belastbarkeit")
    assert cats["addiction"][0].content.label == "sucht"
    assert cats["debts"][0].content.text == "Mietschulden ca. 2.400 EUR"
    plan = cats["support_plan"][0].content.plan
    assert plan.as_of == date(2026, 11, 5) and [g.number for g in plan.goals] == [1, 2]
    assert plan.measures[0].responsible == "Kundin" and plan.measures[0].due == date(2026, 12, 15)
    notes = cats["case_notes"]
    assert Note(text="Kundin wünscht Termine vormittags (Kind in der Schule).") in [
        p.content for p in notes
    ]
    assert any(p.content.text == "Team 612" for p in notes)  # sachbearbeitung kept, not lost


def test_normalised_name_matches_the_social_office_spelling(sample) -> None:
    (jc,) = JC.parse(sample("zuweisung"))
    (sa,) = get_adapter("sozialamt").parse(sample("fallmitteilung"))
    jc_name = by_category(jc)["identity"][0].content.name
    sa_name = by_category(sa)["identity"][0].content.name
    assert jc_name.display() != sa_name.display()  # kept as written
    assert jc_name.normalised() == sa_name.normalised()


@pytest.mark.parametrize(
    ("code", "purpose", "mtype"),
    [
        ("FK", Purpose.CASE_CONFERENCE, MessageType.CASE_CONFERENCE),
        ("KP", Purpose.JOINT_PLANNING, MessageType.PLAN_UPDATE),
    ],
)
def test_zweck_codes(sample, code, purpose, mtype) -> None:
    raw = sample("zuweisung").replace(b'schluessel="ZUW"', f'schluessel="{code}"'.encode())
    (env,) = JC.parse(raw)
    assert (env.purpose, env.message_type) == (purpose, mtype)


@pytest.mark.parametrize(
    ("kategorie", "category"),
    [
        ("gesundheit", "health"),
        ("sucht", "addiction"),
        ("schulden", "debts"),
        ("wohnen", "housing"),
        ("familie", "household"),
        ("sonstige", "case_notes"),
    ],
)
def test_vermittlungshemmnis_categories(sample, kategorie, category) -> None:
    raw = sample("zuweisung").replace(b'kategorie="schulden"', f'kategorie="{kategorie}"'.encode())
    (env,) = JC.parse(raw)
    part = next(
        p
        for p in env.parts
        if p.content.kind == "statement" and p.content.text == "Mietschulden ca. 2.400 EUR"
    )
    assert part.category == category and part.content.label == kategorie


def test_rueckmeldung(sample) -> None:
    (env,) = JC.parse(sample("rueckmeldung"))
    assert env.message_type == MessageType.STATUS_UPDATE
    assert env.purpose == Purpose.SERVICE_DELIVERY
    assert env.correlation_id == "JC-DU-2026-000123"
    assert env.status == StatusInfo(
        status=ReferralStatus.IN_PROGRESS, effective_on=date(2026, 12, 1), native_status="begonnen"
    )
    (identity,) = env.parts
    # The number is the receiving job centre's, not the sending provider's.
    assert identity.content.identifiers[0].system == (
        "urn:casebridge:id:jobcenter-duisburg:kundennummer"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("eingegangen", "received"),
        ("angenommen", "accepted"),
        ("abgelehnt", "rejected"),
        ("begonnen", "in_progress"),
        ("abgebrochen", "cancelled"),
        ("beendet", "completed"),
    ],
)
def test_rueckmeldung_status_codes(sample, code, status) -> None:
    (env,) = JC.parse(sample("rueckmeldung").replace(b">begonnen<", f">{code}<".encode()))
    assert env.status is not None and env.status.status == status
    out = JC.render(env)
    assert f">{code}<".encode() in out and JC.parse(out) == [env]


@pytest.mark.parametrize("name", ["zuweisung", "rueckmeldung"])
def test_samples_round_trip_exactly_and_validate(sample, name) -> None:
    (env,) = JC.parse(sample(name))
    out = JC.render(env)
    assert valid(out)
    assert b"casebridge-carrier" not in out  # everything fits the native elements
    assert JC.parse(out) == [env]


def test_repeated_elements_and_optional_parts_absent(sample) -> None:
    raw = sample("zuweisung")
    raw = raw.replace(
        b"  <jc:Vermerk>", b"  <jc:Vermerk>Erster Vermerk</jc:Vermerk>\n  <jc:Vermerk>"
    )
    raw = raw.replace(
        b"</jc:Leistung>",
        b"</jc:Leistung>\n  <jc:Leistung><jc:Art>Mehrbedarf</jc:Art></jc:Leistung>",
    )
    start, end = raw.index(b"  <jc:Bedarfsgemeinschaft>"), raw.index(b"  <jc:Leistung>")
    raw = raw[:start] + raw[end:]
    (env,) = JC.parse(raw)
    cats = by_category(env)
    assert "household" not in cats
    assert [p.content.benefit_type for p in cats["benefits"]] == ["Bürgergeld", "Mehrbedarf"]
    assert sum(p.content.kind == "note" for p in cats["case_notes"]) == 2
    assert JC.parse(JC.render(env)) == [env]


def test_minimal_zuweisung() -> None:
    raw = b"""<?xml version="1.0" encoding="UTF-8"?>
<Zuweisung xmlns="urn:de:jobcenter:schnittstelle:zuweisung:2">
  <Kopf><NachrichtenID>JC-1</NachrichtenID><ErstelltAm>2026-01-02T03:04:05</ErstelltAm>
    <Absender dienststelle="jobcenter-duisburg"/><Empfaenger dienststelle="sozialamt-duisburg"/>
    <Zweck schluessel="KP"/></Kopf>
  <Kunde><Kundennummer>1</Kundennummer></Kunde>
</Zuweisung>"""
    (env,) = JC.parse(raw)
    assert env.created_at.utcoffset().total_seconds() == 3600  # naive = Europe/Berlin
    assert env.service is None and len(env.parts) == 1


def test_render_social_office_message_for_the_job_centre(sample) -> None:
    (sa,) = get_adapter("sozialamt").parse(sample("fallmitteilung"))
    out = JC.render(sa)
    assert valid(out)
    root = etree.fromstring(out)
    ns = {"jc": "urn:de:jobcenter:schnittstelle:zuweisung:2"}
    assert root.findtext("jc:Kopf/jc:Zweck", namespaces=ns) == ""
    assert root.find("jc:Kopf/jc:Zweck", ns).get("schluessel") == "FK"
    assert root.findtext("jc:Kunde/jc:Person/jc:Familienname", namespaces=ns) == "Yilmaz"
    kategorien = [e.get("kategorie") for e in root.iterfind(".//jc:Vermittlungshemmnis", ns)]
    assert kategorien == ["wohnen", "schulden", "gesundheit"]
    notes = [e.text for e in root.iterfind("jc:Vermerk", ns)]
    # Finances and the case file have no element: German prose under their heading.
    assert "[Finanzen] Einkommen ausschließlich Bürgergeld" in notes
    assert any(n.startswith("[Leistungen] Akte 50-31-2026/0457") for n in notes)
    assert not any("casebridge" in n or "{" in n for n in notes)
    (back,) = JC.parse(out)
    assert back.conference == sa.conference and back.message_type == sa.message_type
    # Every part keeps its category (identity and contact details the Kunde element cannot
    # hold follow in a note of their own category).
    assert {p.category for p in back.parts} == {p.category for p in sa.parts}


def _status(env: TransferEnvelope, status: str, **update) -> TransferEnvelope:
    return env.model_copy(update={"status": StatusInfo(status=status), **update})


def test_failed_status_is_written_as_the_nearest_code(sample) -> None:
    (env,) = JC.parse(sample("rueckmeldung"))
    failed = _status(env, "failed")
    out = JC.render(failed)
    assert b">abgebrochen<" in out and valid(out) and b"casebridge" not in out
    (back,) = JC.parse(out)
    # Both end the referral; the format knows no other word for it.
    assert back.status.status == ReferralStatus.CANCELLED


def test_status_update_to_several_recipients_is_refused(sample) -> None:
    (env,) = JC.parse(sample("rueckmeldung"))
    with pytest.raises(RenderError, match="one Empfaenger"):
        JC.render(env.model_copy(update={"recipients": ["jobcenter-duisburg", "jobcenter-essen"]}))


def test_purpose_without_zweck_code_is_refused(sample) -> None:
    (env,) = JC.parse(sample("zuweisung"))
    with pytest.raises(RenderError) as exc:
        JC.render(env.model_copy(update={"purpose": Purpose.BENEFIT_DECISION}))
    assert exc.value.lines() == [
        "purpose: 'benefit_decision' has no Zweck code in the job centre format "
        "(only referral, case_conference, joint_planning, child_protection)"
    ]


def test_text_xml_cannot_hold_is_a_render_error(sample) -> None:
    (env,) = JC.parse(sample("zuweisung"))
    bad = env.model_copy(update={"service": "bell \x07"})
    with pytest.raises(RenderError, match="not representable"):
        JC.render(bad)
