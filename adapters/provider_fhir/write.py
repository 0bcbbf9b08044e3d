"""Canonical envelopes (from any source system) → FHIR R4 resources as plain JSON dicts.

Referral, case-conference and joint-planning envelopes become a transaction Bundle: Patient
(identity + contact), ServiceRequest (header, reasons as ``reasonCode``, notes as ``note``),
Task ``requested``. A status update becomes a Task. Parts FHIR has no element for (household,
benefits, plans, case files, entrusted notes, statements that are not reasons, a second
identity) ride in an Annotation with the complete canonical part as JSON in the extension
``urn:casebridge:part``, which the reader restores. Every resource that carries a special or
entrusted category says so in ``meta.security``.
"""

from __future__ import annotations

import uuid
from typing import Any

from casebridge.adapters import moments
from casebridge.adapters.provider_fhir import codes, elements
from casebridge.canonical_model import (
    ContactData,
    IdentityData,
    MessageType,
    Note,
    Part,
    TransferEnvelope,
)
from casebridge.errors import RenderError

Json = dict[str, Any]
_NS = uuid.UUID("5c1e8f0e-3b9f-4f55-9d1c-6a0b7c2f4e11")  # fixed: same envelope, same urn:uuids


def _ref(agency: str) -> Json:
    return {"identifier": {"system": codes.AGENCY_SYSTEM, "value": agency}}


def _client_parts(envelope: TransferEnvelope) -> tuple[Part | None, Part | None, list[Part]]:
    identity = next((p for p in envelope.parts if isinstance(p.content, IdentityData)), None)
    contact = next((p for p in envelope.parts if isinstance(p.content, ContactData)), None)
    rest = [p for p in envelope.parts if p is not identity and p is not contact]
    return identity, contact, rest


def _meta(parts: list[Part]) -> Json:
    labels = elements.security(p.category for p in parts)
    return {"meta": {"security": labels}} if labels else {}


def bundle(envelope: TransferEnvelope) -> Json:
    """A transaction Bundle for a referral / case conference / joint planning envelope."""
    if envelope.purpose not in codes.BUNDLE_PURPOSES:
        raise RenderError(f"purpose '{envelope.purpose}' has no FHIR referral form (only "
                          "referral, case_conference, joint_planning)")
    identity, contact, rest = _client_parts(envelope)
    if identity is None or not isinstance(identity.content, IdentityData):
        raise RenderError("a referral bundle needs the client's identity (Patient)")
    urls = {k: f"urn:uuid:{uuid.uuid5(_NS, f'{envelope.message_id}/{k}')}"
            for k in ("Patient", "ServiceRequest", "Task")}
    patient = elements.patient(
        identity.content, contact.content if contact and isinstance(contact.content, ContactData)
        else None, (identity.id, contact.id if contact else "contact"))
    reason_ids = set(envelope.reason_part_ids)
    reasons: list[Json] = []
    notes: list[Json] = []
    in_reason_code: list[str] = []
    for part in rest:
        cc = elements.reason(part) if part.id in reason_ids else None
        if cc is not None:
            reasons.append(cc)
            in_reason_code.append(part.id)
        else:
            notes.append(elements.annotation(part))
    sr: Json = {"resourceType": "ServiceRequest", **_meta(rest)}
    exts = _header_extensions(envelope, in_reason_code)
    if exts:
        sr["extension"] = exts
    sr |= {
        "identifier": [{"system": codes.MESSAGE_SYSTEM, "value": envelope.message_id}],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": codes.PURPOSE_SYSTEM,
                                  "code": str(envelope.purpose)}]}],
    }
    if envelope.service:
        sr["code"] = {"text": envelope.service}
    sr["subject"] = {"reference": urls["Patient"]}
    if envelope.conference and envelope.conference.scheduled_at:
        sr["occurrenceDateTime"] = moments.iso(envelope.conference.scheduled_at,
                                                "conference.scheduled_at")
    sr["authoredOn"] = moments.iso(envelope.created_at, "created_at")
    sr["requester"] = _ref(envelope.sender)
    sr["performer"] = [_ref(r) for r in envelope.recipients]
    if envelope.conference and envelope.conference.location:
        sr["locationCode"] = [{"text": envelope.conference.location}]
    if reasons:
        sr["reasonCode"] = reasons
    if notes:
        sr["note"] = notes
    task: Json = {"resourceType": "Task", "status": "requested", "intent": "order",
                  "focus": {"reference": urls["ServiceRequest"]},
                  "for": {"reference": urls["Patient"]},
                  "authoredOn": moments.iso(envelope.created_at, "created_at"),
                  "requester": _ref(envelope.sender)}
    if len(envelope.recipients) == 1:
        task["owner"] = _ref(envelope.recipients[0])
    entries = [(urls["Patient"], patient), (urls["ServiceRequest"], sr), (urls["Task"], task)]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": moments.iso(envelope.created_at, "created_at"),
        "entry": [{"fullUrl": url, "resource": res,
                   "request": {"method": "POST", "url": res["resourceType"]}}
                  for url, res in entries],
    }


