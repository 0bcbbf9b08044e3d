"""A child-protection notification (§ 8a SGB VIII, § 4 KKG) as a FHIR transaction Bundle.

Interface of 2026-12: a ``Patient`` (the child), the parents as ``RelatedPerson`` pointing to the
child, and one ``Communication`` whose ``category`` is ``urn:casebridge:purpose|child_protection``,
``sender``/``recipient`` are agency identifiers, ``reasonCode`` names the legal basis
(``urn:casebridge:legal-basis``) with the justification as its ``text``, ``payload`` holds the
observations and ``sent`` the time. The Patient's identity and contact become the client's parts;
the related persons one household part (parents and guardians hold custody unless a court
decided otherwise, and the format has no field for that); each payload one child-protection part,
unless it begins with a category heading (:mod:`casebridge.adapters.prose`): then it is of that
category, which is how :func:`bundle` writes what the Communication has no element for.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from casebridge.adapters import moments, prose, statutory
from casebridge.adapters.jugendamt.render import child_of_adult
from casebridge.adapters.provider_fhir import codes, elements
from casebridge.adapters.provider_fhir.elements import Bad
from casebridge.canonical_model import (
    Category,
    ChildProtectionData,
    ContactData,
    HouseholdData,
    HouseholdMember,
    IdentityData,
    MessageType,
    Part,
    Person,
    Purpose,
    Sex,
    TransferEnvelope,
)
from casebridge.errors import Problem, RenderError

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
        part: Json = {"id": f"payload-{i + 1}", "category": Category.CHILD_PROTECTION,
                      "source": where, "content": {"kind": "child_protection",
                                                   "text": item.contentString}}
        headed = prose.read(item.contentString)
        if headed is not None:
            part["category"], part["content"] = headed[0], prose.content_dict(headed[0], headed[2])
            if headed[1] is not None:
                part["entrusted_by"] = headed[1].model_dump()
        parts.append((where, part))
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


# --- out ---------------------------------------------------------------------------------------

_NS = uuid.UUID("0b5f3c52-8d4e-4c1f-9a57-2f61d8e0c7a4")  # fixed: same envelope, same urn:uuids
_ROLE_CODE = {"mother": "MTH", "father": "FTH", "parent": "PRN", "legal_guardian": "GUARD"}


def _ref(agency: str) -> Json:
    return {"identifier": {"system": codes.AGENCY_SYSTEM, "value": agency}}


def _related(member: HouseholdMember, patient_url: str) -> Json | None:
    """The RelatedPerson of a parent or guardian holding custody, or None (the member then
    travels as a prose payload).

    The person's data are written as in a Patient, whose element mapping reads back exactly,
    and reading the RelatedPerson back sets the role's word and custody; so the member comes
    back unchanged exactly when its role has a RoleCode, it holds custody and its role label
    is that word or none. Decided from the member, without building and reading a
    fhir.resources model at run time (tests/adapters/test_rendered_output_valid.py checks
    this decision against that read-back for generated members).
    """
    code = _ROLE_CODE.get(member.role)
    if code is None or member.has_custody is not True or (
            member.role_label not in (None, RELATIONSHIP[code][1])):
        return None
    person = member.person
    data = elements.patient(
        IdentityData(name=person.name, birth_date=person.birth_date, sex=person.sex,
                     identifiers=person.identifiers),
        ContactData(addresses=person.addresses, telecom=person.telecom), ("identity", "contact"))
    return {"resourceType": "RelatedPerson",
            **{k: v for k, v in data.items() if k in _RELATED},
            "patient": {"reference": patient_url},
            "relationship": [{"coding": [{"system": ROLE_CODE_SYSTEM, "code": code}]}]}


def _client_related(client: IdentityData, contact: ContactData | None, patient_url: str) -> Json:
    """An adult client as the child's RelatedPerson (parent by sex; the role is not known)."""
    data = elements.patient(client, contact, ("identity", "contact"))
    code = {Sex.FEMALE: "MTH", Sex.MALE: "FTH"}.get(client.sex, "PRN") if client.sex else "PRN"
    return {"resourceType": "RelatedPerson",
            **{k: v for k, v in data.items() if k in _RELATED},
            "patient": {"reference": patient_url},
            "relationship": [{"coding": [{"system": ROLE_CODE_SYSTEM, "code": code}]}]}


def _observation(part: Part, about: Person | None) -> bool:
    """An observation about the child (the Patient) fits a payload as it is."""
    c = part.content
    return (isinstance(c, ChildProtectionData) and part.category == Category.CHILD_PROTECTION
            and part.entrusted_by is None and c.text is not None
            and (c.child is None or c.child == about)
            and c.endangerment_assessed is None and c.assessed_on is None
            and prose.read(c.text) is None)


