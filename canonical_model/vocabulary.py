"""Closed vocabularies of ../shared/domain.md: categories, purposes, outcomes, reasons, phases.

These are the only words the consent engine, the audit trail and the adapters use for what data
is, why it moves and what was decided. Adding a word here is a change of the domain, not of code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Strict


class Category(StrEnum):
    """The data category every datum carries (domain.md, "Data categories")."""

    IDENTITY = "identity"
    CONTACT = "contact"
    HOUSEHOLD = "household"
    BENEFITS = "benefits"
    FINANCES = "finances"
    DEBTS = "debts"
    EMPLOYMENT = "employment"
    EDUCATION = "education"
    HOUSING = "housing"
    HEALTH = "health"
    ADDICTION = "addiction"
    CRIMINAL = "criminal"
    CHILD_PROTECTION = "child_protection"
    SUPPORT_PLAN = "support_plan"
    CASE_NOTES = "case_notes"
    ENTRUSTED = "entrusted"


#: Art. 9/10 GDPR categories: pass only under a consent that names them (rule 4).
SPECIAL_CATEGORIES = frozenset({Category.HEALTH, Category.ADDICTION, Category.CRIMINAL})
#: What a consent without ``provision.code`` ("all categories") covers: not special, not entrusted.
ORDINARY_CATEGORIES = frozenset(Category) - SPECIAL_CATEGORIES - {Category.ENTRUSTED}


class Purpose(StrEnum):
    """Why data moves (domain.md, "Purposes")."""

    REFERRAL = "referral"
    CASE_CONFERENCE = "case_conference"
    JOINT_PLANNING = "joint_planning"
    SERVICE_DELIVERY = "service_delivery"
    BENEFIT_DECISION = "benefit_decision"
    CHILD_PROTECTION = "child_protection"


#: Purposes a client can consent to; child_protection transfers are statutory (rule 8).
CONSENTABLE_PURPOSES = frozenset(Purpose) - {Purpose.CHILD_PROTECTION}


#: Legal bases of statutory transfers without consent (rule 8) that casebridge knows a citation
#: for (codes of ``urn:casebridge:legal-basis``); the route table decides which a route admits.
STATUTORY_BASES: dict[str, str] = {
    "sgb-viii-8a": "§ 8a SGB VIII",
    "sgb-viii-8a-4": "§ 8a Abs. 4 SGB VIII",
    "kkg-4": "§ 4 KKG",
    "kkg-4-3": "§ 4 Abs. 3 KKG",
}


def legal_basis_citation(code: str) -> str:
    """The citation of a legal-basis code for people ("§ 4 KKG"); the code if unknown."""
    return STATUTORY_BASES.get(code, code)


class AgencyKind(StrEnum):
    """What kind of agency an agency id belongs to."""

    JOBCENTER = "jobcenter"
    SOCIAL_OFFICE = "social_office"
    YOUTH_OFFICE = "youth_office"
    PROVIDER = "provider"


class CasePhase(StrEnum):
    """Phase of a case file in the case-management cycle."""

    INTAKE = "intake"
    ASSESSMENT = "assessment"
    PLANNING = "planning"
    MONITORING = "monitoring"
    EVALUATION = "evaluation"
    CLOSED = "closed"


class MessageType(StrEnum):
    """What a transfer envelope carries."""

    REFERRAL = "referral"
    CASE_CONFERENCE = "case_conference"
    PLAN_UPDATE = "plan_update"
    CASE_EXPORT = "case_export"
    STATUS_UPDATE = "status_update"


class ReferralStatus(StrEnum):
    """Lifecycle of a referral: requested → received → accepted | rejected → in_progress → end."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


TERMINAL_STATUSES = frozenset(
    {ReferralStatus.REJECTED, ReferralStatus.COMPLETED, ReferralStatus.CANCELLED,
     ReferralStatus.FAILED}
)
_STATUS_RANK = {
    ReferralStatus.REQUESTED: 0,
    ReferralStatus.RECEIVED: 1,
    ReferralStatus.ACCEPTED: 2,
    ReferralStatus.REJECTED: 2,
    ReferralStatus.IN_PROGRESS: 3,
    ReferralStatus.COMPLETED: 4,
    ReferralStatus.CANCELLED: 4,
    ReferralStatus.FAILED: 4,
}


