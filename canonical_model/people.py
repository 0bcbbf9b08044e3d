"""Agencies, clients, persons and their identifiers."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from pydantic import Field, model_validator

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.types import AgencyId, IdentifierSystem, NonEmptyStr, Text
from casebridge.canonical_model.vocabulary import (
    AgencyKindField,
    HouseholdRoleField,
    PersonRelation,
    PersonRelationField,
    SexField,
)

CLIENT_ID_SYSTEM = "urn:casebridge:client"
AGENCY_SYSTEM = "urn:casebridge:agency"


def agency_identifier_system(agency: str, kind: str) -> str:
    """The identifier system URI for an agency's own ids, e.g. its Kundennummer."""
    return f"urn:casebridge:id:{agency}:{kind}"


# German convention for writing umlauts without diacritics, applied before other diacritics are
# stripped, so "Müller" and "Mueller" compare equal; dotless ı has no decomposition.
_TRANSLITERATION = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "ø": "o", "æ": "ae", "đ": "d", "ł": "l"}
)
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_.']+")
_COMMA = re.compile(r"\s*,\s*")


def normalise_name(text: str) -> str:
    """A form of a name for matching only: casefolded, transliterated, without diacritics.

    "Yılmaz, Ayşe" and "Yilmaz, Ayse" normalise to the same string. The form is never shown or
    stored as the name; names are kept as written.
    """
    # Compatibility forms first (𝕊 → S), then case, then transliteration, then diacritics; the
    # final casefold catches letters that only appear once diacritics are gone.
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLITERATION)
    decomposed = unicodedata.normalize("NFKD", folded)
    stripped = unicodedata.normalize(
        "NFKC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ).casefold().translate(_TRANSLITERATION)
    spaced = _SEPARATORS.sub(" ", stripped)
    return _COMMA.sub(", ", spaced).strip(" ,")


class Identifier(CanonicalModel):
    """An identifier of a person in one system (system URI + value)."""

    system: IdentifierSystem
    value: NonEmptyStr


class Agency(CanonicalModel):
    """An agency taking part in the exchange."""

    id: AgencyId
    kind: AgencyKindField
    system: NonEmptyStr = Field(description="Name of the adapter that speaks its native format.")
    name: NonEmptyStr | None = None


class PersonName(CanonicalModel):
    """A person's name as written by the source system (diacritics kept)."""

    family: NonEmptyStr | None = None
    given: list[NonEmptyStr] = Field(default_factory=list)
    birth_name: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> PersonName:
        fields = self.__dict__
        if fields["family"] is None and not fields["given"]:
            raise ValueError("a name needs a family name or a given name")
        return self

    def display(self) -> str:
        """'Family, Given' as the social office writes it."""
        given = " ".join(self.given)
        if self.family and given:
            return f"{self.family}, {given}"
        return self.family or given

    def normalised(self) -> str:
        """The matching form of :meth:`display` (see :func:`normalise_name`)."""
        return normalise_name(self.display())


class Address(CanonicalModel):
    """A postal address; structured where the source is, else as written in ``text``."""

    lines: list[NonEmptyStr] = Field(default_factory=list)
    street: NonEmptyStr | None = None
    house_number: NonEmptyStr | None = None
    postal_code: NonEmptyStr | None = None
    city: NonEmptyStr | None = None
    country: NonEmptyStr | None = None
    text: NonEmptyStr | None = Field(default=None, description="Unstructured form as written.")

    @model_validator(mode="after")
    def _not_empty(self) -> Address:
        fields = self.__dict__
        if not (
            fields["lines"]
            or fields["street"]
            or fields["house_number"]
            or fields["postal_code"]
            or fields["city"]
            or fields["text"]
        ):
            raise ValueError("an address needs at least one element")
        return self


class ContactPoint(CanonicalModel):
    """A phone number, e-mail address or similar."""

    system: NonEmptyStr = Field(pattern=r"^(phone|email|fax|sms|url|other)$")
    value: NonEmptyStr


class Person(CanonicalModel):
    """A natural person: names, birth date, sex, addresses, telecom, identifiers."""

    name: PersonName | None = None
    birth_date: date | None = None
    sex: SexField | None = None
    identifiers: list[Identifier] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)


class HouseholdMember(CanonicalModel):
    """A member of the client's household or benefit community, or a legal guardian."""

    role: HouseholdRoleField
    role_label: NonEmptyStr | None = Field(
        default=None, description="The role as the source system wrote it, e.g. 'Mutter'."
    )
    has_custody: bool = False
    person: Person


class Client(CanonicalModel):
    """A client as casebridge's registry knows them: an id and their agency identifiers.

    The cross-reference is the only way casebridge links records of different agencies; it is
    built deliberately (consent import, explicit link), never by guessing.
    """

    client_id: NonEmptyStr
    identifiers: list[Identifier] = Field(default_factory=list)

    def identifier_for(self, system: str) -> Identifier | None:
        """The client's identifier in ``system``, if known."""
        return next((i for i in self.identifiers if i.system == system), None)


class Grantor(CanonicalModel):
    """Who gave a consent or entrusted a datum: the client, a parent, a guardian, or another."""

    relation: PersonRelationField
    name: PersonName | None = None

    @model_validator(mode="after")
    def _other_needs_name(self) -> Grantor:
        if self.name is None and self.relation is PersonRelation.OTHER:
            raise ValueError(
                "a person who is neither the client nor a parent/guardian needs a name"
            )
        return self


__all__ = [
    "AGENCY_SYSTEM",
    "CLIENT_ID_SYSTEM",
    "Address",
    "Agency",
    "AgencyId",
    "Client",
    "ContactPoint",
    "Grantor",
    "HouseholdMember",
    "Identifier",
    "Person",
    "PersonName",
    "Text",
    "agency_identifier_system",
    "normalise_name",
]
