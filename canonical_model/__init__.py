"""The canonical case model: one shape for what every agency system sends.

Adapters translate native records into these models and back; the consent engine decides on
:class:`TransferEnvelope` and its categorised :class:`Part` s; routing carries envelopes.
"""

from casebridge.canonical_model.case import CaseFile, Goal, Measure, SupportPlan
from casebridge.canonical_model.consent import ConsentDirective, ConsentWithdrawal, Evidence
from casebridge.canonical_model.envelope import (
    SCHEMA_VERSION,
    ConferenceInfo,
    StatusInfo,
    StatutoryClaim,
    TransferEnvelope,
)
from casebridge.canonical_model.parts import (
    BenefitData,
    CaseFileData,
    ChildProtectionData,
    ContactData,
    HouseholdData,
    IdentityData,
    Note,
    Part,
    PartContent,
    Statement,
    SupportPlanData,
)
from casebridge.canonical_model.people import (
    AGENCY_SYSTEM,
    CLIENT_ID_SYSTEM,
    Address,
    Agency,
    Client,
    ContactPoint,
    Grantor,
    HouseholdMember,
    Identifier,
    Person,
    PersonName,
    agency_identifier_system,
    normalise_name,
)
from casebridge.canonical_model.referral import Referral, StatusChange
from casebridge.canonical_model.validation import validate_json, validate_python
from casebridge.canonical_model.vocabulary import (
    CONSENTABLE_PURPOSES,
    ORDINARY_CATEGORIES,
    SPECIAL_CATEGORIES,
    STATUTORY_BASES,
    TERMINAL_STATUSES,
    AgencyKind,
    CasePhase,
    Category,
    ConsentForm,
    ConsentStatus,
    HouseholdRole,
    MessageType,
    Outcome,
    PersonRelation,
    Purpose,
    ReferralStatus,
    Sex,
    WithholdReason,
    can_transition,
    legal_basis_citation,
)

__all__ = [
    "AGENCY_SYSTEM", "CLIENT_ID_SYSTEM", "CONSENTABLE_PURPOSES", "ORDINARY_CATEGORIES",
    "SCHEMA_VERSION", "SPECIAL_CATEGORIES", "STATUTORY_BASES", "TERMINAL_STATUSES",
    "Address", "Agency", "AgencyKind", "BenefitData", "CaseFile", "CaseFileData", "CasePhase",
    "Category", "ChildProtectionData", "Client", "ConferenceInfo", "ConsentDirective",
    "ConsentForm", "ConsentStatus", "ConsentWithdrawal", "ContactData", "ContactPoint",
    "Evidence", "Goal", "Grantor", "HouseholdData", "HouseholdMember", "HouseholdRole",
    "Identifier", "IdentityData", "Measure", "MessageType", "Note", "Outcome", "Part",
    "PartContent", "Person", "PersonName", "PersonRelation", "Purpose", "Referral",
    "ReferralStatus", "Sex", "Statement", "StatusChange", "StatusInfo", "StatutoryClaim",
    "SupportPlan", "SupportPlanData", "TransferEnvelope", "WithholdReason",
    "agency_identifier_system", "can_transition", "legal_basis_citation",
    "normalise_name", "validate_json",
    "validate_python",
]
