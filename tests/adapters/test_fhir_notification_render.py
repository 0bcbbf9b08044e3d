"""A child-protection notification rendered TO provider FHIR (youth office → provider under
§ 8a(4) SGB VIII): the Communication bundle of the interface README, valid FHIR R4, read back by
the provider parser with its legal basis, justification and every part's category."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fhir.resources.R4B.bundle import Bundle

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Category, Purpose, TransferEnvelope
from casebridge.errors import RenderError, StatutoryNotAdmitted
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.preview import render_for
from casebridge.routing.routes import parse_route_table

JA, FHIR = get_adapter("jugendamt"), get_adapter("provider-fhir")
PROVIDER = "suchtberatung-diakonie-du"


def youth_office_notification(**top: object) -> TransferEnvelope:
    doc = json.loads(sample_bytes("jugendamt/fall-001.json"))
    doc.update(zweck="kinderschutz", empfaenger=[PROVIDER],
               rechtsgrundlage={"code": "sgb-viii-8a-4",
                                "begruendung": "Hinweise auf Vernachlässigung; Träger einbezogen."},
               **top)
    doc["fall"]["kinderschutz"]["hinweise"] = [{"datum": "2026-12-01", "text": "Kind allein."}]
    [env] = JA.parse(json.dumps(doc).encode())
    return env


def _resources(doc: dict) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for entry in doc["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_the_notification_is_a_valid_communication_bundle() -> None:
    env = youth_office_notification()
    doc = json.loads(FHIR.render(env))
    Bundle.model_validate(doc)  # fhir.resources R4B: valid FHIR R4
    res = _resources(doc)
    assert set(res) == {"Patient", "RelatedPerson", "Communication"}
    [patient], [mother], [comm] = res["Patient"], res["RelatedPerson"], res["Communication"]
    assert patient["name"][0]["given"] == ["Emre"]  # the child, never the parent
    assert mother["relationship"][0]["coding"][0]["code"] == "MTH"
    patient_url = next(e["fullUrl"] for e in doc["entry"]
                       if e["resource"]["resourceType"] == "Patient")
    assert mother["patient"] == {"reference": patient_url} == comm["subject"]
    assert comm["category"][0]["coding"] == [{"system": "urn:casebridge:purpose",
                                              "code": "child_protection"}]
    assert comm["sender"]["identifier"]["value"] == "jugendamt-duisburg"
    assert [r["identifier"]["value"] for r in comm["recipient"]] == [PROVIDER]
    assert comm["reasonCode"] == [{
        "coding": [{"system": "urn:casebridge:legal-basis", "code": "sgb-viii-8a-4"}],
        "text": "Hinweise auf Vernachlässigung; Träger einbezogen."}]
    assert comm["sent"] == env.created_at.isoformat()
    texts = [p["contentString"] for p in comm["payload"]]
    assert any(t.startswith("[Anvertraut: ") for t in texts)  # headed prose, no machine syntax
    assert not any(t.lstrip().startswith(("{", "[{")) for t in texts)
    security = {c["code"] for c in comm["meta"]["security"]}
    assert "entrusted" in security and "R" in security


@pytest.mark.parametrize("output", ["json", "xml"])
def test_the_provider_parser_reads_it_back(output: str) -> None:
    env = youth_office_notification()
    adapter = type(FHIR)(output=output)  # type: ignore[call-arg]
    [back] = FHIR.parse(adapter.render(env))
    assert back.purpose is Purpose.CHILD_PROTECTION and back.statutory == env.statutory
    assert (back.sender, back.recipients) == (env.sender, env.recipients)
    child = next(p.content for p in back.parts if p.category is Category.IDENTITY)
    assert child == next(p.content for p in env.parts if p.category is Category.IDENTITY)
    household = next(p.content for p in back.parts if p.category is Category.HOUSEHOLD)
    assert household == next(p.content for p in env.parts if p.category is Category.HOUSEHOLD)
    assert Counter(p.category for p in back.parts) == Counter(p.category for p in env.parts)
    entrusted = [p for p in back.parts if p.category is Category.ENTRUSTED]
    assert entrusted and all(p.entrusted_by is not None for p in entrusted)
    assert any("Kind allein." in (getattr(p.content, "text", None) or "") for p in back.parts
               if p.category is Category.CHILD_PROTECTION)
    # and once more: the bundle casebridge writes is stable through its own reader
    assert FHIR.parse(FHIR.render(back)) == [back]


def test_an_adult_patient_or_a_missing_justification_is_refused() -> None:
    env = youth_office_notification()
    parts = [p.model_copy(update={"content": p.content.model_copy(
        update={"birth_date": p.content.birth_date.replace(year=1990)})})
        if p.category is Category.IDENTITY else p for p in env.parts]
    with pytest.raises(RenderError, match="must be a minor"):
        FHIR.render(env.model_copy(update={"parts": parts}))
    with pytest.raises(RenderError, match="needs its legal basis"):
        FHIR.render(env.model_copy(update={"statutory": None}))


ROUTES = """
agencies:
  - {id: jugendamt-duisburg, kind: youth_office, system: jugendamt, delivery: {mode: pull}}
  - {id: suchtberatung-diakonie-du, kind: provider, system: provider-fhir, delivery: {mode: pull}}
routes:
  - {sender: youth_office, purposes: [child_protection], recipients: [provider],
     statutory_bases: [BASES]}
"""


def test_the_youth_office_notifies_a_provider_on_a_route_admitting_the_basis() -> None:
    [env] = JA.parse(  # the native youth-office message
        json.dumps({**json.loads(sample_bytes("jugendamt/fall-001.json")),
                    "zweck": "kinderschutz", "empfaenger": [PROVIDER],
                    "rechtsgrundlage": {"code": "sgb-viii-8a-4",
                                        "begruendung": "Schutzauftrag."}}).encode())
    table = parse_route_table(ROUTES.replace("BASES", "sgb-viii-8a-4"), source="r.yaml",
                              fmt="yaml")
    hits = table.check(env)
    assert hits[PROVIDER].policy.statutory_bases == frozenset({"sgb-viii-8a-4"})
    native, media_type = render_for(table, env)
    assert media_type == "application/fhir+json"
    Bundle.model_validate_json(native)
    [back] = FHIR.parse(native)
    assert back.statutory == env.statutory and back.purpose is Purpose.CHILD_PROTECTION
    other = parse_route_table(ROUTES.replace("BASES", "kkg-4"), source="r.yaml", fmt="yaml")
    with pytest.raises(StatutoryNotAdmitted, match="'sgb-viii-8a-4' is not admitted"):
        other.check(env)


def test_for_an_adult_client_the_child_is_the_patient_and_the_client_a_related_person() -> None:
    [env] = get_adapter("jobcenter").parse(sample_bytes("jobcenter/kinderschutz-001.xml"))
    doc = json.loads(FHIR.render(env))
    Bundle.model_validate(doc)
    res = _resources(doc)
    assert res["Patient"][0]["name"][0]["given"] == ["Emre"]
    [client] = res["RelatedPerson"]
    assert client["name"][0]["given"] == ["Ayşe"]
    assert client["relationship"][0]["coding"][0]["code"] == "MTH"
    [back] = FHIR.parse(json.dumps(doc).encode())
    assert back.statutory == env.statutory
    assert {p.category for p in env.parts} <= {p.category for p in back.parts}
    assert Counter(p.category for p in back.parts)[Category.CHILD_PROTECTION] == Counter(
        p.category for p in env.parts)[Category.CHILD_PROTECTION]
