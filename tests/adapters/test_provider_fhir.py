"""Provider FHIR adapter: samples in JSON and XML, security labels, Task states, bad input."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task

from casebridge.adapters import get_adapter
from casebridge.adapters.jugendamt import JugendamtAdapter
from casebridge.adapters.provider_fhir import ProviderFhirAdapter
from casebridge.canonical_model import (
    Note,
    Part,
    ReferralStatus,
    Statement,
    TransferEnvelope,
)
from casebridge.errors import InputTooLarge, MappingError, ParseError, RenderError, SchemaError

ADAPTER = ProviderFhirAdapter()
XML = ProviderFhirAdapter(output="xml")
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def parse(data: dict | bytes) -> TransferEnvelope:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    [envelope] = ADAPTER.parse(raw, source="in.json")
    return envelope


@pytest.fixture
def bundle(sample) -> dict:
    return json.loads(sample("referral_bundle"))


@pytest.fixture
def task(sample) -> dict:
    return json.loads(sample("task_update"))


def test_registry_and_media_types() -> None:
    adapter = get_adapter("provider-fhir")
    assert isinstance(adapter, ProviderFhirAdapter) and adapter.agency_kind == "provider"
    assert adapter.media_types == ("application/fhir+json", "application/fhir+xml")


def test_referral_bundle_sample_maps_to_a_referral(sample) -> None:
    env = parse(sample("referral_bundle"))
    assert (env.message_id, env.sender, env.recipients) == (
        "JC-DU-2026-000123", "jobcenter-duisburg", ["suchtberatung-diakonie-du"])
    assert (env.purpose, env.message_type) == ("referral", "referral")
    assert env.service == "Suchtberatung (kommunale Eingliederungsleistung, §16a SGB II)"
    assert env.created_at.isoformat() == "2026-11-20T09:15:00+01:00"
    cats = {p.id: p.category for p in env.parts}
    # reasonCode without a category coding: health, the conservative special choice
    assert cats == {"identity": "identity", "contact": "contact", "reason-1": "health",
                    "note-1": "case_notes"}
    assert env.reason_part_ids == ["reason-1"]
    identity = env.parts[0].content
    assert identity.identifiers[0].system == "urn:casebridge:client"  # type: ignore[union-attr]
    assert identity.name.normalised() == "yilmaz, ayse"  # type: ignore[union-attr]
    assert identity.sex == "female"  # type: ignore[union-attr]


def test_task_sample_maps_to_a_status_update(sample) -> None:
    env = parse(sample("task_update"))
    assert env.message_type == "status_update" and env.purpose == "service_delivery"
    assert env.status is not None and env.status.status == ReferralStatus.IN_PROGRESS
    assert str(env.status.effective_on) == "2026-12-01"
    assert (env.message_id, env.correlation_id) == ("SB-DIAK-2026-7781", "JC-DU-2026-000123")
    assert (env.sender, env.recipients) == ("suchtberatung-diakonie-du", ["jobcenter-duisburg"])
    assert [p.category for p in env.parts] == ["identity"]


@pytest.mark.parametrize("name", ["referral_bundle", "task_update"])
def test_samples_round_trip_in_json_and_xml(sample, name) -> None:
    env = parse(sample(name))
    as_json, as_xml = ADAPTER.render(env), XML.render(env)
    assert as_xml.lstrip().startswith(b"<?xml")
    model = Bundle if name == "referral_bundle" else Task
    model.model_validate_json(as_json)  # rendered FHIR validates with fhir.resources
    model.model_validate_xml(as_xml)
    assert ADAPTER.parse(as_json) == [env] == ADAPTER.parse(as_xml)
    assert XML.media_type(env) == "application/fhir+xml"


def test_fhir_xml_input_reads_like_json(sample) -> None:
    xml = Bundle.model_validate_json(sample("referral_bundle")).model_dump_xml()
    assert ADAPTER.parse(xml) == [parse(sample("referral_bundle"))]
    without_declaration = xml.split(b"?>", 1)[1]
    assert ADAPTER.parse(b"\n  " + without_declaration) == ADAPTER.parse(xml)


def _security(resource: dict) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in resource.get("meta", {}).get("security", [])}


@pytest.mark.parametrize(("category", "act_code"), [
    ("addiction", "ETH"), ("health", None), ("criminal", None)])
def test_special_categories_carry_security_labels(sample, category, act_code) -> None:
    env = parse(sample("referral_bundle"))
    parts = [p.model_copy(update={"category": category}) if p.id == "reason-1" else p
             for p in env.parts]
    doc = json.loads(ADAPTER.render(env.model_copy(update={"parts": parts})))
    patient, sr, _task = (e["resource"] for e in doc["entry"])
    labels = _security(sr)
    assert ("urn:casebridge:category", category) in labels
    assert ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R") in labels
    assert ((ACT_CODE, act_code) in labels) if act_code else not any(
        s == ACT_CODE for s, _ in labels)
    assert _security(patient) == set()
    assert sr["reasonCode"][0]["coding"] == [{"system": "urn:casebridge:category",
                                              "code": category}]
    assert parse(json.dumps(doc).encode()).parts[2].category == category


def test_ordinary_content_has_no_security_labels(sample) -> None:
    env = parse(sample("referral_bundle"))
    parts = [p.model_copy(update={"category": "housing"}) if p.id == "reason-1" else p
             for p in env.parts]
    doc = json.loads(ADAPTER.render(env.model_copy(update={"parts": parts})))
    assert _security(doc["entry"][1]["resource"]) == set()


def test_uncoded_elements_take_the_resource_security_label(bundle) -> None:
    bundle["entry"][1]["resource"]["meta"] = {"security": [{"system": ACT_CODE, "code": "ETH"}]}
    cats = {p.id: p.category for p in parse(bundle).parts}
    assert cats["reason-1"] == "addiction" and cats["note-1"] == "addiction"


def test_entrusted_and_household_data_ride_in_notes_and_are_labelled(sample) -> None:
    [fall] = JugendamtAdapter().parse(sample("fall"))
    fall = fall.model_copy(update={"recipients": ["suchtberatung-diakonie-du"]})
    doc = json.loads(ADAPTER.render(fall))
    sr = doc["entry"][1]["resource"]
    assert ("urn:casebridge:category", "entrusted") in _security(sr)
    back = parse(json.dumps(doc).encode())
    strip = {"source": None}
    assert {p.id: p.model_copy(update=strip) for p in back.parts} == {
        p.id: p.model_copy(update=strip) for p in fall.parts}
    entrusted = next(p for p in back.parts if p.category == "entrusted")
    assert entrusted.entrusted_by is not None and entrusted.entrusted_by.relation == "self"


@pytest.mark.parametrize(("code", "status"), [
    ("requested", "requested"), ("received", "received"), ("accepted", "accepted"),
    ("rejected", "rejected"), ("in-progress", "in_progress"), ("completed", "completed"),
    ("cancelled", "cancelled"), ("failed", "failed")])
def test_task_states_map_both_ways(task, code, status) -> None:
    task["status"] = code
    env = parse(task)
    assert env.status is not None and env.status.status == status
    assert json.loads(ADAPTER.render(env))["status"] == code


def test_a_foreign_status_keeps_its_native_word_in_business_status(task) -> None:
    env = parse(task)
    status = env.status.model_copy(update={"native_status": "begonnen"})  # type: ignore[union-attr]
    doc = json.loads(ADAPTER.render(env.model_copy(update={"status": status})))
    assert doc["businessStatus"] == {"text": "begonnen"} and doc["status"] == "in-progress"


def test_status_reason_becomes_a_case_note(task) -> None:
    task["status"] = "rejected"
    task["statusReason"] = {"text": "Keine Kapazität bis März."}
    env = parse(task)
    note = env.parts[-1]
    assert note.category == "case_notes" and isinstance(note.content, Note)


# --- bad input -------------------------------------------------------------------------------


def _fails(data: dict | bytes, error: type, location: str, fragment: str = "") -> list[str]:
    with pytest.raises(error) as info:
        parse(data)
    lines = info.value.lines()
    assert any(location in line and fragment in line for line in lines), lines
    return lines


def test_wrong_resource_type(bundle) -> None:
    _fails({"resourceType": "Patient"}, SchemaError, "in.json:/resourceType")


def test_bundle_must_be_a_transaction(bundle) -> None:
    bundle["type"] = "collection"
    _fails(bundle, MappingError, "in.json:/type", "transaction")


def test_missing_service_request(bundle) -> None:
    del bundle["entry"][1]
    _fails(bundle, MappingError, "in.json:/entry", "ServiceRequest")


def test_invalid_birth_date_names_the_pointer_not_the_value(bundle) -> None:
    bundle["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    lines = _fails(bundle, SchemaError, "/entry/0/resource/birthDate")
    assert not any("1988-13-45" in line for line in lines)


def test_bad_task_status_codes(task) -> None:
    task["status"] = "bogus"
    _fails(task, MappingError, "in.json:/status", "not a FHIR Task status")
    task["status"] = "on-hold"
    _fails(task, MappingError, "in.json:/status", "no meaning")


def test_bundle_task_must_be_requested(bundle) -> None:
    bundle["entry"][2]["resource"]["status"] = "completed"
    _fails(bundle, MappingError, "/entry/2/resource/status", "requested")


def test_unknown_purpose_code(bundle) -> None:
    bundle["entry"][1]["resource"]["category"][0]["coding"][0]["code"] = "marketing"
    _fails(bundle, MappingError, "/entry/1/resource/category/0/coding/0/code", "purpose")


def test_unmapped_elements_are_rejected_not_dropped(bundle) -> None:
    bundle["entry"][0]["resource"]["maritalStatus"] = {"text": "verheiratet"}
    _fails(bundle, MappingError, "/entry/0/resource/maritalStatus", "not supported")


def test_foreign_reason_codings_are_rejected(bundle) -> None:
    bundle["entry"][1]["resource"]["reasonCode"][0]["coding"] = [
        {"system": "http://hl7.org/fhir/sid/icd-10", "code": "F10.2"}]
    _fails(bundle, MappingError, "/entry/1/resource/reasonCode/0/coding/0")


def test_missing_message_identifier(bundle) -> None:
    bundle["entry"][1]["resource"]["identifier"] = [{"system": "urn:other", "value": "1"}]
    _fails(bundle, MappingError, "/entry/1/resource/identifier", "urn:casebridge:message")


def test_xxe_and_entity_expansion_are_refused() -> None:
    xxe = (b'<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Task xmlns="http://hl7.org/fhir"><status value="&x;"/></Task>')
    _fails(xxe, ParseError, "in.json", "DTD")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
              + b"".join(f'<!ENTITY a{i} "{"&a;" * 10}">'.encode() for i in range(9))
              + b']><Task xmlns="http://hl7.org/fhir"><status value="&a8;"/></Task>')
    _fails(laughs, ParseError, "in.json", "DTD")


@pytest.mark.parametrize(("raw", "error", "fragment"), [
    (b"<Task xmlns='http://hl7.org/fhir'><status value='requested'>", ParseError, "line"),
    (b"<Task xmlns='urn:other'/>", SchemaError, "namespace"),
    (b'{"resourceType": "Task", ', ParseError, "line 1"),
    (b"[" * 50_000 + b"]" * 50_000, ParseError, "deeply"),
    (b"hello", ParseError, "neither"),
])
def test_unreadable_input_fails_cleanly(raw, error, fragment) -> None:
    _fails(raw, error, "in.json", fragment)


def test_deep_but_parseable_json_is_refused_before_validation(task) -> None:
    ext: dict = {"url": "urn:x", "valueString": "x"}
    for _ in range(200):
        ext = {"url": "urn:x", "extension": [ext]}
    task["extension"] = [ext]
    _fails(task, ParseError, "in.json", "deeply")


def test_oversized_input_is_refused(sample) -> None:
    with pytest.raises(InputTooLarge):
        ProviderFhirAdapter(max_bytes=200).parse(sample("referral_bundle"))


def test_envelopes_without_a_fhir_form_are_refused(sample) -> None:
    env = parse(sample("referral_bundle"))
    with pytest.raises(RenderError, match="purpose"):
        ADAPTER.render(env.model_copy(update={"purpose": "benefit_decision"}))
    with pytest.raises(RenderError, match="identity"):
        ADAPTER.render(env.model_copy(update={"parts": env.parts[2:]}))


def test_reasons_outside_reason_code_keep_their_order(sample) -> None:
    env = parse(sample("referral_bundle"))
    extra = Part(id="p-extra", category="employment", content=Statement(
        text="Letzte Tätigkeit", period_start="2019-01", period_end="2022-06"))
    env = env.model_copy(update={"parts": [*env.parts, extra],
                                 "reason_part_ids": ["p-extra", "reason-1"]})
    back = parse(ADAPTER.render(env))
    assert back.reason_part_ids == ["p-extra", "reason-1"]
    assert {p.id: p for p in back.parts}["p-extra"].content == extra.content
