"""A child-protection notification (§ 8a SGB VIII, § 4 KKG) as a FHIR transaction Bundle.

Interface of 2026-12: a ``Patient`` (the child), the parents as ``RelatedPerson`` pointing to the
child, and one ``Communication`` whose ``category`` is ``urn:casebridge:purpose|child_protection``,
``sender``/``recipient`` are agency identifiers, ``reasonCode`` names the legal basis
(``urn:casebridge:legal-basis``) with the justification as its ``text``, ``payload`` holds the
observations and ``sent`` the time. The Patient's identity and contact become the client's parts;
the related persons one household part (parents and guardians hold custody unless a court
decided otherwise, and the format has no field for that); each payload one child-protection part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from casebridge.adapters import statutory
from casebridge.adapters.provider_fhir import elements
from casebridge.adapters.provider_fhir.elements import Bad
from casebridge.canonical_model import Category, MessageType, Purpose

Json = dict[str, Any]

_COMMUNICATION = {"id", "meta", "text", "language", "identifier", "status", "category",
                  "subject", "sent", "sender", "recipient", "reasonCode", "payload"}
_RELATED = {"id", "meta", "text", "language", "identifier", "patient", "relationship", "name",
            "birthDate", "gender", "telecom", "address"}
LEGAL_BASIS_SYSTEM = "urn:casebridge:legal-basis"
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
#: v3 RoleCode of a related person → (household role, the word the youth office writes).
RELATIONSHIP = {
    "MTH": ("mother", "Mutter"), "NMTH": ("mother", "Mutter"),
    "FTH": ("father", "Vater"), "NFTH": ("father", "Vater"),
    "PRN": ("parent", "Elternteil"), "NPRN": ("parent", "Elternteil"),
    "GUARD": ("legal_guardian", "Vormund"),
}


def _refers(ref: Any, url: str | None, res: Any, kind: str) -> bool:
    target = getattr(ref, "reference", None)
    return target is not None and target in (url, f"{kind}/{res.id}" if res.id else None)


def notification_fields(
    found: dict[str, list[tuple[int, Any, str | None]]], timestamp: Any,
) -> tuple[Json, list[tuple[str, Json]]]:
    """Header fields and (pointer, part) pairs of a notification bundle's resources."""
    if len(found.get("Communication", [])) != 1 or len(found.get("Patient", [])) != 1:
        raise Bad("/entry", "a notification bundle holds one Communication and one Patient")
    c_index, comm, _ = found["Communication"][0]
    p_index, patient, p_url = found["Patient"][0]
    cw, pw = f"/entry/{c_index}/resource", f"/entry/{p_index}/resource"
    elements.only(comm, _COMMUNICATION, cw)
    purpose = _purpose(comm.category, f"{cw}/category")
    if comm.subject is not None and not _refers(comm.subject, p_url, patient, "Patient"):
        raise Bad(f"{cw}/subject", "does not refer to the bundle's Patient")
    sent = comm.sent if comm.sent is not None else timestamp
    if not isinstance(sent, datetime) or sent.tzinfo is None:
        raise Bad(f"{cw}/sent", "needs a date-time with time zone")
    basis, justification = _reason(comm.reasonCode, f"{cw}/reasonCode")
    problem = statutory.claim_problem(purpose, basis, justification)
    if problem is not None:
        raise Bad(f"{cw}/reasonCode", problem)
    parts: list[tuple[str, Json]] = [(pw, p) for p in elements.parts_from_patient(patient, pw)]
    child_birth = parts[0][1]["content"].get("birth_date")
    if child_birth is not None and not statutory.is_minor(child_birth, sent.date()):
        raise Bad(f"{pw}/birthDate", "the Patient of a child-protection notification must be "
                  "a minor")
    members = [_member(res, f"/entry/{i}/resource", p_url, patient)
               for i, res, _ in found.get("RelatedPerson", [])]
    if members:
        parts.append(("/entry", {"id": "household", "category": Category.HOUSEHOLD,
                                 "source": "/entry", "content": {"kind": "household",
                                                                 "members": members}}))
    for i, item in enumerate(comm.payload or []):
        where = f"{cw}/payload/{i}"
        elements.only(item, ("contentString",), where)
        if not item.contentString or not item.contentString.strip():
            raise Bad(where, "needs contentString (the observation, as text)")
        parts.append((where, {"id": f"payload-{i + 1}", "category": Category.CHILD_PROTECTION,
                              "source": where, "content": {"kind": "child_protection",
                                                           "text": item.contentString}}))
    recipients = [_agency(r, f"{cw}/recipient/{i}") for i, r in enumerate(comm.recipient or [])]
    fields: Json = {
        "message_id": _message_id(comm.identifier, f"{cw}/identifier"),
        "message_type": MessageType.CASE_EXPORT,
        "sender": _agency(comm.sender, f"{cw}/sender"),
        "recipients": recipients,
        "purpose": purpose,
        "created_at": sent,
        "source_system": "provider-fhir",
        "statutory": None if basis is None else {"legal_basis": basis,
                                                  "justification": justification},
    }
    return fields, parts


