"""Consent directives: a client's permission to share, in canonical form.

The FHIR R4 ``Consent`` profile of ../shared/interfaces/consent-fhir/ maps onto this model one to
one; the consent engine decides with it. A directive is never changed: a withdrawal is a separate
record, and a change is a withdrawal plus a new directive.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, Field, model_validator

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.people import Grantor, Identifier, PersonName
from casebridge.canonical_model.types import AgencyId, LegalBasisCode, NonEmptyStr, Text
from casebridge.canonical_model.vocabulary import (
    CONSENTABLE_PURPOSES,
    ORDINARY_CATEGORIES,
    Category,
    CategoryField,
    ConsentFormField,
    ConsentStatusField,
    PurposeField,
)


class Evidence(CanonicalModel):
    """Where the signed or recorded consent can be found."""

    title: Text
    content_type: NonEmptyStr = Field(pattern=r"^(application/pdf|text/plain)$")


class ConsentDirective(CanonicalModel):
    """Who may disclose what to whom, for which purposes, when; given by whom."""

    consent_id: NonEmptyStr = Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    status: ConsentStatusField
    client_identifiers: list[Identifier] = Field(min_length=1)
    client_name: PersonName | None = None
    client_birth_date: date | None = None
    grantor: Grantor
    recorded_by: AgencyId
    given_at: AwareDatetime
    form: ConsentFormField
    evidence: Evidence
    legal_basis: LegalBasisCode | None = None
    valid_from: AwareDatetime | None = Field(default=None, description="Defaults to given_at.")
    valid_until: AwareDatetime | None = Field(default=None, description="None: until withdrawn.")
    disclosers: list[AgencyId] = Field(min_length=1)
    recipients: list[AgencyId] = Field(min_length=1)
    purposes: list[PurposeField] = Field(min_length=1)
    categories: list[CategoryField] | None = Field(
        default=None,
        description="None means every ordinary category (never special ones nor 'entrusted').",
    )

    @model_validator(mode="after")
    def _coherent(self) -> ConsentDirective:
        if self.valid_until is not None and self.valid_until < self.effective_from:
            raise ValueError("valid_until: the end lies before the start")
        bad = [p for p in self.purposes if p not in CONSENTABLE_PURPOSES]
        if bad:
            raise ValueError(
                f"purposes: '{bad[0]}' is statutory and cannot be consented to"
            )
        if self.categories is not None and not self.categories:
            raise ValueError("categories: an empty list covers nothing; omit it for 'all ordinary'")
        return self

    @property
    def effective_from(self) -> datetime:
        """Start of validity: ``valid_from`` or, when absent, the time it was given."""
        return self.valid_from or self.given_at

    @property
    def covered_categories(self) -> frozenset[Category]:
        """The categories this directive covers; absent categories mean all ordinary ones."""
        if self.categories is None:
            return ORDINARY_CATEGORIES
        return frozenset(self.categories)


class ConsentWithdrawal(CanonicalModel):
    """The withdrawal of a consent: effective at once (Art. 7(3) GDPR)."""

    consent_id: NonEmptyStr
    at: AwareDatetime
    by: NonEmptyStr = Field(description="Who withdrew it (a person or desk), as recorded.")
