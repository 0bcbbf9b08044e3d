"""Youth-office adapter: the sample, mapping per category, entrusted notes, bad input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import jsonschema
import pytest

from casebridge.adapters import get_adapter
from casebridge.adapters.jugendamt import JugendamtAdapter
from casebridge.adapters.jugendamt.validate import schema
from casebridge.canonical_model import (
    HouseholdData,
    HouseholdMember,
    IdentityData,
    Note,
    Part,
    Person,
    PersonName,
    PersonRelation,
    Statement,
    TransferEnvelope,
)
from casebridge.errors import (
    AdapterError,
    InputTooLarge,
    MappingError,
    ParseError,
    RenderError,
    SchemaError,
)

ADAPTER = JugendamtAdapter()


def parse_doc(doc: dict) -> TransferEnvelope:
    [envelope] = ADAPTER.parse(json.dumps(doc).encode(), source="fall.json")
    return envelope


@pytest.fixture
def fall(sample) -> dict:
    return json.loads(sample("fall"))


def by_source(envelope: TransferEnvelope) -> dict[str, Part]:
    return {p.source or "": p for p in envelope.parts}


def test_registry_gives_the_youth_office_adapter() -> None:
    adapter = get_adapter("jugendamt")
    assert isinstance(adapter, JugendamtAdapter)
    assert adapter.agency_kind == "youth_office"
    assert adapter.media_types == ("application/json",)


def test_sample_maps_every_field_to_its_category(sample) -> None:
    [env] = ADAPTER.parse(sample("fall"))
    assert env.sender == "jugendamt-duisburg"
    assert env.recipients == ["jobcenter-duisburg", "sozialamt-duisburg"]
    assert env.purpose == "case_conference" and env.message_type == "case_conference"
    assert env.created_at == datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    parts = by_source(env)
    assert {s: p.category for s, p in parts.items()} == {
        "/fall": "support_plan",
        "/fall/kind": "identity",
        "/fall/kind/schule": "education",
        "/fall/sorgeberechtigte": "household",
        "/fall/hilfeplan": "support_plan",
        "/fall/kinderschutz": "child_protection",
        "/fall/notizen/0": "case_notes",
        "/fall/notizen/1": "entrusted",
    }
    child = parts["/fall/kind"].content
    assert isinstance(child, IdentityData)
    assert child.name is not None and child.name.family == "Yılmaz"  # kept as written
    assert child.name.normalised() == "yilmaz, emre"
    assert [(i.system, i.value) for i in child.identifiers] == [
        ("urn:casebridge:id:jugendamt-duisburg:fallnummer", "JA-51-2026-1189")]
    household = parts["/fall/sorgeberechtigte"].content
    [mother] = household.members  # type: ignore[union-attr]
    assert (mother.role, mother.role_label, mother.has_custody) == ("mother", "Mutter", True)
    assert mother.person.name.given == ["Ayşe"]
    assert mother.person.addresses[0].city == "Duisburg"
    plan = parts["/fall/hilfeplan"].content.plan  # type: ignore[union-attr]
    assert [g.sub_goals for g in plan.goals] == [["Fehlzeiten unter 5 Tage je Halbjahr"], []]
    assert plan.measures[0].goal == 1 and plan.measures[0].responsible == "Träger"
    entrusted = parts["/fall/notizen/1"]
    assert entrusted.entrusted_by is not None
    assert entrusted.entrusted_by.relation == PersonRelation.SELF
    assert parts["/fall/kinderschutz"].content.endangerment_assessed is False  # type: ignore[union-attr]
    case_file = parts["/fall"].content.case_file  # type: ignore[union-attr]
    assert (case_file.local_case_id, str(case_file.opened_on)) == ("JA-51-2026-1189", "2026-09-01")


def test_sample_round_trips(sample) -> None:
    [env] = ADAPTER.parse(sample("fall"))
    rendered = ADAPTER.render(env)
    assert ADAPTER.parse(rendered) == [env]
    jsonschema.Draft202012Validator(schema()).validate(json.loads(rendered))
    # message ids are derived from the bytes when the export has none: stable, no case number
    assert ADAPTER.parse(sample("fall"))[0].message_id == env.message_id
    assert "JA-51" not in env.message_id


def test_schema_is_valid_draft_2020_12_and_accepts_the_sample(sample) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(json.loads(sample("fall")))


@pytest.mark.parametrize(("word", "relation", "name"), [
    ("kind", "self", None), ("mutter", "mother", None), ("vater", "father", None),
    ("sorgeberechtigte", "legal_guardian", None), ("Mutter", "mother", None),
    ("Oma Ilse", "other", "Oma Ilse"),
    ("Herr Schmidt (Nachbar)", "other", "Herr Schmidt (Nachbar)"),
])
def test_entrusted_notes_name_who_entrusted_them(fall, word, relation, name) -> None:
    fall["fall"]["notizen"] = [{"datum": "2026-10-20", "text": "Anvertraut.",
                                "anvertraut_von": word}]
    part = by_source(parse_doc(fall))["/fall/notizen/0"]
    assert part.category == "entrusted"
    assert part.entrusted_by is not None and part.entrusted_by.relation == relation
    assert (part.entrusted_by.name.display() if part.entrusted_by.name else None) == name
    env = parse_doc(fall)
    assert ADAPTER.parse(ADAPTER.render(env)) == [env]


@pytest.mark.parametrize(("zweck", "purpose", "message_type"), [
    ("zuweisung", "referral", "referral"),
    ("fallkonferenz", "case_conference", "case_conference"),
    ("hilfeplanung", "joint_planning", "plan_update"),
])
def test_zweck_maps_to_purpose(fall, zweck, purpose, message_type) -> None:
    fall["zweck"] = zweck
    env = parse_doc(fall)
    assert (env.purpose, env.message_type) == (purpose, message_type)
    assert env.statutory is None


def test_minimal_export_without_optional_parts(fall) -> None:
    fall["fall"] = {"kind": {"nachname": "Öztürk"}}
    env = parse_doc(fall)
    assert [p.category for p in env.parts] == ["identity"]
    assert ADAPTER.parse(ADAPTER.render(env)) == [env]


def _with_child(envelope: TransferEnvelope) -> TransferEnvelope:
    child = HouseholdMember(role="child", role_label="Kind", person=Person(
        name=PersonName(family="Yılmaz", given=["Emre"]), birth_date=date(2012, 2, 3)))
    household = Part(id="p-household", category="household",
                     content=HouseholdData(members=[child]))
    return envelope.model_copy(update={"recipients": ["jugendamt-duisburg"],
                                       "parts": [*envelope.parts, household]})


def test_an_adult_client_without_a_child_cannot_be_rendered() -> None:
    envelope = TransferEnvelope.model_validate_json(_example_bytes())
    envelope = envelope.model_copy(update={"recipients": ["jugendamt-duisburg"]})
    with pytest.raises(RenderError, match=r"adult.*fall\.kind must be a minor"):
        ADAPTER.render(envelope)


def test_foreign_envelope_keeps_every_part_and_its_category() -> None:
    envelope = _with_child(TransferEnvelope.model_validate_json(_example_bytes()))
    doc = json.loads(ADAPTER.render(envelope))
    jsonschema.Draft202012Validator(schema()).validate(doc)
    # the child is fall.kind; the adult client is among the guardians, in full in a note
    assert doc["fall"]["kind"] == {"vorname": "Emre", "nachname": "Yılmaz",
                                   "geburtsdatum": "2012-02-03"}
    assert doc["fall"]["sorgeberechtigte"][0]["vorname"] == "Ayşe"
    texts = [n["text"] for n in doc["fall"]["notizen"]]
    assert "[Sucht] Alkoholproblematik, selbst angegeben" in texts
    assert not any("casebridge" in t or "{" in t for t in texts)
    [back] = ADAPTER.parse(json.dumps(doc).encode())
    assert {p.category for p in back.parts} == {p.category for p in envelope.parts}
    addiction = [p for p in back.parts if p.category == "addiction"]
    assert [p.content.text for p in addiction] == ["Alkoholproblematik, selbst angegeben"]
    assert (back.message_id, back.service) == (envelope.message_id, envelope.service)


def _example_bytes() -> bytes:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return (root / "canonical_model" / "examples" / "referral-envelope.json").read_bytes()


def test_a_native_note_that_looks_like_a_carried_part_stays_a_note(fall) -> None:
    env = parse_doc(fall)
    sneaky = Part(id="note-x", category="case_notes", content=Note(
        text='Hallo\n[casebridge-teil] {"teil": 1}'), source="/fall/notizen/2")
    env = env.model_copy(update={"parts": [*env.parts, sneaky]})
    back = ADAPTER.parse(ADAPTER.render(env))[0]
    assert {p.id: p for p in back.parts}["note-x"].content == sneaky.content


def test_status_updates_and_other_purposes_cannot_be_rendered(fall) -> None:
    env = parse_doc(fall)
    with pytest.raises(RenderError, match="purpose"):
        ADAPTER.render(env.model_copy(update={"purpose": "benefit_decision"}))
    no_identity = env.model_copy(update={"parts": [
        p for p in env.parts if not isinstance(p.content, IdentityData)]})
    with pytest.raises(RenderError, match="identity"):
        ADAPTER.render(no_identity)


# --- bad input -------------------------------------------------------------------------------


def problems(exc: AdapterError) -> list[str]:
    return exc.lines()


@pytest.mark.parametrize(("mutate", "location", "fragment"), [
    (lambda d: d["fall"]["kind"].update(geburtsdatum="2012-02-30"), "/fall/kind/geburtsdatum",
     "not a valid date"),
    (lambda d: d["fall"].update(beginn="01.09.2026"), "/fall/beginn", "not a valid date"),
    (lambda d: d.update(zweck="adoption"), "/zweck", "must be one of"),
    (lambda d: d.update(schema="jugendamt-fallakte/2"), "/schema", "jugendamt-fallakte/3"),
    (lambda d: d["fall"]["kind"].update(religion="x"), "/fall/kind", "unknown field"),
    (lambda d: d.pop("dienststelle"), "fall.json:/:", "dienststelle"),
    (lambda d: d.update(empfaenger=[]), "/empfaenger", "at least 1"),
    (lambda d: d.update(dienststelle="Jugendamt Duisburg"), "/dienststelle", "expected form"),
    (lambda d: d["fall"]["notizen"][0].update(text="   "), "/fall/notizen/0/text", "blank"),
    (lambda d: d["fall"]["hilfeplan"]["ziele"][0].update(nr=0), "/fall/hilfeplan/ziele/0/nr",
     "at least 1"),
    (lambda d: d["fall"]["kind"].pop("vorname") and d["fall"]["kind"].pop("nachname"),
     "/fall/kind", "vorname"),
    (lambda d: d.update(exportiert="2026-11-21T11:30:00"), "/exportiert", "offset"),
    (lambda d: d["fall"]["notizen"][1].update(anvertraut_von=7), "/fall/notizen/1/anvertraut_von",
     "type"),
])
def test_schema_violations_name_the_pointer_not_the_value(fall, mutate, location, fragment) -> None:
    mutate(fall)
    with pytest.raises(SchemaError) as info:
        parse_doc(fall)
    lines = problems(info.value)
    assert any(location in line and fragment in line for line in lines), lines
    assert all(line.startswith("fall.json:/") for line in lines)
    assert not any("2012-02-30" in line or "Jugendamt Duisburg" in line for line in lines)


def test_a_native_note_longer_than_a_canonical_text_is_refused_with_its_pointer(fall) -> None:
    fall["fall"]["notizen"][0]["text"] = "x" * 100_001
    with pytest.raises(MappingError) as info:
        parse_doc(fall)
    assert info.value.lines()[0].startswith("fall.json:/fall/notizen/0")


def test_a_broken_carried_part_is_refused(fall) -> None:
    fall["fall"]["notizen"][0]["text"] = 'x\n[casebridge-teil] {"teil": {"id": "a"}}'
    with pytest.raises(MappingError) as info:
        parse_doc(fall)
    assert "/fall/notizen/0/text" in info.value.lines()[0]


@pytest.mark.parametrize(("raw", "error", "fragment"), [
    (b'{"schema": "jugendamt-fallakte/3", "fall": {', ParseError, "line 1"),
    (b"\xff\xfe\x00{", ParseError, ""),
    (b"[" * 100_000 + b"]" * 100_000, ParseError, "nested too deeply"),
    (b'{"a": ' + b"9" * 5000 + b"}", ParseError, "unreadable"),
    (b"[1, 2]", SchemaError, "type object"),
    (b"", ParseError, ""),
])
def test_unreadable_json_fails_cleanly(raw, error, fragment) -> None:
    with pytest.raises(error) as info:
        ADAPTER.parse(raw, source="fall.json")
    assert fragment in " ".join(info.value.lines())


@pytest.mark.parametrize("depth", [50, 900])
def test_nesting_within_the_parser_limit_fails_cleanly(fall, depth) -> None:
    fall["fall"]["kind"]["schule"] = json.loads("[" * depth + "]" * depth)
    with pytest.raises((SchemaError, ParseError)):
        parse_doc(fall)


def test_oversized_input_is_refused_before_parsing(sample) -> None:
    small = JugendamtAdapter(max_bytes=100)
    with pytest.raises(InputTooLarge):
        small.parse(sample("fall"))
    with pytest.raises(InputTooLarge):
        ADAPTER.parse(b" " * (5 * 1024 * 1024 + 1))


def test_education_part_is_a_statement_from_the_school_field(fall) -> None:
    part = by_source(parse_doc(fall))["/fall/kind/schule"]
    assert isinstance(part.content, Statement) and part.content.label == "schule"


@pytest.mark.parametrize("born", [None, date(1980, 1, 1)])
def test_an_identity_written_as_a_note_keeps_its_id_for_the_reasons(born: date | None) -> None:
    # A job centre's identity (Kundennummer) has no place in fall.kind, so it travels in an
    # [Identität] note; a reason naming it must still name a part after the trip. For an adult
    # client the export is about the child of the household.
    from casebridge.canonical_model import Identifier

    parts = [Part(id="p0", category="identity", content=IdentityData(
        identifiers=[Identifier(system="urn:casebridge:id:jobcenter-du:kundennummer",
                                value="962D1")],
        name=PersonName(family="Yılmaz", given=["Ayşe"]), birth_date=born))]
    if born is not None:
        parts.append(Part(id="hh", category="household", content=HouseholdData(members=[
            HouseholdMember(role="child", person=Person(
                name=PersonName(family="Yılmaz", given=["Emre"]),
                birth_date=date(2015, 1, 1)))])))
    env = TransferEnvelope(
        message_id="JC-1", message_type="referral", sender="jobcenter-du",
        recipients=["jugendamt-du"], purpose="referral",
        created_at=datetime(2026, 12, 1, tzinfo=UTC), reason_part_ids=["p0"], parts=parts)
    [back] = ADAPTER.parse(ADAPTER.render(env))
    assert back.reason_part_ids == ["p0"]
    identity_note = next(p for p in back.parts if p.id == "p0")
    assert identity_note.category == "identity"
    assert len({p.id for p in back.parts}) == len(back.parts)
