"""Hypothesis strategies: canonical envelopes the youth-office and FHIR formats express natively.

Part ids and sources follow each adapter's conventions (where the part sits in the native
message), so ``parse(render(envelope)) == envelope`` is the exact property to test.
"""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import strategies as st

from casebridge.canonical_model import (
    Address,
    CaseFile,
    CaseFileData,
    ChildProtectionData,
    ConferenceInfo,
    ContactData,
    ContactPoint,
    Goal,
    Grantor,
    HouseholdData,
    HouseholdMember,
    Identifier,
    IdentityData,
    Measure,
    Note,
    Part,
    Person,
    PersonName,
    Statement,
    StatusInfo,
    StatutoryClaim,
    SupportPlan,
    SupportPlanData,
    TransferEnvelope,
)
from tests.strategies import agency_ids, aware_datetimes, dates, long_text, message_ids, text

single = text.filter(lambda t: len(t) <= 60)
part_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)
ROLE_LABELS = {"Mutter": "mother", "Vater": "father", "Vormund": "legal_guardian",
               "Elternteil": "parent", "Pflegemutter": "legal_guardian"}
ENTRUSTER_WORDS = {"kind", "mutter", "vater", "sorgeberechtigte"}


@st.composite
def _header(draw: st.DrawFn) -> dict[str, object]:
    sender = draw(agency_ids)
    recipients = draw(st.lists(agency_ids.filter(lambda a: a != sender), min_size=1,
                               max_size=3, unique=True))
    return {"message_id": draw(message_ids), "sender": sender, "recipients": recipients,
            "created_at": draw(aware_datetimes), "service": draw(st.none() | single),
            "correlation_id": draw(st.none() | message_ids)}


# --- youth office ----------------------------------------------------------------------------


def _minor_on(moment: object) -> st.SearchStrategy[date]:
    """Birth dates of a child (under 18) on the day of ``moment``: the youth office's client."""
    assert isinstance(moment, datetime)
    day = moment.date()
    return st.dates(min_value=day.replace(year=day.year - 17, day=min(day.day, 28)),
                    max_value=day)


