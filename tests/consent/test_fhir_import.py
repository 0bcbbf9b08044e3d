"""FHIR R4 Consent import/export against ../shared/interfaces/consent-fhir/README.md."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.canonical_model import (
    CONSENTABLE_PURPOSES,
    Category,
    ConsentDirective,
    Evidence,
    Grantor,
    Identifier,
    PersonName,
)
from casebridge.consent.fhir import parse_consents, render_bundle, render_consent
from casebridge.errors import ConsentImportError, InputError, InputTooLarge

BERLIN = ZoneInfo("Europe/Berlin")
SELF_ID = "cons-jc-2026-0815"
GUARDIAN_ID = "cons-ja-2026-0311"


@pytest.fixture
def self_doc(sample):
    return json.loads(sample("consent_self"))


@pytest.fixture
def guardian_doc(sample):
    return json.loads(sample("consent_guardian"))


def dump(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def refused(doc_or_bytes) -> list[str]:
    raw = doc_or_bytes if isinstance(doc_or_bytes, bytes) else dump(doc_or_bytes)
    with pytest.raises(ConsentImportError) as info:
        parse_consents(raw, source="test.json")
    assert isinstance(info.value, InputError)
    return info.value.lines()


# --- the samples ------------------------------------------------------------------------------


def test_self_sample_imports_every_element(sample):
    (d,) = parse_consents(sample("consent_self"))
    assert d.consent_id == SELF_ID
    assert d.status == "active"
    assert [i.system for i in d.client_identifiers] == [
        "urn:casebridge:id:jobcenter-duisburg:kundennummer",
        "urn:casebridge:id:sozialamt-duisburg:aktenzeichen",
    ]
    assert d.client_birth_date == date(1988, 4, 12)
    assert d.client_name == PersonName(family="Yılmaz", given=["Ayşe"])
    assert d.grantor == Grantor(relation="self")
    assert d.recorded_by == "jobcenter-duisburg"
    assert d.given_at == datetime(2026, 11, 5, 10, 20, tzinfo=timezone(timedelta(hours=1)))
    assert d.form == "written"
    assert d.evidence.content_type == "application/pdf"
    assert d.legal_basis == "sgb-x-67b"
    assert d.valid_until == datetime(2027, 5, 5, tzinfo=timezone(timedelta(hours=2)))
    assert d.disclosers == ["jobcenter-duisburg"]
    assert d.recipients == ["suchtberatung-diakonie-du"]
    assert d.purposes == ["referral", "service_delivery"]
    assert d.categories == ["identity", "contact", "addiction", "support_plan"]


def test_guardian_sample_imports_the_mother_as_grantor(sample):
    (d,) = parse_consents(sample("consent_guardian"))
    assert d.consent_id == GUARDIAN_ID
    assert d.grantor.relation == "mother"
    assert d.grantor.name == PersonName(family="Yılmaz", given=["Ayşe"])
    assert d.client_birth_date == date(2012, 2, 3)
    assert d.recipients == ["jobcenter-duisburg", "sozialamt-duisburg"]
    assert d.legal_basis is None


@pytest.mark.parametrize("code", ["MTH", "FTH", "GUARD", "PRN"])
def test_related_person_codes_map_to_relations(guardian_doc, code):
    guardian_doc["contained"][1]["relationship"][0]["coding"][0]["code"] = code
    (d,) = parse_consents(dump(guardian_doc))
    assert d.grantor.relation == {"MTH": "mother", "FTH": "father", "GUARD": "legal_guardian",
                                  "PRN": "parent"}[code]


def test_bundle_of_both_samples_imports_both(self_doc, guardian_doc):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": self_doc}, {"resource": guardian_doc}]}
    assert [d.consent_id for d in parse_consents(dump(bundle))] == [SELF_ID, GUARDIAN_ID]


@pytest.mark.parametrize("status", ["inactive", "rejected", "draft", "proposed"])
def test_non_active_statuses_import(self_doc, status):
    self_doc["status"] = status
    (d,) = parse_consents(dump(self_doc))
    assert d.status == status


def test_missing_code_means_all_ordinary_and_missing_period_means_from_given(self_doc):
    del self_doc["provision"]["code"]
    del self_doc["provision"]["period"]
    (d,) = parse_consents(dump(self_doc))
    assert d.categories is None
    assert d.valid_from is None and d.valid_until is None
    assert d.effective_from == d.given_at
    assert Category.HEALTH not in d.covered_categories


def test_dates_without_time_are_whole_days_in_berlin(self_doc):
    self_doc["provision"]["period"] = {"start": "2026-11-06", "end": "2027-02"}
    (d,) = parse_consents(dump(self_doc))
    assert d.valid_from == datetime(2026, 11, 6, tzinfo=BERLIN)
    assert d.valid_until == datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=BERLIN)
    self_doc["provision"]["period"] = {"end": "2027"}
    self_doc["dateTime"] = "2026-11-05"
    (d,) = parse_consents(dump(self_doc))
    assert d.given_at == datetime(2026, 11, 5, tzinfo=BERLIN)
    assert d.valid_until == datetime(2027, 12, 31, 23, 59, 59, 999999, tzinfo=BERLIN)
    assert d.valid_until.utcoffset() == timedelta(hours=1)


def test_elements_the_profile_does_not_describe_are_ignored(self_doc):
    self_doc["text"] = {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}
    self_doc["meta"] = {"versionId": "3"}
    self_doc["extension"].append({"url": "urn:other", "valueString": "x"})
    self_doc["provision"]["action"] = [{"coding": [{"code": "access"}]}]
    self_doc["provision"]["actor"].append({
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "code": "DELEGATEE"}]},
        "reference": {"identifier": {"system": "urn:casebridge:agency", "value": "x-y"}}})
    (d,) = parse_consents(dump(self_doc))
    assert d.recipients == ["suchtberatung-diakonie-du"]


# --- refusals ---------------------------------------------------------------------------------


def _set(path, value):
    def change(doc):
        target = doc
        for step in path[:-1]:
            target = target[step]
        if value is _DELETE:
            del target[path[-1]]
        elif callable(value):
            target[path[-1]] = value(target[path[-1]])
        else:
            target[path[-1]] = value
    return change


_DELETE = object()
_CODE = ["provision", "code"]
_ACTOR = ["provision", "actor"]


def _category(code, system="urn:casebridge:category"):
    return {"coding": [{"system": system, "code": code}]}


VIOLATIONS = [
    ("unknown category", _set([*_CODE, 2], _category("foo")),
     f"Consent[{SELF_ID}].provision.code[2]: unknown category 'foo'"),
    ("category of another system", _set([*_CODE, 1], _category("contact", "urn:x")),
     f"Consent[{SELF_ID}].provision.code[1]"),
    ("unknown purpose", _set(["provision", "purpose", 0, "code"], "marketing"),
     f"Consent[{SELF_ID}].provision.purpose[0]: purpose 'marketing' is unknown"),
    ("statutory purpose", _set(["provision", "purpose", 1, "code"], "child_protection"),
     "provision.purpose[1]: purpose 'child_protection' is statutory"),
    ("purpose of another system", _set(["provision", "purpose", 0, "system"], "urn:x"),
     "provision.purpose[0].system"),
    ("no purpose", _set(["provision", "purpose"], _DELETE), "provision.purpose: missing"),
    ("no recipient", _set(_ACTOR, lambda a: a[:1]), "provision.actor: no recipient"),
    ("no discloser", _set(_ACTOR, lambda a: a[1:]), "provision.actor: no discloser"),
    ("actor with another identifier system",
     _set([*_ACTOR, 1, "reference", "identifier", "system"], "urn:x"),
     "provision.actor[1].reference.identifier"),
    ("actor by literal reference", _set([*_ACTOR, 1, "reference"], {"reference": "Organization/1"}),
     "provision.actor[1].reference.identifier"),
    ("actor with a malformed agency id",
     _set([*_ACTOR, 0, "reference", "identifier", "value"], "Job Centre"),
     "provision.actor[0].reference.identifier.value"),
    ("no performer", _set(["performer"], _DELETE), f"Consent[{SELF_ID}].performer"),
    ("two performers", _set(["performer"], [{"reference": "#patient"}] * 2), "performer"),
    ("performer outside the resource", _set(["performer"], [{"reference": "Patient/7"}]),
     "performer[0]: must be the contained Patient or a contained RelatedPerson"),
    ("end before start", _set(["provision", "period", "end"], "2026-11-01T00:00:00+01:00"),
     "provision.period.end: lies before the start"),
    ("end before dateTime without start",
     _set(["provision", "period"], {"end": "2026-11-04T00:00:00+01:00"}),
     "provision.period.end: lies before the start"),
    ("no id", _set(["id"], _DELETE), "id: missing"),
    ("no status", _set(["status"], _DELETE), f"Consent[{SELF_ID}].status"),
    ("entered in error", _set(["status"], "entered-in-error"), "status: 'entered-in-error'"),
    ("unknown status", _set(["status"], "paused"), "status: unknown status"),
    ("wrong scope", _set(["scope", "coding", 0, "code"], "research"), "scope: must be"),
    ("wrong category", _set(["category", 0, "coding", 0, "code"], "1-1"), "category: must contain"),
    ("no patient", _set(["patient"], _DELETE), "patient: missing"),
    ("patient not contained", _set(["patient"], {"reference": "Patient/1"}), "patient.reference"),
    ("patient without identifiers", _set(["contained", 0, "identifier"], _DELETE),
     "contained[0].identifier: missing"),
    ("identifier of a foreign system",
     _set(["contained", 0, "identifier", 1, "system"], "http://fhir.de/sid/gkv/kvid-10"),
     "contained[0].identifier[1].system"),
    ("patient without birth date", _set(["contained", 0, "birthDate"], _DELETE),
     "contained[0].birthDate: missing"),
    ("patient with a partial birth date", _set(["contained", 0, "birthDate"], "1988"),
     "contained[0].birthDate: must be a full date"),
    ("no dateTime", _set(["dateTime"], _DELETE), "dateTime: missing"),
    ("no organization", _set(["organization"], _DELETE), "organization: exactly one agency"),
    ("no evidence", _set(["sourceAttachment"], _DELETE), "sourceAttachment: missing"),
    ("evidence of another type", _set(["sourceAttachment", "contentType"], "image/png"),
     "sourceAttachment.contentType"),
    ("evidence without title", _set(["sourceAttachment", "title"], _DELETE),
     "sourceAttachment.title: missing"),
    ("no form", _set(["extension"], _DELETE), "extension[urn:casebridge:consent-form]"),
    ("unknown form", _set(["extension", 0, "valueCode"], "oral"), "extension[0].valueCode"),
    ("deny provision", _set(["provision", "type"], "deny"), "provision.type: must be 'permit'"),
    ("no provision", _set(["provision"], _DELETE), "provision: missing"),
    ("nested exception", _set(["provision", "provision"], [{"type": "deny"}]),
     "provision.provision: not part of the casebridge profile"),
    ("bad legal basis", _set(["policyRule", "coding", 0, "code"], "SGB X §67b"),
     "policyRule.coding[0].code"),
    ("naive time", _set(["dateTime"], "2026-11-05T10:20:00"), "dateTime"),
    ("element FHIR does not know", _set(["consentGiven"], True), "consentGiven"),
]


@pytest.mark.parametrize(("case", "change", "expected"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_each_profile_violation_is_refused_naming_the_element(self_doc, case, change, expected):
    change(self_doc)
    lines = refused(self_doc)
    assert any(expected in line for line in lines), lines


def test_performer_must_be_patient_or_related_person(guardian_doc):
    guardian_doc["contained"][1] = {"resourceType": "Practitioner", "id": "mother"}
    assert any("performer[0]" in line for line in refused(guardian_doc))


def test_related_person_needs_a_known_relationship_and_a_name(guardian_doc):
    doc = copy.deepcopy(guardian_doc)
    doc["contained"][1]["relationship"][0]["coding"][0]["code"] = "FRND"
    assert any("contained[1].relationship" in line for line in refused(doc))
    doc = copy.deepcopy(guardian_doc)
    del doc["contained"][1]["name"]
    assert any("contained[1].name: missing" in line for line in refused(doc))


def test_problems_never_quote_identifiers_or_names(self_doc):
    self_doc["contained"][0]["identifier"][0]["system"] = "urn:wrong"
    del self_doc["contained"][0]["birthDate"]
    text = " ".join(refused(self_doc))
    assert "962D123456" not in text and "Yılmaz" not in text


def test_all_problems_are_reported_at_once(self_doc):
    self_doc["status"] = "entered-in-error"
    self_doc["provision"]["code"][0] = _category("foo")
    del self_doc["sourceAttachment"]
    assert len(refused(self_doc)) == 3


def test_bundle_is_all_or_nothing(self_doc, guardian_doc):
    guardian_doc["provision"]["code"].append(_category("gossip"))
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": self_doc}, {"resource": guardian_doc}]}
    with pytest.raises(ConsentImportError) as info:
        parse_consents(dump(bundle), source="b.json")
    assert info.value.lines() == [
        f"Consent[{GUARDIAN_ID}].provision.code[4]: unknown category 'gossip'"
    ]
    assert "nothing imported" in info.value.message


def test_bundle_shapes_are_checked(self_doc):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": self_doc}]}
    assert refused(batch) == ["Bundle.type: must be 'collection'"]
    mixed = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": self_doc}, {"resource": {"resourceType": "Patient"}}]}
    assert refused(mixed) == ["Bundle.entry[1].resource: must be a Consent"]
    empty = {"resourceType": "Bundle", "type": "collection"}
    assert refused(empty) == ["Bundle.entry: no entries"]
    twice = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": self_doc}, {"resource": self_doc}]}
    assert any("id: the id is also used" in line for line in refused(twice))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "a FHIR resource is a JSON object"),
        (b'{"resourceType": "Patient"}', "expected a FHIR Consent"),
        (b'{"resourceType": "Consent", "resourceType": "Consent"}', "same key twice"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b'{"resourceType": "Consent", "id": 5}', "Consent"),
    ],
)
def test_malformed_files_get_a_clear_error(raw, expected):
    with pytest.raises(ConsentImportError) as info:
        parse_consents(raw, source="x.json")
    text = info.value.message + " ".join(info.value.lines())
    assert expected in text


def test_input_size_is_bounded_before_parsing(sample):
    raw = sample("consent_self")
    with pytest.raises(InputTooLarge):
        parse_consents(raw, max_bytes=len(raw) - 1)
    assert parse_consents(raw, max_bytes=len(raw))


# --- export and round trip --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["consent_self", "consent_guardian"])
def test_samples_round_trip(sample, name):
    first = parse_consents(sample(name))
    again = parse_consents(render_consent(first[0]))
    assert again == first
    assert json.loads(render_consent(again[0])) == json.loads(render_consent(first[0]))


def test_withdrawn_consent_exports_inactive_ending_at_the_withdrawal(sample):
    (d,) = parse_consents(sample("consent_self"))
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    doc = json.loads(render_consent(d, withdrawn_at=at))
    assert doc["status"] == "inactive"
    assert datetime.fromisoformat(doc["provision"]["period"]["end"]) == at
    (back,) = parse_consents(json.dumps(doc).encode())
    assert back.status == "inactive" and back.valid_until == at
    # a withdrawal after the end leaves the end alone; one before the start ends at the start
    late = json.loads(render_consent(d, withdrawn_at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert datetime.fromisoformat(late["provision"]["period"]["end"]) == d.valid_until
    early = json.loads(render_consent(d, withdrawn_at=datetime(2020, 1, 1, tzinfo=UTC)))
    assert datetime.fromisoformat(early["provision"]["period"]["end"]) == d.effective_from


def test_render_bundle_reimports(sample):
    items = [(parse_consents(sample(n))[0], None) for n in ("consent_self", "consent_guardian")]
    assert [d for d, _ in items] == parse_consents(render_bundle(items))


# hypothesis: any directive the profile can carry survives render → parse unchanged.
_plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs")) | st.just(" "),
    min_size=1, max_size=30,
).map(str.strip).filter(bool)
_agency = st.from_regex(r"[a-z][a-z0-9]{1,8}-[a-z]{2,8}", fullmatch=True)
_moment = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2039, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), BERLIN]),
    allow_imaginary=False,  # a wall time inside a DST gap never equals any other zone's instant
)
_name = st.builds(PersonName, family=_plain, given=st.lists(_plain, max_size=2))
_client_ids = st.lists(
    st.builds(
        Identifier,
        system=st.one_of(
            _agency.map(lambda a: f"urn:casebridge:id:{a}:kundennummer"),
            st.just("urn:casebridge:client"),
        ),
        value=st.from_regex(r"[0-9A-Z/-]{3,16}", fullmatch=True),
    ),
    min_size=1, max_size=3, unique=True,
)
_grantor = st.one_of(
    st.just(Grantor(relation="self")),
    st.builds(Grantor, relation=st.sampled_from(["mother", "father", "parent", "legal_guardian"]),
              name=_name),
)


@st.composite
def directives(draw: st.DrawFn) -> ConsentDirective:
    given_at = draw(_moment)
    valid_from = draw(st.none() | _moment)
    start = valid_from or given_at
    valid_until = draw(st.none() | _moment.filter(lambda m: m >= start))
    return ConsentDirective(
        consent_id=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True)),
        status=draw(st.sampled_from(["active", "inactive", "rejected", "draft", "proposed"])),
        client_identifiers=draw(_client_ids),
        client_name=draw(st.none() | _name),
        client_birth_date=draw(st.dates(date(1920, 1, 1), date(2030, 1, 1))),
        grantor=draw(_grantor),
        recorded_by=draw(_agency),
        given_at=given_at,
        form=draw(st.sampled_from(["written", "electronic"])),
        evidence=Evidence(title=draw(_plain),
                          content_type=draw(st.sampled_from(["application/pdf", "text/plain"]))),
        legal_basis=draw(st.none() | st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True)),
        valid_from=valid_from,
        valid_until=valid_until,
        disclosers=draw(st.lists(_agency, min_size=1, max_size=3, unique=True)),
        recipients=draw(st.lists(_agency, min_size=1, max_size=3, unique=True)),
        purposes=draw(st.lists(st.sampled_from(sorted(CONSENTABLE_PURPOSES)), min_size=1,
                               unique=True)),
        categories=draw(st.none() | st.lists(st.sampled_from(list(Category)), min_size=1,
                                             unique=True)),
    )


@given(directives())
def test_round_trip_is_lossless_for_what_the_profile_carries(directive):
    (back,) = parse_consents(render_consent(directive))
    # Compared as JSON (instants with their offsets): Python never finds a wall time inside a
    # DST fold equal to an instant of another zone (PEP 495), although it is the same instant.
    assert back.model_dump(mode="json") == directive.model_dump(mode="json")
