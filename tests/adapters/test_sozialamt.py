"""Social office adapter: files of several messages, mapping per category, Latin-1 rendering."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.adapters.sozialamt import SCHEMA
from casebridge.canonical_model import (
    Category,
    IdentityData,
    MessageType,
    Part,
    PersonName,
    Purpose,
    TransferEnvelope,
)
from casebridge.errors import RenderError

SA = get_adapter("sozialamt")
BERLIN = ZoneInfo("Europe/Berlin")


def valid(raw: bytes) -> bool:
    return etree.XMLSchema(etree.parse(str(SCHEMA))).validate(etree.fromstring(raw))


def by_category(envelope: TransferEnvelope) -> dict[str, list[Part]]:
    out: dict[str, list[Part]] = {}
    for p in envelope.parts:
        out.setdefault(p.category.value, []).append(p)
    return out


def test_sample_header(sample) -> None:
    (env,) = SA.parse(sample("fallmitteilung"), source="f.xml")
    assert env.message_id == "SA-DU-50-2026-0457"
    assert env.message_type == MessageType.CASE_CONFERENCE
    assert env.purpose == Purpose.CASE_CONFERENCE
    assert env.sender == "sozialamt-duisburg"
    assert env.recipients == ["jobcenter-duisburg", "jugendamt-duisburg"]
    assert env.created_at == datetime(2026, 11, 21, 10, 2, tzinfo=BERLIN)
    assert env.conference is not None
    assert env.conference.scheduled_at == datetime(2026, 12, 3, 9, 30, tzinfo=BERLIN)
    assert env.conference.scheduled_at.utcoffset().total_seconds() == 3600


def test_sample_categories(sample) -> None:
    (env,) = SA.parse(sample("fallmitteilung"))
    cats = by_category(env)
    identity = cats["identity"][0].content
    assert isinstance(identity, IdentityData)
    assert identity.name == PersonName(family="Yilmaz", given=["Ayse"])  # as written
    assert identity.birth_date == date(1988, 4, 12)
    assert [(i.system, i.value) for i in identity.identifiers] == [
        ("urn:casebridge:id:sozialamt-duisburg:aktenzeichen", "50-31-2026/0457")
    ]
    assert cats["contact"][0].content.addresses[0].text == "Musterstr. 12a, 47053 Duisburg"
    case_file = cats["benefits"][0].content.case_file
    assert (case_file.agency, case_file.local_case_id, case_file.legal_basis) == (
        "sozialamt-duisburg",
        "50-31-2026/0457",
        "SGB XII",
    )
    assert case_file.help_type.startswith("Hilfe zur Überwindung")
    assert cats["housing"][0].content.text.startswith("Räumungsklage")
    assert cats["finances"][0].content.label == "Finanzen"
    assert cats["debts"][0].content.text.startswith("Mietschulden 2.412,50")
    assert cats["health"][0].content.text.startswith("Depressive Episode")
    # A Vermerk that mentions a consent is a note, never a consent.
    (note,) = cats["case_notes"]
    assert note.content.kind == "note" and "Einwilligung" in note.content.text


@pytest.mark.parametrize(
    ("bereich", "category"),
    [
        ("Wohnen", "housing"),
        ("Finanzen", "finances"),
        ("Schulden", "debts"),
        ("Gesundheit", "health"),
        ("Sucht", "addiction"),
        ("Arbeit", "employment"),
        ("Bildung", "education"),
        ("Familie", "household"),
    ],
)
def test_angabe_bereiche(sample, bereich, category) -> None:
    raw = sample("fallmitteilung").replace(b'bereich="Wohnen"', f'bereich="{bereich}"'.encode())
    (env,) = SA.parse(raw)
    part = next(p for p in env.parts if p.source.endswith("Angabe[1]"))
    assert part.category == category and part.content.label == bereich


@pytest.mark.parametrize(
    ("anlass", "purpose", "mtype"),
    [
        ("Zuweisung", Purpose.REFERRAL, MessageType.REFERRAL),
        ("Hilfeplanung", Purpose.JOINT_PLANNING, MessageType.PLAN_UPDATE),
    ],
)
def test_anlass(sample, anlass, purpose, mtype) -> None:
    raw = sample("fallmitteilung").replace(b">Fallkonferenz<", f">{anlass}<".encode())
    (env,) = SA.parse(raw)
    assert (env.purpose, env.message_type) == (purpose, mtype)


def test_sgb_ix_case_file_is_health(sample) -> None:
    raw = sample("fallmitteilung").replace(b"<Rechtsgebiet>SGB XII", b"<Rechtsgebiet>SGB IX")
    (env,) = SA.parse(raw)
    assert [p.category for p in env.parts if p.content.kind == "case_file"] == [Category.HEALTH]


def test_file_with_several_messages_and_optional_parts_absent(sample) -> None:
    raw = sample("fallmitteilung")
    second = (
        b'  <Fallmitteilung id="SA-2">\n    <Zeitpunkt>01.02.2027</Zeitpunkt>\n'
        b"    <Von>sozialamt-duisburg</Von>\n    <An>jobcenter-duisburg</An>\n"
        b"    <Anlass>Zuweisung</Anlass>\n    <Person><Name>M\xfcller</Name></Person>\n"
        b"    <Vermerk>eins</Vermerk>\n    <Vermerk>zwei</Vermerk>\n"
        b"  </Fallmitteilung>\n</Fallmitteilungen>"
    )
    raw = raw.replace(b"</Fallmitteilungen>", second)
    first, env = SA.parse(raw)
    assert first.message_id == "SA-DU-50-2026-0457"
    assert env.message_id == "SA-2" and env.conference is None
    assert env.created_at == datetime(2027, 2, 1, 0, 0, tzinfo=BERLIN)
    assert [p.category for p in env.parts] == ["identity", "case_notes", "case_notes"]
    assert env.parts[0].content.name == PersonName(family="Müller")
    out = SA.render_all([first, env])
    assert valid(out) and SA.parse(out) == [first, env]


def test_sample_round_trips_exactly_in_latin1(sample) -> None:
    (env,) = SA.parse(sample("fallmitteilung"))
    out = SA.render(env)
    assert out.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert b"R\xe4umungsklage" in out  # Latin-1 bytes, not UTF-8
    assert valid(out) and b"casebridge-carrier" not in out
    assert SA.parse(out) == [env]


def test_characters_outside_latin1_become_references(sample) -> None:
    (jc,) = get_adapter("jobcenter").parse(sample("zuweisung"))
    out = SA.render(jc)
    assert b"<Name>Y&#305;lmaz, Ay&#351;e</Name>" in out
    out.decode("latin-1")
    (back,) = SA.parse(out)
    identity = next(p for p in back.parts if p.category == "identity").content
    assert identity.name.family == "Yılmaz"  # the full identity came back from its carrier


def test_job_centre_referral_rendered_for_the_social_office(sample) -> None:
    (jc,) = get_adapter("jobcenter").parse(sample("zuweisung"))
    out = SA.render(jc)
    assert valid(out)
    root = etree.fromstring(out)
    ns = {"s": "urn:de:sozialamt:fallmitteilung:1"}
    bereiche = [a.get("bereich") for a in root.iterfind(".//s:Angabe", ns)]
    assert bereiche == ["Bildung", "Bildung", "Gesundheit", "Sucht", "Schulden"]
    assert root.findtext(".//s:Anlass", namespaces=ns) == "Zuweisung"
    notes = [v.text for v in root.iterfind(".//s:Vermerk", ns)]
    assert "[Leistungen] Bürgergeld, bewilligt bis 31.03.2027" in notes
    assert "Kundin wünscht Termine vormittags (Kind in der Schule)." in notes
    assert not any("casebridge" in n or "{" in n for n in notes)
    assert root.find(".//s:Hilfeplan", ns) is not None  # the plan in its own field (1.5)
    (back,) = SA.parse(out)
    assert back.created_at == jc.created_at
    assert {p.category for p in back.parts} == {p.category for p in jc.parts}


def test_latin1_text_that_looks_like_utf8_is_written_as_references(sample) -> None:
    (env,) = SA.parse(sample("fallmitteilung"))
    tricky = env.model_copy(
        update={
            "parts": [
                p.model_copy(
                    update={"content": p.content.model_copy(update={"text": "Ã¤ \x85 und"})}
                )
                if p.content.kind == "note"
                else p
                for p in env.parts
            ]
        }
    )
    out = SA.render(tricky)
    assert out.isascii() and b"&#195;&#164;" in out
    assert SA.parse(out) == [tricky]


def test_status_update_has_no_fallmitteilung(sample) -> None:
    (env,) = get_adapter("jobcenter").parse(sample("rueckmeldung"))
    with pytest.raises(RenderError, match="status"):
        SA.render(env)


def test_purpose_without_anlass_is_refused(sample) -> None:
    (env,) = SA.parse(sample("fallmitteilung"))
    with pytest.raises(RenderError) as exc:
        SA.render(env.model_copy(update={"purpose": Purpose.BENEFIT_DECISION, "conference": None}))
    assert "'benefit_decision' has no Anlass" in exc.value.lines()[0]