@st.composite
def jugendamt_envelopes(draw: st.DrawFn) -> TransferEnvelope:
    """Envelopes whose every part has a native home in jugendamt-fallakte/3."""
    head = draw(_header())
    agency = head["sender"]
    zweck = draw(st.sampled_from([("referral", "referral"), ("case_conference", "case_conference"),
                                  ("joint_planning", "plan_update"),
                                  ("child_protection", "case_export")]))
    fallnummer = draw(st.none() | st.from_regex(r"JA-[0-9]{2}-20[0-9]{2}-[0-9]{1,6}",
                                                fullmatch=True))
    parts: list[Part] = []
    used: set[str] = set()

    def pid(default: str) -> str:
        custom = part_ids.filter(lambda i: i not in used)
        chosen = draw(custom if default in used else st.just(default) | custom)
        used.add(chosen)
        return chosen

    if fallnummer and draw(st.booleans()):
        parts.append(Part(id=pid("case-file"), category="support_plan", source="/fall",
                          content=CaseFileData(case_file=CaseFile(
                              agency=agency, local_case_id=fallnummer,
                              help_type=draw(single), opened_on=draw(st.none() | dates)))))
    family, given = draw(st.none() | single), draw(st.none() | single)
    if family is None and given is None:
        family = "Yılmaz"
    parts.append(Part(id=pid("identity"), category="identity", source="/fall/kind",
                      content=IdentityData(
                          identifiers=[Identifier(
                              system=f"urn:casebridge:id:{agency}:fallnummer", value=fallnummer)]
                          if fallnummer else [],
                          name=PersonName(family=family, given=[given] if given else []),
                          birth_date=draw(st.none() | _minor_on(head["created_at"])))))
    if draw(st.booleans()):
        parts.append(Part(id=pid("education"), category="education", source="/fall/kind/schule",
                          content=Statement(label="schule", text=draw(long_text))))
    if draw(st.booleans()):
        members = []
        for _ in range(draw(st.integers(0, 4))):
            label = draw(st.sampled_from(sorted(ROLE_LABELS)))
            address = draw(st.none() | st.builds(
                Address, street=st.none() | single, postal_code=st.none() | single,
                city=single))
            members.append(HouseholdMember(
                role=ROLE_LABELS[label], role_label=label, has_custody=True,
                person=Person(name=PersonName(family=draw(single), given=[draw(single)]),
                              birth_date=draw(st.none() | dates),
                              addresses=[address] if address else [])))
        parts.append(Part(id=pid("household"), category="household",
                          source="/fall/sorgeberechtigte", content=HouseholdData(members=members)))
    if draw(st.booleans()):
        goals = draw(st.lists(st.builds(Goal, number=st.none() | st.integers(1, 99),
                                        text=long_text, sub_goals=st.lists(text, max_size=4)),
                              max_size=6))
        measures = draw(st.lists(st.builds(
            Measure, goal=st.none() | st.integers(1, 99), text=long_text,
            responsible=st.none() | single, due=st.none() | dates), max_size=6))
        parts.append(Part(id=pid("support-plan"), category="support_plan",
                          source="/fall/hilfeplan", content=SupportPlanData(plan=SupportPlan(
                              as_of=draw(st.none() | dates), goals=goals, measures=measures))))
    if draw(st.booleans()):
        parts.append(Part(id=pid("child-protection"), category="child_protection",
                          source="/fall/kinderschutz", content=ChildProtectionData(
                              endangerment_assessed=draw(st.none() | st.booleans()),
                              assessed_on=draw(st.none() | dates),
                              text=draw(st.none() | long_text))))
    for i in range(draw(st.integers(0, 12))):
        note = Note(text=draw(long_text), written_on=draw(st.none() | dates))
        who = draw(st.none() | st.sampled_from(["self", "mother", "father", "legal_guardian",
                                                 "other"]))
        if who is None:
            parts.append(Part(id=pid(f"note-{i + 1}"), category="case_notes",
                              source=f"/fall/notizen/{i}", content=note))
            continue
        name = None
        if who == "other":
            name = PersonName(family=draw(single.filter(
                lambda s: s.casefold() not in ENTRUSTER_WORDS)))
        parts.append(Part(id=pid(f"note-{i + 1}"), category="entrusted",
                          entrusted_by=Grantor(relation=who, name=name),
                          source=f"/fall/notizen/{i}", content=note))
    reasons = draw(st.lists(st.sampled_from([p.id for p in parts]), unique=True, max_size=3))
    statutory = None
    if zweck[0] == "child_protection":  # required with that purpose since 2026-12
        statutory = StatutoryClaim(legal_basis="sgb-viii-8a", justification=draw(long_text))
    conference = draw(st.none() | st.builds(ConferenceInfo, scheduled_at=aware_datetimes,
                                            location=st.none() | single))
    return TransferEnvelope(**head, purpose=zweck[0],
                            message_type=draw(st.sampled_from([zweck[1], "case_export"])),
                            source_system="jugendamt", reason_part_ids=reasons,
                            statutory=statutory, conference=conference, parts=parts)


# --- provider FHIR ---------------------------------------------------------------------------

CATEGORIES_IN_FHIR = ["health", "addiction", "criminal", "case_notes", "employment", "housing",
                      "debts", "education", "finances"]
patient_ids = st.builds(
    Identifier,
    system=st.sampled_from(["urn:casebridge:client"]) | agency_ids.map(
        lambda a: f"urn:casebridge:id:{a}:patient"),
    value=st.from_regex(r"[0-9a-z-]{3,16}", fullmatch=True))


def _identity(draw: st.DrawFn, part_id: str, source: str) -> Part:
    name = draw(st.none() | st.builds(PersonName, family=single,
                                      given=st.lists(single, max_size=3),
                                      birth_name=st.none() | single))
    return Part(id=part_id, category="identity", source=source, content=IdentityData(
        identifiers=draw(st.lists(patient_ids, max_size=3)), name=name,
        birth_date=draw(st.none() | dates),
        sex=draw(st.none() | st.sampled_from(["female", "male", "diverse", "unknown"]))))