def can_transition(current: ReferralStatus, new: ReferralStatus) -> bool:
    """Whether a referral may move from ``current`` to ``new``.

    Moves go forward only and terminal states are final. Intermediate states may be skipped,
    because real systems do not report every step (a provider may answer ``in-progress`` first).
    Cancellation and failure may end any open referral.
    """
    if current in TERMINAL_STATUSES:
        return False
    if new in (ReferralStatus.CANCELLED, ReferralStatus.FAILED):
        return True
    return _STATUS_RANK[new] > _STATUS_RANK[current]


class Outcome(StrEnum):
    """A consent decision for one recipient (domain.md, "Decision outcomes")."""

    PERMIT = "permit"
    PARTIAL = "partial"
    BLOCK = "block"
    OVERRIDE = "override"


class WithholdReason(StrEnum):
    """Why a category was withheld; exactly one per withheld category."""

    UNKNOWN_CLIENT = "unknown_client"
    NO_CONSENT = "no_consent"
    SENDER_NOT_COVERED = "sender_not_covered"
    RECIPIENT_NOT_COVERED = "recipient_not_covered"
    PURPOSE_NOT_COVERED = "purpose_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    SPECIAL_CATEGORY_NOT_NAMED = "special_category_not_named"
    ENTRUSTER_NOT_CONSENTED = "entruster_not_consented"
    GUARDIAN_REQUIRED = "guardian_required"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    IDENTITY_NOT_COVERED = "identity_not_covered"
    REQUIRED_CATEGORY_MISSING = "required_category_missing"


class ConsentForm(StrEnum):
    """How a consent was given (§67b SGB X)."""

    WRITTEN = "written"
    ELECTRONIC = "electronic"


class ConsentStatus(StrEnum):
    """FHIR Consent.status as casebridge understands it; only ``active`` grants anything."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    REJECTED = "rejected"
    DRAFT = "draft"
    PROPOSED = "proposed"


class PersonRelation(StrEnum):
    """Who a person is to the client: the client, a parent, a legal guardian, someone else.

    Used for who gave a consent and for who entrusted a datum (§65 SGB VIII).
    """

    SELF = "self"
    MOTHER = "mother"
    FATHER = "father"
    PARENT = "parent"
    LEGAL_GUARDIAN = "legal_guardian"
    OTHER = "other"


class HouseholdRole(StrEnum):
    """Role of a household / benefit-community member relative to the client."""

    CHILD = "child"
    PARTNER = "partner"
    MOTHER = "mother"
    FATHER = "father"
    PARENT = "parent"
    LEGAL_GUARDIAN = "legal_guardian"
    SIBLING = "sibling"
    OTHER = "other"


class Sex(StrEnum):
    """Administrative sex as agency systems record it."""

    FEMALE = "female"
    MALE = "male"
    DIVERSE = "diverse"
    UNKNOWN = "unknown"




# Enum fields accept their string value even though the models are strict otherwise: JSON and
# adapters speak in codes, and a wrong code still fails validation with the field's name.
CategoryField = Annotated[Category, Strict(False)]
PurposeField = Annotated[Purpose, Strict(False)]
AgencyKindField = Annotated[AgencyKind, Strict(False)]
CasePhaseField = Annotated[CasePhase, Strict(False)]
MessageTypeField = Annotated[MessageType, Strict(False)]
ReferralStatusField = Annotated[ReferralStatus, Strict(False)]
OutcomeField = Annotated[Outcome, Strict(False)]
WithholdReasonField = Annotated[WithholdReason, Strict(False)]
ConsentFormField = Annotated[ConsentForm, Strict(False)]
ConsentStatusField = Annotated[ConsentStatus, Strict(False)]
PersonRelationField = Annotated[PersonRelation, Strict(False)]
HouseholdRoleField = Annotated[HouseholdRole, Strict(False)]
SexField = Annotated[Sex, Strict(False)]
