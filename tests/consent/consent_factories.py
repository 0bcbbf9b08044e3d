"""Small builders for consent directives and envelopes used by the engine tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from casebridge.canonical_model import (
    Category,
    ConsentDirective,
    Evidence,
    Grantor,
    Identifier,
    IdentityData,
    Note,
    Part,
    PersonName,
    Statement,
    StatutoryClaim,
    TransferEnvelope,
)

CET = timezone(timedelta(hours=1))
JC = "jobcenter-duisburg"
SA = "sozialamt-duisburg"
JA = "jugendamt-duisburg"
SB = "suchtberatung-diakonie-du"
ADULT_BIRTH = date(1988, 4, 12)
CHILD_BIRTH = date(2012, 2, 3)
#: The default moment of decisions in these tests (the child is 14 then).
AT = datetime(2026, 11, 20, 9, 15, tzinfo=CET)


def t(text: str) -> datetime:
    """An aware datetime from ISO text (CET if no offset given)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=CET)


def grantor(relation: str = "self", name: str | None = None) -> Grantor:
    """A grantor/entruster; parents and others get a name (``"Family, Given"``)."""
    if relation != "self" and name is None:
        name = "Yılmaz, Ayşe"
    person = None
    if name is not None:
        family, _, given = name.partition(", ")
        person = PersonName(family=family, given=[given] if given else [])
    return Grantor(relation=relation, name=person)


def consent(
    consent_id: str = "c-1",
    *,
    disclosers: Iterable[str] = (JC,),
    recipients: Iterable[str] = (SB,),
    purposes: Iterable[str] = ("referral",),
    categories: Iterable[str] | None = ("identity", "contact"),
    given_by: Grantor | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    given_at: datetime = datetime(2026, 11, 1, 10, 0, tzinfo=CET),
    status: str = "active",
    birth_date: date | None = ADULT_BIRTH,
    legal_basis: str | None = None,
) -> ConsentDirective:
    """A consent directive with sensible defaults (job centre → addiction service, referral)."""
    return ConsentDirective(
        consent_id=consent_id,
        status=status,
        client_identifiers=[
            Identifier(system=f"urn:casebridge:id:{JC}:kundennummer", value="962D123456")
        ],
        client_birth_date=birth_date,
        grantor=given_by or grantor(),
        recorded_by=JC,
        given_at=given_at,
        form="written",
        evidence=Evidence(title="Einwilligung, Blatt 1", content_type="application/pdf"),
        legal_basis=legal_basis,
        valid_from=valid_from,
        valid_until=valid_until,
        disclosers=list(disclosers),
        recipients=list(recipients),
        purposes=list(purposes),
        categories=None if categories is None else list(categories),
    )


def part(category: str, part_id: str | None = None, *, entrusted_by: Grantor | None = None,
         birth_date: date | None = None) -> Part:
    """A part of ``category`` with content of a fitting shape."""
    content: Any
    if category == "identity":
        content = IdentityData(
            identifiers=[Identifier(system=f"urn:casebridge:id:{JC}:kundennummer", value="X1")],
            name=PersonName(family="Yılmaz", given=["Ayşe"]),
            birth_date=birth_date,
        )
    elif category == "entrusted":
        content = Note(text="anvertraut")
    elif category in {"contact", "household", "benefits", "support_plan", "child_protection"}:
        # shapes bound to one category: a statement cannot carry them, so use the data shapes
        from casebridge.canonical_model import (
            BenefitData,
            ChildProtectionData,
            ContactData,
            HouseholdData,
            SupportPlan,
            SupportPlanData,
        )

        content = {
            "contact": lambda: ContactData(),
            "household": lambda: HouseholdData(),
            "benefits": lambda: BenefitData(benefit_type="Bürgergeld"),
            "support_plan": lambda: SupportPlanData(plan=SupportPlan()),
            "child_protection": lambda: ChildProtectionData(endangerment_assessed=True),
        }[category]()
    else:
        content = Statement(text=f"about {category}")
    return Part(
        id=part_id or f"p-{category}",
        category=category,
        entrusted_by=entrusted_by if category == "entrusted" else None,
        content=content,
    )


def envelope(
    categories: Iterable[str] = ("identity", "contact"),
    *,
    sender: str = JC,
    recipients: Iterable[str] = (SB,),
    purpose: str = "referral",
    parts: Iterable[Part] = (),
    statutory: StatutoryClaim | None = None,
    message_id: str = "MSG-0001",
) -> TransferEnvelope:
    """An envelope with one part per category (plus ``parts``)."""
    body = [part(c) for c in categories] + list(parts)
    return TransferEnvelope(
        message_id=message_id,
        message_type="referral",
        sender=sender,
        recipients=list(recipients),
        purpose=purpose,
        created_at=AT,
        statutory=statutory,
        parts=body,
    )


def fates(decision: Any) -> dict[str, str]:
    """``{category: "released" | reason}`` of one Decision, for compact assertions."""
    out = {str(c): "released" for c in decision.released}
    out.update({str(w.category): str(w.reason) for w in decision.withheld})
    return out


ALL = list(Category)
