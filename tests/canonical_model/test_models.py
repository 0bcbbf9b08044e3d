"""Validation of every canonical model: good input passes, bad input names the field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from casebridge.canonical_model import (
    Address,
    Agency,
    CaseFile,
    Client,
    ConsentDirective,
    ConsentWithdrawal,
    ContactPoint,
    Grantor,
    HouseholdMember,
    Identifier,
    Part,
    Person,
    PersonName,
    Referral,
    ReferralStatus,
    StatusChange,
    SupportPlan,
    TransferEnvelope,
    validate_json,
    validate_python,
)
from casebridge.errors import ModelValidationError

NOW = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def problem_fields(exc: ModelValidationError) -> set[str]:
    return {p.location for p in exc.problems}


def envelope_dict(**overrides: object) -> dict:
    base: dict = {
        "message_id": "JC-DU-2026-000123",
        "message_type": "referral",
        "sender": "jobcenter-duisburg",
        "recipients": ["suchtberatung-diakonie-du"],
        "purpose": "referral",
        "created_at": "2026-11-20T09:15:00+01:00",
        "parts": [
            {"id": "p1", "category": "identity",
             "content": {"kind": "identity", "name": {"family": "Yılmaz", "given": ["Ayşe"]},
                         "birth_date": "1988-04-12"}},
        ],
    }
    base.update(overrides)
    return base


def load_envelope(data: dict) -> TransferEnvelope:
    return validate_json(TransferEnvelope, json.dumps(data))


# --- the envelope -------------------------------------------------------------------------------


def test_valid_envelope_loads_and_reports_its_categories() -> None:
    env = load_envelope(envelope_dict())
    assert env.schema_version == "1.0"
    assert env.categories == {"identity"}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"message_id": ""}, "message_id"),
        ({"message_id": "   "}, "message_id"),
        ({"purpose": "gossip"}, "purpose"),
        ({"message_type": "postcard"}, "message_type"),
        ({"created_at": "2026-02-30T09:00:00+01:00"}, "created_at"),
        ({"created_at": "2026-11-20T09:15:00"}, "created_at"),  # naive time is ambiguous
        ({"sender": "Jobcenter Duisburg"}, "sender"),
        ({"recipients": []}, "recipients"),
        ({"schema_version": "0.9"}, "schema_version"),
    ],
)
def test_invalid_envelope_header_names_the_field(override: dict, field: str) -> None:
    with pytest.raises(ModelValidationError) as err:
        load_envelope(envelope_dict(**override))
    assert field in problem_fields(err.value)


def test_unknown_category_is_rejected_with_the_field_named() -> None:
    data = envelope_dict(parts=[{"id": "p1", "category": "gossip",
                                 "content": {"kind": "note", "text": "x"}}])
    with pytest.raises(ModelValidationError) as err:
        load_envelope(data)
    assert "parts[0].category" in problem_fields(err.value)


def test_impossible_birth_date_is_rejected_with_its_path() -> None:
    data = envelope_dict(parts=[{"id": "p1", "category": "identity",
                                 "content": {"kind": "identity", "birth_date": "1988-02-30"}}])
    with pytest.raises(ModelValidationError) as err:
        load_envelope(data)
    assert "parts[0].content.birth_date" in problem_fields(err.value)


def test_error_messages_do_not_quote_personal_data() -> None:
    data = envelope_dict(parts=[{"id": "p1", "category": "identity",
                                 "content": {"kind": "identity", "birth_date": "1988-02-31",
                                             "name": {"family": "", "given": []}}}])
    with pytest.raises(ModelValidationError) as err:
        load_envelope(data)
    text = " ".join(err.value.lines())
    assert "1988-02-31" not in text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"recipients": ["a-agency", "a-agency"]}, "named twice"),
        ({"recipients": ["jobcenter-duisburg"]}, "its own recipient"),
        ({"reason_part_ids": ["nope"]}, "no part with id"),
        ({"message_type": "status_update"}, "needs a status"),
        ({"status": {"status": "accepted"}}, "only a status_update"),
    ],
)
def test_envelope_consistency_rules(override: dict, message: str) -> None:
    with pytest.raises(ModelValidationError) as err:
        load_envelope(envelope_dict(**override))
    assert any(message in line for line in err.value.lines())


def test_status_update_needs_correlation() -> None:
    with pytest.raises(ModelValidationError) as err:
        load_envelope(envelope_dict(message_type="status_update", purpose="service_delivery",
                                    status={"status": "in_progress"}))
    assert "correlation_id" in " ".join(err.value.lines())
    ok = load_envelope(envelope_dict(message_type="status_update", purpose="service_delivery",
                                     status={"status": "in_progress"},
                                     correlation_id="JC-DU-2026-000123"))
    assert ok.status is not None and ok.status.status == ReferralStatus.IN_PROGRESS


def test_duplicate_part_ids_are_rejected() -> None:
    part = {"id": "p1", "category": "case_notes", "content": {"kind": "note", "text": "x"}}
    with pytest.raises(ModelValidationError):
        load_envelope(envelope_dict(parts=[part, part]))


def test_envelope_is_immutable() -> None:
    env = load_envelope(envelope_dict())
    with pytest.raises(Exception, match="frozen"):
        env.message_id = "other"  # type: ignore[misc]


def test_only_categories_removes_parts_and_dangling_reasons() -> None:
    env = load_envelope(envelope_dict(
        reason_part_ids=["p2"],
        parts=[
            {"id": "p1", "category": "identity", "content": {"kind": "identity"}},
            {"id": "p2", "category": "addiction",
             "content": {"kind": "statement", "label": "sucht", "text": "Alkohol"}},
        ],
    ))
    slim = env.only_categories({"identity"})
    assert [p.id for p in slim.parts] == ["p1"]
    assert slim.reason_part_ids == []
    assert env.categories == {"identity", "addiction"}  # the original is untouched


def test_for_recipient_narrows_the_address() -> None:
    env = load_envelope(envelope_dict(recipients=["jugendamt-duisburg", "sozialamt-duisburg"]))
    assert env.for_recipient("sozialamt-duisburg").recipients == ["sozialamt-duisburg"]
    with pytest.raises(ValueError, match="not a recipient"):
        env.for_recipient("jobcenter-essen")


# --- parts and the category rule -------------------------------------------------------


def test_entrusted_part_must_name_who_entrusted_it() -> None:
    with pytest.raises(ModelValidationError) as err:
        validate_python(Part, {"id": "n1", "category": "entrusted",
                               "content": {"kind": "note", "text": "vertraulich"}})
    assert "entrusted_by" in " ".join(err.value.lines())
    part = validate_python(Part, {"id": "n1", "category": "entrusted",
                                  "entrusted_by": {"relation": "self"},
                                  "content": {"kind": "note", "text": "vertraulich"}})
    assert part.entrusted_by == Grantor(relation="self")


def test_only_entrusted_parts_carry_an_entruster() -> None:
    with pytest.raises(ModelValidationError):
        validate_python(Part, {"id": "n1", "category": "case_notes",
                               "entrusted_by": {"relation": "mother"},
                               "content": {"kind": "note", "text": "x"}})


def test_fixed_shapes_keep_their_category() -> None:
    # a name smuggled in as "case_notes" would escape an identity-based decision
    with pytest.raises(ModelValidationError) as err:
        validate_python(Part, {"id": "p", "category": "case_notes",
                               "content": {"kind": "identity", "name": {"family": "X"}}})
    assert "must have category identity" in " ".join(err.value.lines())


@pytest.mark.parametrize(
    "smuggled",
    [
        {"client_name": "Yılmaz, Ayşe"},
        {"birth_date": "1988-04-12"},
        {"notes": "Alkoholproblematik"},
    ],
)
def test_no_personal_data_outside_a_categorised_part(smuggled: dict) -> None:
    with pytest.raises(ModelValidationError) as err:
        load_envelope(envelope_dict(**smuggled))
    assert "Extra inputs are not permitted" in " ".join(err.value.lines())


def test_a_part_without_a_category_is_rejected() -> None:
    with pytest.raises(ModelValidationError) as err:
        load_envelope(envelope_dict(parts=[{"id": "p1", "content": {"kind": "note", "text": "x"}}]))
    assert "parts[0].category" in problem_fields(err.value)


def test_a_part_cannot_carry_extra_fields_in_its_content() -> None:
    with pytest.raises(ModelValidationError):
        load_envelope(envelope_dict(parts=[{"id": "p1", "category": "case_notes",
                                            "content": {"kind": "note", "text": "x",
                                                        "name": "Ayşe"}}]))


# --- the other models: one good, one bad each -----------------------------------------

GOOD_AND_BAD = [
    (Identifier, {"system": "urn:casebridge:id:jobcenter-duisburg:kundennummer", "value": "962D1"},
     {"system": "kundennummer", "value": "962D1"}, "system"),
    (Agency, {"id": "jobcenter-duisburg", "kind": "jobcenter", "system": "jobcenter"},
     {"id": "jobcenter-duisburg", "kind": "ministry", "system": "jobcenter"}, "kind"),
    (PersonName, {"family": "Yılmaz", "given": ["Ayşe"]}, {"given": []}, "(message)"),
    (Address, {"street": "Musterstraße", "postal_code": "47053"}, {"lines": []}, "(message)"),
    (ContactPoint, {"system": "phone", "value": "0203 555 0142"},
     {"system": "pigeon", "value": "x"}, "system"),
    (Person, {"name": {"family": "Yılmaz"}, "birth_date": date(1988, 4, 12), "sex": "female"},
     {"sex": "often"}, "sex"),
    (HouseholdMember, {"role": "child", "person": {"name": {"given": ["Emre"]}}},
     {"role": "pet", "person": {}}, "role"),
    (Client, {"client_id": "c-7f3e9a"}, {"client_id": ""}, "client_id"),
    (CaseFile, {"agency": "sozialamt-duisburg", "local_case_id": "50-31-2026/0457",
                "phase": "planning"},
     {"agency": "sozialamt-duisburg", "local_case_id": "x", "phase": "dormant"}, "phase"),
    (SupportPlan, {"goals": [{"number": 1, "text": "Schulbesuch"}]},
     {"goals": [{"number": 0, "text": "Schulbesuch"}]}, "goals[0].number"),
    (Grantor, {"relation": "other", "name": {"family": "Schmidt"}}, {"relation": "other"},
     "(message)"),
    (ConsentWithdrawal, {"consent_id": "c1", "at": NOW, "by": "Beratungsstelle"},
     {"consent_id": "c1", "at": datetime(2026, 1, 1), "by": "x"}, "at"),
    (StatusChange, {"status": "accepted", "at": NOW, "reported_by": "jobcenter-duisburg"},
     {"status": "maybe", "at": NOW, "reported_by": "jobcenter-duisburg"}, "status"),
]


@pytest.mark.parametrize(("model", "good", "bad", "field"), GOOD_AND_BAD,
                         ids=[m[0].__name__ for m in GOOD_AND_BAD])
def test_model_accepts_good_and_names_the_bad_field(model, good, bad, field) -> None:
    validate_python(model, good)
    with pytest.raises(ModelValidationError) as err:
        validate_python(model, bad)
    assert field in problem_fields(err.value)


def consent_dict(**overrides: object) -> dict:
    base: dict = {
        "consent_id": "cons-jc-2026-0815",
        "status": "active",
        "client_identifiers": [{"system": "urn:casebridge:id:jobcenter-duisburg:kundennummer",
                                "value": "962D123456"}],
        "grantor": {"relation": "self"},
        "recorded_by": "jobcenter-duisburg",
        "given_at": NOW,
        "form": "written",
        "evidence": {"title": "Einwilligung, Blatt 17", "content_type": "application/pdf"},
        "disclosers": ["jobcenter-duisburg"],
        "recipients": ["suchtberatung-diakonie-du"],
        "purposes": ["referral"],
        "categories": ["identity", "addiction"],
    }
    base.update(overrides)
    return base


def test_consent_directive_covers_what_it_names() -> None:
    consent = validate_python(ConsentDirective, consent_dict())
    assert consent.covered_categories == {"identity", "addiction"}
    assert consent.effective_from == NOW


def test_consent_without_categories_covers_only_ordinary_ones() -> None:
    consent = validate_python(ConsentDirective, consent_dict(categories=None))
    assert "identity" in consent.covered_categories
    assert not {"health", "addiction", "criminal", "entrusted"} & consent.covered_categories


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"purposes": ["child_protection"]}, "statutory"),
        ({"purposes": ["gossip"]}, "purposes[0]"),
        ({"categories": ["gossip"]}, "categories[0]"),
        ({"recipients": []}, "recipients"),
        ({"valid_until": datetime(2026, 1, 1, tzinfo=UTC)}, "valid_until"),
        ({"form": "oral"}, "form"),
        ({"client_identifiers": []}, "client_identifiers"),
    ],
)
def test_invalid_consent_directive_names_the_problem(override: dict, field: str) -> None:
    with pytest.raises(ModelValidationError) as err:
        validate_python(ConsentDirective, consent_dict(**override))
    assert field in " ".join(err.value.lines())


# --- referral lifecycle ---------------------------------------------------------------


def referral() -> Referral:
    return validate_python(Referral, {
        "message_id": "JC-DU-2026-000123", "sender": "jobcenter-duisburg",
        "recipients": ["suchtberatung-diakonie-du"], "purpose": "referral", "requested_at": NOW,
    })


def change(status: str) -> StatusChange:
    return StatusChange(status=ReferralStatus(status), at=NOW,
                        reported_by="suchtberatung-diakonie-du")


def test_referral_lifecycle_moves_forward() -> None:
    r = referral()
    for step in ("received", "accepted", "in_progress", "completed"):
        r = r.advance(change(step))
    assert r.status == ReferralStatus.COMPLETED
    assert [c.status for c in r.history] == ["received", "accepted", "in_progress", "completed"]


def test_referral_may_skip_unreported_steps() -> None:
    assert referral().advance(change("in_progress")).status == ReferralStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (["accepted"], "received"),  # backwards
        (["in_progress"], "rejected"),  # rejection only before acceptance work begins
        (["completed"], "in_progress"),  # terminal is final
        (["rejected"], "accepted"),
    ],
)
def test_referral_lifecycle_refuses_impossible_moves(path: list[str], bad: str) -> None:
    r = referral()
    for step in path:
        r = r.advance(change(step))
    with pytest.raises(ValueError, match="cannot become"):
        r.advance(change(bad))


def test_cancellation_ends_any_open_referral() -> None:
    assert referral().advance(change("cancelled")).status == ReferralStatus.CANCELLED