def _contact(draw: st.DrawFn, part_id: str, source: str) -> Part:
    addresses = draw(st.lists(st.builds(
        Address, lines=st.lists(single, max_size=2), street=st.none() | single,
        house_number=st.none() | single, postal_code=st.none() | single, city=single,
        country=st.none() | st.just("DE")), max_size=3))
    telecom = draw(st.lists(st.builds(ContactPoint, system=st.sampled_from(
        ["phone", "email", "fax", "sms", "url", "other"]), value=single), max_size=3))
    return Part(id=part_id, category="contact", source=source,
                content=ContactData(addresses=addresses, telecom=telecom))


@st.composite
def fhir_referrals(draw: st.DrawFn) -> TransferEnvelope:
    """Referral-bundle envelopes whose parts sit in Patient, reasonCode and note."""
    head = draw(_header())
    purpose, default_type = draw(st.sampled_from([
        ("referral", "referral"), ("case_conference", "case_conference"),
        ("joint_planning", "plan_update")]))
    sr = "/entry/1/resource"
    identity_id = draw(st.just("identity") | st.just("p-identity"))
    parts = [_identity(draw, identity_id, "/entry/0/resource")]
    if draw(st.booleans()):
        parts.append(_contact(draw, draw(st.just("contact") | st.just("p-contact")),
                              "/entry/0/resource"))
    reasons = []
    for i in range(draw(st.integers(0, 8))):
        reasons.append(Part(id=f"r{i}", category=draw(st.sampled_from(CATEGORIES_IN_FHIR)),
                            source=f"{sr}/reasonCode/{i}", content=Statement(
                                label=draw(st.none() | single), text=draw(long_text))))
    notes = []
    for i in range(draw(st.integers(0, 8))):
        notes.append(Part(id=f"n{i}", category=draw(st.sampled_from(CATEGORIES_IN_FHIR)),
                          source=f"{sr}/note/{i}", content=Note(
                              text=draw(long_text), written_on=draw(st.none() | dates),
                              author=draw(st.none() | single))))
    conference = draw(st.none() | st.builds(ConferenceInfo, scheduled_at=aware_datetimes,
                                            location=st.none() | single))
    return TransferEnvelope(**head, purpose=purpose,
                            message_type=draw(st.sampled_from([default_type, "case_export"])),
                            source_system="provider-fhir", conference=conference,
                            reason_part_ids=[p.id for p in reasons],
                            parts=[*parts, *reasons, *notes])


@st.composite
def fhir_status_updates(draw: st.DrawFn) -> TransferEnvelope:
    """Status-update envelopes a Task carries (subject by identifier or contained Patient)."""
    head = draw(_header())
    head["recipients"] = head["recipients"][:1]
    head["service"] = None
    if head["correlation_id"] is None:
        head["correlation_id"] = draw(message_ids)
    parts = []
    style = draw(st.sampled_from(["none", "identifier", "patient"]))
    if style == "identifier":
        parts.append(Part(id="identity", category="identity", source="/for",
                          content=IdentityData(identifiers=[draw(patient_ids)])))
    elif style == "patient":
        parts.append(_identity(draw, "identity", "/contained/0"))
        if draw(st.booleans()):
            parts.append(_contact(draw, "contact", "/contained/0"))
    for i in range(draw(st.integers(0, 4))):
        parts.append(Part(id=f"n{i}", category=draw(st.sampled_from(CATEGORIES_IN_FHIR)),
                          source=f"/note/{i}", content=Note(text=draw(long_text))))
    status = draw(st.sampled_from(["requested", "received", "accepted", "rejected",
                                   "in_progress", "completed", "cancelled", "failed"]))
    fhir_code = status.replace("_", "-")
    return TransferEnvelope(**head, message_type="status_update",
                            purpose=draw(st.sampled_from(["service_delivery", "referral"])),
                            source_system="provider-fhir", parts=parts,
                            status=StatusInfo(status=status, effective_on=draw(st.none() | dates),
                                              native_status=draw(st.just(fhir_code) | single)))