def bundle(envelope: TransferEnvelope) -> Json:
    """The notification Bundle of a child-protection envelope (youth office → provider under
    § 8a(4) SGB VIII, or any sender): Patient = the child, parents as RelatedPerson,
    Communication with legal basis, justification and observations. What the Communication has
    no element for is a payload in prose under its category heading, read back into it."""
    claim = envelope.statutory
    problem = statutory.claim_problem(
        envelope.purpose, None if claim is None else claim.legal_basis,
        None if claim is None else claim.justification)
    if problem is not None or claim is None:
        raise RenderError(problem or "a notification needs its legal basis",
                          problems=[Problem("statutory", problem or "no legal basis")])
    identity = next((p for p in envelope.parts if isinstance(p.content, IdentityData)
                     and p.entrusted_by is None), None)
    if identity is None or not isinstance(identity.content, IdentityData):
        raise RenderError("a child-protection notification needs the child's identity (Patient)")
    client = identity.content
    on = envelope.created_at.date()
    # The Patient is the child: for an adult client, the child the notification names (as
    # for the youth office's fall.kind); the client then is a RelatedPerson, and their own
    # identity and contact follow as notes of their categories.
    about = child_of_adult(client, list(envelope.parts), on)
    child = client if about is None else IdentityData(
        name=about.name, birth_date=about.birth_date, sex=about.sex,
        identifiers=about.identifiers)
    if child.birth_date is not None and not statutory.is_minor(child.birth_date, on):
        raise RenderError("the Patient of a child-protection notification must be a minor; "
                          "this message's client is an adult")
    contact = next((p for p in envelope.parts if isinstance(p.content, ContactData)
                    and p.entrusted_by is None), None)
    client_contact = contact.content if contact and isinstance(contact.content,
                                                                 ContactData) else None
    url = {k: f"urn:uuid:{uuid.uuid5(_NS, f'{envelope.message_id}/{k}')}"
           for k in ("Patient", "Communication")}
    if about is None:
        patient = elements.patient(child, client_contact,
                                   (identity.id, contact.id if contact else "contact"))
    else:
        patient = elements.patient(child, None, ("identity", "contact"))
    related: list[Json] = []
    payload: list[Json] = []
    if about is not None:
        related.append(_client_related(client, client_contact, url["Patient"]))
    household_done = False
    for part in envelope.parts:
        c = part.content
        if part is identity or part is contact:
            if about is not None:
                payload.append({"contentString": prose.note(part)})
            continue
        if (isinstance(c, HouseholdData) and not household_done and part.entrusted_by is None
                and part.category == Category.HOUSEHOLD and c.members):
            members = [_related(m, url["Patient"]) for m in c.members]
            if all(m is not None for m in members):
                related.extend(m for m in members if m is not None)
                household_done = True
                continue
        text = (c.text if _observation(part, about) and isinstance(c, ChildProtectionData)
                else None)
        payload.append({"contentString": text or prose.note(part)})
    labels = elements.security(p.category for p in envelope.parts)
    comm: Json = {"resourceType": "Communication", **({"meta": {"security": labels}}
                                                      if labels else {}),
                  "identifier": [{"system": codes.MESSAGE_SYSTEM, "value": envelope.message_id}],
                  "status": "completed",
                  "category": [{"coding": [{"system": codes.PURPOSE_SYSTEM,
                                            "code": str(envelope.purpose)}]}],
                  "subject": {"reference": url["Patient"]},
                  "sent": moments.iso(envelope.created_at, "created_at"),
                  "sender": _ref(envelope.sender),
                  "recipient": [_ref(r) for r in envelope.recipients],
                  "reasonCode": [{"coding": [{"system": LEGAL_BASIS_SYSTEM,
                                              "code": claim.legal_basis}],
                                  "text": claim.justification}]}
    if payload:
        comm["payload"] = payload
    entries = [(url["Patient"], patient),
               *((f"urn:uuid:{uuid.uuid5(_NS, f'{envelope.message_id}/related/{n}')}", r)
                 for n, r in enumerate(related)),
               (url["Communication"], comm)]
    return {"resourceType": "Bundle", "type": "transaction",
            "timestamp": moments.iso(envelope.created_at, "created_at"),
            "entry": [{"fullUrl": u, "resource": r,
                       "request": {"method": "POST", "url": r["resourceType"]}}
                      for u, r in entries]}