def _header_extensions(envelope: TransferEnvelope, in_reason_code: list[str]) -> list[Json]:
    exts: list[Json] = []
    if envelope.message_type != codes.BUNDLE_PURPOSES[envelope.purpose]:
        exts.append({"url": codes.EXT_MESSAGE_TYPE, "valueCode": str(envelope.message_type)})
    if envelope.correlation_id:
        exts.append({"url": codes.EXT_CORRELATION, "valueString": envelope.correlation_id})
    if list(envelope.reason_part_ids) != in_reason_code:
        exts += [{"url": codes.EXT_REASON_PART, "valueString": i}
                 for i in envelope.reason_part_ids]
    if envelope.statutory:
        exts.append({"url": codes.EXT_STATUTORY, "extension": [
            {"url": "legal-basis", "valueCode": envelope.statutory.legal_basis},
            {"url": "justification", "valueString": envelope.statutory.justification}]})
    return exts


def task(envelope: TransferEnvelope) -> Json:
    """A Task reporting the status of a referral (a status_update envelope)."""
    status = envelope.status
    if envelope.message_type != MessageType.STATUS_UPDATE or status is None:
        raise RenderError("only a status_update becomes a standalone Task")
    if len(envelope.recipients) != 1:
        raise RenderError("a Task status update goes to exactly one recipient (Task.requester)")
    if envelope.service or envelope.conference or envelope.statutory or envelope.reason_part_ids:
        raise RenderError("a Task status update has no service, conference, statutory claim "
                          "or reasons")
    identity, contact, rest = _client_parts(envelope)
    out: Json = {"resourceType": "Task", **_meta(rest)}
    subject: Json | None = None
    if identity is not None and isinstance(identity.content, IdentityData):
        c = identity.content
        # A part read from a contained Patient goes back into one, so its source survives.
        simple = (contact is None and identity.id == "identity" and len(c.identifiers) == 1
                  and c.name is None and c.birth_date is None and c.sex is None
                  and not (identity.source or "").startswith("/contained/"))
        if simple:
            ident = c.identifiers[0]
            subject = {"identifier": {"system": ident.system, "value": ident.value}}
        else:
            out["contained"] = [elements.patient(
                c, contact.content if contact and isinstance(contact.content, ContactData)
                else None, (identity.id, contact.id if contact else "contact"),
                resource_id="client")]
            subject = {"reference": "#client"}
    elif contact is not None:
        rest = [contact, *rest]  # contact without identity: nowhere natural, so carried
    out |= {
        "identifier": [{"system": codes.MESSAGE_SYSTEM, "value": envelope.message_id}],
        "status": codes.FHIR_STATUS[status.status],
        "intent": "order",
    }
    if envelope.purpose != "service_delivery":
        out["code"] = {"coding": [{"system": codes.PURPOSE_SYSTEM,
                                   "code": str(envelope.purpose)}]}
    out["focus"] = {"identifier": {"system": codes.MESSAGE_SYSTEM,
                                   "value": envelope.correlation_id}}
    if subject is not None:
        out["for"] = subject
    if status.native_status and status.native_status != codes.FHIR_STATUS[status.status]:
        out["businessStatus"] = {"text": status.native_status}
    if status.effective_on:
        out["executionPeriod"] = {"start": status.effective_on.isoformat()}
    reason = next((p for p in rest if p.source == "/statusReason" and p.content.kind == "note"
                   and p.category == "case_notes"), None)
    if reason is not None and isinstance(reason.content, Note):
        # the reader's statusReason part goes back where it came from (e.g. why rejected)
        out["statusReason"] = {"text": reason.content.text}
        rest = [p for p in rest if p is not reason]
    out["lastModified"] = moments.iso(envelope.created_at, "created_at")
    out["requester"] = _ref(envelope.recipients[0])
    out["owner"] = _ref(envelope.sender)
    if rest:
        out["note"] = [elements.annotation(p) for p in rest]
    return out
