"""Hypothesis strategies for canonical content, shared by model, consent and routing tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import strategies as st

from casebridge.canonical_model import (
    Address,
    BenefitData,
    CaseFile,
    CaseFileData,
    Category,
    ChildProtectionData,
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
    PersonRelation,
    Statement,
    SupportPlan,
    SupportPlanData,
    TransferEnvelope,
)

# Printable text of any script, without surrogates or control characters, stripped non-empty.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
).map(str.strip).filter(bool)
long_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=3000
).map(str.strip).filter(bool)
agency_ids = st.from_regex(r"[a-z][a-z0-9]{1,10}-[a-z]{2,10}", fullmatch=True)
message_ids = st.from_regex(r"[A-Z]{2}-[A-Z0-9]{2,6}-20[0-9]{2}-[0-9]{4,6}", fullmatch=True)
dates = st.dates(min_value=date(1920, 1, 1), max_value=date(2040, 12, 31))
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]),
)

names = st.builds(PersonName, family=text, given=st.lists(text, max_size=3),
                  birth_name=st.none() | text)
identifiers = st.builds(
    Identifier,
    system=agency_ids.map(lambda a: f"urn:casebridge:id:{a}:kundennummer"),
    value=st.from_regex(r"[0-9A-Z/]{3,16}", fullmatch=True),
)
addresses = st.builds(Address, street=text, house_number=st.none() | text,
                      postal_code=st.from_regex(r"[0-9]{5}", fullmatch=True), city=text)
persons = st.builds(Person, name=st.none() | names, birth_date=st.none() | dates,
                    addresses=st.lists(addresses, max_size=2))

CONTENT_FOR_FREE_CATEGORIES = [
    c for c in Category
    if c not in {Category.IDENTITY, Category.CONTACT, Category.HOUSEHOLD, Category.BENEFITS,
                 Category.SUPPORT_PLAN, Category.CHILD_PROTECTION, Category.ENTRUSTED}
]


@st.composite
def parts(draw: st.DrawFn, part_id: str, category: Category | None = None) -> Part:
    """One part of any category (or of ``category``) with a content shape allowed for it."""
    if category is None:
        category = draw(st.sampled_from(list(Category)))
    entrusted_by = None
    if category == Category.IDENTITY:
        content = draw(st.builds(IdentityData, identifiers=st.lists(identifiers, max_size=3),
                                 name=st.none() | names, birth_date=st.none() | dates))
    elif category == Category.CONTACT:
        content = draw(st.builds(ContactData, addresses=st.lists(addresses, max_size=2),
                                 telecom=st.lists(st.builds(ContactPoint, system=st.just("phone"),
                                                            value=text), max_size=2)))
    elif category == Category.HOUSEHOLD:
        content = draw(st.builds(HouseholdData, members=st.lists(
            st.builds(HouseholdMember, role=st.sampled_from(["child", "partner", "mother"]),
                      person=persons), max_size=4)))
    elif category == Category.BENEFITS:
        content = draw(st.builds(BenefitData, benefit_type=text,
                                 granted_until=st.none() | dates))
    elif category == Category.SUPPORT_PLAN:
        goals = st.lists(st.builds(Goal, number=st.integers(1, 20), text=long_text,
                                   sub_goals=st.lists(text, max_size=3)), max_size=5)
        measures = st.lists(st.builds(Measure, goal=st.none() | st.integers(1, 20), text=text,
                                      responsible=st.none() | text, due=st.none() | dates),
                            max_size=5)
        content = draw(st.builds(SupportPlanData, plan=st.builds(
            SupportPlan, as_of=st.none() | dates, goals=goals, measures=measures)))
    elif category == Category.CHILD_PROTECTION:
        content = draw(st.builds(ChildProtectionData, endangerment_assessed=st.booleans()))
    elif category == Category.ENTRUSTED:
        relation = draw(st.sampled_from(list(PersonRelation)))
        name = draw(names) if relation == PersonRelation.OTHER else None
        entrusted_by = Grantor(relation=relation, name=name)
        content = draw(st.builds(Note, text=long_text, written_on=st.none() | dates))
    else:
        content = draw(st.one_of(
            st.builds(Statement, label=st.none() | text, text=long_text),
            st.builds(Note, text=long_text, written_on=st.none() | dates),
            st.builds(CaseFileData, case_file=st.builds(
                CaseFile, agency=agency_ids, local_case_id=text)),
        ))
    return Part(id=part_id, category=category, entrusted_by=entrusted_by, content=content)


@st.composite
def envelopes(draw: st.DrawFn, max_parts: int = 8) -> TransferEnvelope:
    """A referral-like envelope with random categorised parts."""
    sender = draw(agency_ids)
    recipients = draw(st.lists(agency_ids.filter(lambda a: a != sender), min_size=1, max_size=3,
                               unique=True))
    n = draw(st.integers(0, max_parts))
    body = [draw(parts(f"p{i}")) for i in range(n)]
    reasons = draw(st.lists(st.sampled_from([p.id for p in body]), unique=True, max_size=2)
                   ) if body else []
    return TransferEnvelope(
        message_id=draw(message_ids),
        message_type=draw(st.sampled_from(["referral", "case_conference", "plan_update"])),
        sender=sender,
        recipients=recipients,
        purpose=draw(st.sampled_from(["referral", "case_conference", "joint_planning"])),
        created_at=draw(aware_datetimes),
        service=draw(st.none() | text),
        reason_part_ids=reasons,
        parts=body,
    )
