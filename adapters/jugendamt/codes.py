"""Code tables and conventions shared by the youth-office parser and renderer."""

from __future__ import annotations

from casebridge.canonical_model import HouseholdRole, MessageType, PersonRelation, Purpose

SCHEMA_TAG = "jugendamt-fallakte/3"

ZWECK_TO_PURPOSE = {
    "zuweisung": Purpose.REFERRAL,
    "fallkonferenz": Purpose.CASE_CONFERENCE,
    "hilfeplanung": Purpose.JOINT_PLANNING,
    "kinderschutz": Purpose.CHILD_PROTECTION,
}
PURPOSE_TO_ZWECK = {v: k for k, v in ZWECK_TO_PURPOSE.items()}

#: The message type a native export has when casebridge did not record another one.
DEFAULT_MESSAGE_TYPE = {
    "zuweisung": MessageType.REFERRAL,
    "fallkonferenz": MessageType.CASE_CONFERENCE,
    "hilfeplanung": MessageType.PLAN_UPDATE,
    "kinderschutz": MessageType.CASE_EXPORT,
}

#: ``anvertraut_von`` words (compared case-insensitively); any other text names a person.
ENTRUSTERS = {
    "kind": PersonRelation.SELF,
    "mutter": PersonRelation.MOTHER,
    "vater": PersonRelation.FATHER,
    "sorgeberechtigte": PersonRelation.LEGAL_GUARDIAN,
}
ENTRUSTER_WORD = {v: k for k, v in ENTRUSTERS.items()}

#: ``sorgeberechtigte[].rolle`` words; every holder of custody not listed is a legal guardian.
GUARDIAN_ROLES = {
    "mutter": HouseholdRole.MOTHER,
    "vater": HouseholdRole.FATHER,
    "elternteil": HouseholdRole.PARENT,
    "vormund": HouseholdRole.LEGAL_GUARDIAN,
    "vormundin": HouseholdRole.LEGAL_GUARDIAN,
}

#: Default part ids by JSON pointer of the native element the part comes from.
SLOT_IDS = {
    "/fall": "case-file",
    "/fall/kind": "identity",
    "/fall/kind/schule": "education",
    "/fall/sorgeberechtigte": "household",
    "/fall/hilfeplan": "support-plan",
    "/fall/kinderschutz": "child-protection",
}
KIND_POINTER = "/fall/kind"
SCHOOL_LABEL = "schule"

#: A note carrying a canonical part the format has no field for ends with this line + JSON.
CARRIED_MARKER = "[casebridge-teil] "


def note_id(index: int) -> str:
    """Default part id of ``/fall/notizen/{index}``."""
    return f"note-{index + 1}"


def hint_id(index: int) -> str:
    """Default part id of ``/fall/kinderschutz/hinweise/{index}``."""
    return f"hinweis-{index + 1}"


def fallnummer_system(agency: str) -> str:
    """Identifier system of the youth office's Fallnummer."""
    return f"urn:casebridge:id:{agency}:fallnummer"