def _purpose(concepts: Any, where: str) -> Purpose:
    from casebridge.adapters.provider_fhir.read import _purpose as purpose_of

    purpose = purpose_of(concepts, where)
    if purpose is not Purpose.CHILD_PROTECTION:
        raise Bad(where, "a Communication bundle carries a child-protection notification only")
    return purpose


def _agency(ref: Any, where: str) -> str:
    from casebridge.adapters.provider_fhir.read import _agency as agency_of

    return agency_of(ref, where)


def _message_id(identifiers: Any, where: str) -> str:
    from casebridge.adapters.provider_fhir.read import _message_id as message_id_of

    return message_id_of(identifiers, where)


def _reason(concepts: Any, where: str) -> tuple[str | None, str | None]:
    """(legal-basis code, justification) of the Communication's reasonCode."""
    concepts = concepts or []
    if len(concepts) > 1:
        raise Bad(where, "names one legal basis with its justification, not several")
    if not concepts:
        return None, None
    cc = concepts[0]
    elements.only(cc, ("coding", "text"), f"{where}/0")
    basis = None
    for j, coding in enumerate(cc.coding or []):
        if coding.system != LEGAL_BASIS_SYSTEM or not coding.code:
            raise Bad(f"{where}/0/coding/{j}", "only a urn:casebridge:legal-basis code is "
                      "understood here")
        if basis is not None:
            raise Bad(f"{where}/0/coding/{j}", "names a second legal basis")
        basis = str(coding.code)
    text = (cc.text or "").strip() or None
    return basis, text


def _member(res: Any, where: str, p_url: str | None, patient: Any) -> Json:
    elements.only(res, _RELATED, where)
    if not _refers(res.patient, p_url, patient, "Patient"):
        raise Bad(f"{where}/patient", "does not refer to the bundle's Patient")
    role, label = "other", None
    for i, cc in enumerate(res.relationship or []):
        for j, coding in enumerate(cc.coding or []):
            if coding.system == ROLE_CODE_SYSTEM and coding.code in RELATIONSHIP:
                role, label = RELATIONSHIP[coding.code]
            else:
                raise Bad(f"{where}/relationship/{i}/coding/{j}",
                          "not a v3 RoleCode of a parent or guardian")
    [identity, *rest] = elements.parts_from_patient(_as_patient(res), where)
    person: Json = {k: v for k, v in identity["content"].items() if k != "kind"}
    if rest:
        contact = rest[0]["content"]
        person["addresses"], person["telecom"] = contact["addresses"], contact["telecom"]
    return {"role": role, "role_label": label, "has_custody": role != "other",
            "person": person}


def _as_patient(res: Any) -> Any:
    """A RelatedPerson's person data through the Patient reader (same element names)."""
    from fhir.resources.R4B.patient import Patient

    data = res.model_dump(mode="json", exclude_none=True)
    kept = {k: v for k, v in data.items()
            if k in ("identifier", "name", "birthDate", "gender", "telecom", "address")}
    return Patient.model_validate({"resourceType": "Patient", **kept})
