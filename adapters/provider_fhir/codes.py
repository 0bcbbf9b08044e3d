"""Systems, code maps and security labels of the provider FHIR interface."""

from __future__ import annotations

from casebridge.canonical_model import Category, MessageType, Purpose, ReferralStatus, Sex

MESSAGE_SYSTEM = "urn:casebridge:message"
PURPOSE_SYSTEM = "urn:casebridge:purpose"
AGENCY_SYSTEM = "urn:casebridge:agency"
CATEGORY_SYSTEM = "urn:casebridge:category"

#: Extensions casebridge writes (and reads back) for what FHIR has no element for.
EXT_PART = "urn:casebridge:part"  # Annotation: a whole canonical part as JSON
EXT_CATEGORY = "urn:casebridge:category"  # Annotation: the category of the note
EXT_LABEL = "urn:casebridge:label"  # reasonCode: the source system's own heading
EXT_MESSAGE_TYPE = "urn:casebridge:message-type"
EXT_CORRELATION = "urn:casebridge:correlation-id"
EXT_REASON_PART = "urn:casebridge:reason-part"
EXT_STATUTORY = "urn:casebridge:statutory"
EXT_IDENTITY_PART = "urn:casebridge:identity-part"
EXT_CONTACT_PART = "urn:casebridge:contact-part"
ADXP_STREET = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"
ADXP_HOUSE_NUMBER = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

#: Categories whose presence a resource announces in ``meta.security``: Art. 9/10 GDPR
#: categories and entrusted data (§65 SGB VIII). Each gets a ``urn:casebridge:category`` label,
#: the HL7 confidentiality code R (restricted) and, where HL7 v3 ActCode has a sensitivity code
#: for it, that code (ETH: substance abuse information). HL7 has no code for health in general
#: or for criminal records, so those carry the casebridge label and R only.
LABELLED = (Category.HEALTH, Category.ADDICTION, Category.CRIMINAL, Category.ENTRUSTED)
ACT_CODE_FOR = {Category.ADDICTION: ("ETH", "substance abuse information sensitivity")}
CATEGORY_FOR_ACT_CODE = {"ETH": Category.ADDICTION}
#: Fallback when an element does not name its category: the labels, then this order.
SPECIAL_ORDER = (Category.HEALTH, Category.ADDICTION, Category.CRIMINAL)

TASK_STATUS = {
    "requested": ReferralStatus.REQUESTED,
    "received": ReferralStatus.RECEIVED,
    "accepted": ReferralStatus.ACCEPTED,
    "rejected": ReferralStatus.REJECTED,
    "in-progress": ReferralStatus.IN_PROGRESS,
    "completed": ReferralStatus.COMPLETED,
    "cancelled": ReferralStatus.CANCELLED,
    "failed": ReferralStatus.FAILED,
}
FHIR_STATUS = {v: k for k, v in TASK_STATUS.items()}
#: FHIR task states that exist but have no meaning in a referral's lifecycle.
UNMAPPED_TASK_STATUS = frozenset({"draft", "ready", "on-hold", "entered-in-error"})

GENDER = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.DIVERSE, "unknown": Sex.UNKNOWN}
FHIR_GENDER = {v: k for k, v in GENDER.items()}

#: Purposes a referral bundle can carry and the message type it has unless told otherwise.
BUNDLE_PURPOSES = {
    Purpose.REFERRAL: MessageType.REFERRAL,
    Purpose.CASE_CONFERENCE: MessageType.CASE_CONFERENCE,
    Purpose.JOINT_PLANNING: MessageType.PLAN_UPDATE,
}
REQUEST_INTENTS = frozenset({"proposal", "plan", "directive", "order", "original-order",
                             "reflex-order", "filler-order", "instance-order", "option"})
