"""Categorised parts: the only place a transfer envelope carries personal data.

Every part has exactly one :class:`Category`; its ``content`` is one of a few typed shapes,
discriminated by ``kind``. Some shapes belong to one category only (a person's identity is always
``identity``); statements and notes can describe anything and take the category the adapter gives
them. Entrusted parts (§65 SGB VIII) must name who entrusted them, so the consent engine can ask
for that person's consent.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.case import CaseFile, SupportPlan
from casebridge.canonical_model.people import (
    Address,
    ContactPoint,
    Grantor,
    HouseholdMember,
    Identifier,
    Person,
    PersonName,
)
from casebridge.canonical_model.types import NonEmptyStr, PartialDate, Text
from casebridge.canonical_model.vocabulary import Category, CategoryField, SexField


class IdentityData(CanonicalModel):
    """Who the client is: agency identifiers, name as written, birth date, sex."""

    kind: Literal["identity"] = "identity"
    identifiers: list[Identifier] = Field(default_factory=list)
    name: PersonName | None = None
    birth_date: date | None = None
    sex: SexField | None = None


class ContactData(CanonicalModel):
    """How to reach the client: addresses and telecom."""

    kind: Literal["contact"] = "contact"
    addresses: list[Address] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)


class HouseholdData(CanonicalModel):
    """Household or benefit-community members and legal guardians."""

    kind: Literal["household"] = "household"
    community_id: Identifier | None = Field(
        default=None, description="e.g. the job centre's BG-Nummer of the benefit community."
    )
    members: list[HouseholdMember] = Field(default_factory=list)


class BenefitData(CanonicalModel):
    """A benefit entitlement or decision."""

    kind: Literal["benefit"] = "benefit"
    benefit_type: Text
    granted_from: date | None = None
    granted_until: date | None = None
    amount: Annotated[Decimal, Strict(False)] | None = None
    currency: NonEmptyStr | None = None


class CaseFileData(CanonicalModel):
    """The sender's case file: its id, legal basis, type of help."""

    kind: Literal["case_file"] = "case_file"
    case_file: CaseFile


class SupportPlanData(CanonicalModel):
    """A support / cooperation plan."""

    kind: Literal["support_plan"] = "support_plan"
    plan: SupportPlan


class ChildProtectionData(CanonicalModel):
    """A child-endangerment assessment or observation (§8a SGB VIII, §4 KKG)."""

    kind: Literal["child_protection"] = "child_protection"
    endangerment_assessed: bool | None = None
    assessed_on: date | None = None
    text: Text | None = None
    child: Person | None = Field(
        default=None,
        description="The endangered child when it is not the client (e.g. a child in an adult "
        "client's household): the person this datum is about.",
    )


class Statement(CanonicalModel):
    """A fact stated about the client in the source system's words (finding, obstacle, …).

    ``label`` keeps the source's own heading or code (e.g. ``Vermittlungshemmnis``/``sucht``,
    ``Angabe``/``Wohnen``) so rendering back to the same format is lossless.
    """

    kind: Literal["statement"] = "statement"
    label: NonEmptyStr | None = None
    text: Text
    period_start: PartialDate | None = None
    period_end: PartialDate | None = None


class Note(CanonicalModel):
    """A free-text note of a case worker, or something entrusted to one."""

    kind: Literal["note"] = "note"
    text: Text
    written_on: date | None = None
    author: NonEmptyStr | None = None


PartContent = Annotated[
    IdentityData
    | ContactData
    | HouseholdData
    | BenefitData
    | CaseFileData
    | SupportPlanData
    | ChildProtectionData
    | Statement
    | Note,
    Field(discriminator="kind"),
]

#: Content shapes that only make sense in one category; others may carry any category. Keyed
#: by content class: every part of every envelope passes the validator below, where reading
#: ``__dict__`` once, a type lookup and identity comparisons (a validated enum field holds the
#: member itself) halve the cost of attribute reads and string comparisons.
_FIXED_BY_TYPE: dict[type, Category] = {
    IdentityData: Category.IDENTITY,
    ContactData: Category.CONTACT,
    HouseholdData: Category.HOUSEHOLD,
    BenefitData: Category.BENEFITS,
    SupportPlanData: Category.SUPPORT_PLAN,
    ChildProtectionData: Category.CHILD_PROTECTION,
}
# Read twice per part; a module global is ~35 ns cheaper per read than the class attribute.
_ENTRUSTED = Category.ENTRUSTED


class Part(CanonicalModel):
    """One categorised unit of personal data in an envelope."""

    id: NonEmptyStr = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Unique in its envelope."
    )
    category: CategoryField
    entrusted_by: Grantor | None = Field(
        default=None, description="Who entrusted it (§65 SGB VIII); required for 'entrusted'."
    )
    source: NonEmptyStr | None = Field(
        default=None,
        description="Where in the native message it came from (an element path or JSON pointer).",
    )
    content: PartContent

    @model_validator(mode="after")
    def _category_rules(self) -> Part:
        fields = self.__dict__
        category = fields["category"]
        if (category is _ENTRUSTED) is (fields["entrusted_by"] is None):
            if category is _ENTRUSTED:
                raise ValueError("an 'entrusted' part must name who entrusted it (entrusted_by)")
            raise ValueError("entrusted_by is only allowed on parts of category 'entrusted'")
        fixed = _FIXED_BY_TYPE.get(type(fields["content"]))
        if fixed is not None and category is not fixed:
            raise ValueError(
                f"content of kind '{self.content.kind}' must have category "
                f"{fixed}, not '{category}'"
            )
        return self
