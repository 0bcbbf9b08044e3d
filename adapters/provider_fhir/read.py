"""Validated FHIR resources (fhir.resources R4B models) → canonical envelopes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from casebridge.adapters.json_input import at
from casebridge.adapters.provider_fhir import codes, elements
from casebridge.adapters.provider_fhir.elements import Bad
from casebridge.adapters.provider_fhir.notification import notification_fields
from casebridge.canonical_model import Category, MessageType, Part, Purpose, TransferEnvelope
from casebridge.canonical_model.validation import problems_from
from casebridge.errors import MappingError, Problem

Json = dict[str, Any]

_BUNDLE = {"id", "meta", "type", "timestamp", "entry", "identifier", "language"}
_ENTRY = {"fullUrl", "resource", "request"}
_SERVICE_REQUEST = {"id", "meta", "text", "language", "extension", "identifier", "status",
                    "intent", "category", "code", "subject", "authoredOn", "requester",
                    "performer", "reasonCode", "note", "occurrenceDateTime", "locationCode"}
_TASK = {"id", "meta", "text", "language", "identifier", "status", "intent", "focus",
         "for_fhir", "authoredOn", "lastModified", "requester", "owner", "code",
         "businessStatus", "executionPeriod", "note", "contained", "statusReason"}
_SR_EXTENSIONS = (codes.EXT_MESSAGE_TYPE, codes.EXT_CORRELATION, codes.EXT_REASON_PART,
                  codes.EXT_STATUTORY)


def _agency(ref: Any, where: str) -> str:
    ident = getattr(ref, "identifier", None) if ref is not None else None
    if ident is None or ident.system != codes.AGENCY_SYSTEM or not ident.value:
        raise Bad(where, "needs an identifier in system urn:casebridge:agency")
    return str(ident.value)


def _message_id(identifiers: Any, where: str) -> str:
    for ident in identifiers or []:
        if ident.system == codes.MESSAGE_SYSTEM and ident.value:
            return str(ident.value)
    raise Bad(where, "needs an identifier in system urn:casebridge:message")


def _aware(value: Any, where: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Bad(where, "needs a date-time with time zone")
    return value


def _purpose(concepts: Any, where: str) -> Purpose:
    for i, cc in enumerate(concepts or []):
        for j, coding in enumerate(cc.coding or []):
            if coding.system == codes.PURPOSE_SYSTEM:
                try:
                    return Purpose(coding.code)
                except ValueError:
                    raise Bad(f"{where}/{i}/coding/{j}/code", "unknown purpose code") from None
    raise Bad(where, "needs a coding in system urn:casebridge:purpose")


def _envelope(fields: Json, parts: list[tuple[str, Json | Part]], source: str) -> TransferEnvelope:
    fields["parts"] = [p for _, p in parts]
    try:
        return TransferEnvelope.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for problem, err in zip(problems_from(exc), exc.errors(include_url=False), strict=True):
            loc = err["loc"]
            if len(loc) >= 2 and loc[0] == "parts" and isinstance(loc[1], int):
                problems.append(Problem(at(source, parts[loc[1]][0]), problem.message))
            else:
                problems.append(Problem(at(source, "/"), str(problem)))
        raise MappingError(f"{source}: not a valid canonical message", problems=problems) from None


def _notes(notes: Any, where: str, labels: set[Category]) -> list[tuple[str, Json | Part]]:
    return [(f"{where}/{i}", elements.part_from_annotation(n, i, f"{where}/{i}", labels))
            for i, n in enumerate(notes or [])]


def bundle_to_envelope(bundle: Any, source: str) -> TransferEnvelope:
    """A referral transaction Bundle (Patient, ServiceRequest, optional Task) → envelope."""
    try:
        return _bundle(bundle, source)
    except Bad as bad:
        raise MappingError(f"{source}: cannot map the referral bundle",
                           problems=[Problem(at(source, bad.where), bad.message)]) from None


def _bundle(bundle: Any, source: str) -> TransferEnvelope:
    elements.only(bundle, _BUNDLE, "")
    if bundle.type != "transaction":
        raise Bad("/type", "a referral must be a Bundle of type 'transaction'")
    if any(type(e.resource).__name__ == "Communication" for e in bundle.entry or []):
        return _notification(bundle, source)
    found: dict[str, tuple[int, Any, str | None]] = {}
    for i, entry in enumerate(bundle.entry or []):
        elements.only(entry, _ENTRY, f"/entry/{i}")
        res = entry.resource
        kind = type(res).__name__ if res is not None else "nothing"
        if kind not in ("Patient", "ServiceRequest", "Task"):
            raise Bad(f"/entry/{i}/resource", f"a referral bundle cannot contain {kind}")
        if kind in found:
            raise Bad(f"/entry/{i}/resource", f"a referral bundle holds one {kind} only")
        found[kind] = (i, res, entry.fullUrl)
    for needed in ("ServiceRequest", "Patient"):
        if needed not in found:
            raise Bad("/entry", f"a referral bundle needs a {needed}")
    p_index, patient, p_url = found["Patient"]
    s_index, sr, s_url = found["ServiceRequest"]
    sw = f"/entry/{s_index}/resource"
    elements.only(sr, _SERVICE_REQUEST, sw)
    exts = elements.extensions(sr, _SR_EXTENSIONS, sw)
    if sr.status != "active":
        raise Bad(f"{sw}/status", "a referral ServiceRequest must have status 'active'")
    if sr.intent not in codes.REQUEST_INTENTS:
        raise Bad(f"{sw}/intent", "not a FHIR request intent code")
    if sr.subject is not None and sr.subject.reference not in (
            p_url, f"Patient/{patient.id}" if patient.id else None):
        raise Bad(f"{sw}/subject", "does not refer to the bundle's Patient")
    purpose = _purpose(sr.category, f"{sw}/category")
    if purpose not in codes.BUNDLE_PURPOSES:
        raise Bad(f"{sw}/category", "a referral bundle's purpose must be referral, "
                  "case_conference or joint_planning")
    sender = _agency(sr.requester, f"{sw}/requester")
    recipients = [_agency(p, f"{sw}/performer/{i}") for i, p in enumerate(sr.performer or [])]
    if "Task" in found:
        _check_task(*found["Task"], sender, recipients, s_url)
    labels = elements.labelled(sr.meta)
    pw = f"/entry/{p_index}/resource"
    parts: list[tuple[str, Json | Part]] = [
        (pw, p) for p in elements.parts_from_patient(patient, pw)]
    reasons = [(f"{sw}/reasonCode/{i}",
                elements.part_from_reason(cc, i, f"{sw}/reasonCode/{i}", labels))
               for i, cc in enumerate(sr.reasonCode or [])]
    parts += reasons
    parts += _notes(sr.note, f"{sw}/note", labels)
    explicit_reasons = [e.valueString for e in exts.get(codes.EXT_REASON_PART, [])]
    created = sr.authoredOn if sr.authoredOn is not None else bundle.timestamp
    conference = None
    if sr.occurrenceDateTime is not None or sr.locationCode:
        conference = {"scheduled_at": _aware(sr.occurrenceDateTime, f"{sw}/occurrenceDateTime")
                      if sr.occurrenceDateTime is not None else None,
                      "location": sr.locationCode[0].text if sr.locationCode else None}
    fields: Json = {
        "message_id": _message_id(sr.identifier, f"{sw}/identifier"),
        "correlation_id": _ext_str(exts, codes.EXT_CORRELATION),
        "message_type": _ext_code(exts, codes.EXT_MESSAGE_TYPE) or codes.BUNDLE_PURPOSES[purpose],
        "sender": sender,
        "recipients": recipients,
        "purpose": purpose,
        "created_at": _aware(created, f"{sw}/authoredOn"),
        "source_system": "provider-fhir",
        "service": sr.code.text if sr.code is not None else None,
        "conference": conference,
        "reason_part_ids": explicit_reasons or [_id(p) for _, p in reasons],
        "statutory": _statutory(exts),
    }
    return _envelope(fields, parts, source)


def _notification(bundle: Any, source: str) -> TransferEnvelope:
    """A child-protection notification bundle (Patient, RelatedPerson*, Communication)."""
    found: dict[str, list[tuple[int, Any, str | None]]] = {}
    for i, entry in enumerate(bundle.entry or []):
        elements.only(entry, _ENTRY, f"/entry/{i}")
        res = entry.resource
        kind = type(res).__name__ if res is not None else "nothing"
        if kind not in ("Patient", "RelatedPerson", "Communication"):
            raise Bad(f"/entry/{i}/resource", f"a notification bundle cannot contain {kind}")
        found.setdefault(kind, []).append((i, res, entry.fullUrl))
    fields, parts = notification_fields(found, bundle.timestamp)
    return _envelope(fields, list(parts), source)


def _id(part: Json | Part) -> str:
    return part.id if isinstance(part, Part) else str(part["id"])


def _ext_str(exts: dict[str, list[Any]], url: str) -> str | None:
    return exts[url][0].valueString if url in exts else None


def _ext_code(exts: dict[str, list[Any]], url: str) -> str | None:
    return exts[url][0].valueCode if url in exts else None


def _statutory(exts: dict[str, list[Any]]) -> Json | None:
    if codes.EXT_STATUTORY not in exts:
        return None
    inner = {e.url: e for e in exts[codes.EXT_STATUTORY][0].extension or []}
    basis, why = inner.get("legal-basis"), inner.get("justification")
    return {"legal_basis": basis.valueCode if basis else None,
            "justification": why.valueString if why else None}


def _check_task(index: int, task: Any, _url: str | None, sender: str,
                recipients: list[str], request_url: str | None) -> None:
    tw = f"/entry/{index}/resource"
    elements.only(task, _TASK, tw)
    focus = task.focus.reference if task.focus is not None else None
    if focus is not None and request_url is not None and focus != request_url:
        raise Bad(f"{tw}/focus", "does not refer to the bundle's ServiceRequest")
    if task.status != "requested":
        raise Bad(f"{tw}/status", "the Task of a referral bundle must have status 'requested'")
    if task.requester is not None and _agency(task.requester, f"{tw}/requester") != sender:
        raise Bad(f"{tw}/requester", "differs from the ServiceRequest's requester")
    if task.owner is not None and _agency(task.owner, f"{tw}/owner") not in recipients:
        raise Bad(f"{tw}/owner", "is not a performer of the ServiceRequest")


def task_to_envelope(task: Any, source: str) -> TransferEnvelope:
    """A standalone Task (a provider's status report on a referral) → status_update envelope."""
    try:
        return _task(task, source)
    except Bad as bad:
        raise MappingError(f"{source}: cannot map the Task",
                           problems=[Problem(at(source, bad.where), bad.message)]) from None


def _task(task: Any, source: str) -> TransferEnvelope:
    elements.only(task, _TASK, "")
    if task.status in codes.UNMAPPED_TASK_STATUS:
        raise Bad("/status", "this Task status has no meaning for a referral")
    if task.status not in codes.TASK_STATUS:
        raise Bad("/status", "not a FHIR Task status code")
    focus = getattr(task.focus, "identifier", None) if task.focus is not None else None
    if focus is None or focus.system != codes.MESSAGE_SYSTEM or not focus.value:
        raise Bad("/focus", "needs the referral's identifier in system urn:casebridge:message")
    labels = elements.labelled(task.meta)
    parts: list[tuple[str, Json | Part]] = []
    parts += _subject(task)
    if task.statusReason is not None:
        if not task.statusReason.text or task.statusReason.coding:
            raise Bad("/statusReason", "only a statusReason with text is supported")
        parts.append(("/statusReason", {
            "id": "status-reason", "category": "case_notes", "source": "/statusReason",
            "content": {"kind": "note", "text": task.statusReason.text}}))
    parts += _notes(task.note, "/note", labels)
    period = task.executionPeriod
    start = period.start if period is not None else None
    native = task.businessStatus.text if task.businessStatus is not None else None
    created = task.lastModified if task.lastModified is not None else task.authoredOn
    purpose = _purpose([task.code], "/code") if task.code is not None else (
        Purpose.SERVICE_DELIVERY)
    fields: Json = {
        "message_id": _message_id(task.identifier, "/identifier"),
        "correlation_id": focus.value,
        "message_type": MessageType.STATUS_UPDATE,
        "sender": _agency(task.owner, "/owner"),
        "recipients": [_agency(task.requester, "/requester")],
        "purpose": purpose,
        "created_at": _aware(created, "/lastModified"),
        "source_system": "provider-fhir",
        "status": {"status": codes.TASK_STATUS[task.status], "native_status": native or task.status,
                   "effective_on": start.date() if isinstance(start, datetime) else start},
    }
    return _envelope(fields, parts, source)


def _subject(task: Any) -> list[tuple[str, Json]]:
    ref = task.for_fhir
    if ref is None:
        if task.contained:
            raise Bad("/contained", "contained resources are only read through 'for'")
        return []
    if ref.identifier is not None:
        if ref.reference is not None or task.contained:
            raise Bad("/for", "refer to the client by identifier or contained Patient, not both")
        if not ref.identifier.system or not ref.identifier.value:
            raise Bad("/for/identifier", "needs system and value")
        return [("/for", {"id": "identity", "category": "identity", "source": "/for",
                          "content": {"kind": "identity", "identifiers": [
                              {"system": ref.identifier.system, "value": ref.identifier.value}]}})]
    contained = {f"#{r.id}": (i, r) for i, r in enumerate(task.contained or [])}
    if ref.reference not in contained or type(contained[ref.reference][1]).__name__ != "Patient":
        raise Bad("/for", "must name the client by identifier or refer to a contained Patient")
    if len(contained) > 1:
        raise Bad("/contained", "only the client's Patient may be contained")
    index, patient = contained[ref.reference]
    where = f"/contained/{index}"
    return [(where, p) for p in elements.parts_from_patient(patient, where)]
