"""FHIR R4 ``Consent`` import and export, exactly per ../shared/interfaces/consent-fhir/README.md.

Import is all-or-nothing: every consent of a file is read, every problem is collected with the
FHIR element it concerns (``Consent[cons-x].provision.code[2]: unknown category 'foo'``), and if
there is any, :class:`ConsentImportError` is raised and nothing is returned. Problems name
elements and codes, never identifier values or names.

Reading choices (the profile page leaves them open; casebridge takes the narrower one):

* Elements the page does not describe are ignored (``text``, ``meta``, ``verification``,
  ``provision.action``, other extensions, actors in other roles). Elements that would *narrow* a
  consent if honoured — nested ``provision.provision`` exceptions, ``provision.data``,
  ``dataPeriod``, ``securityLabel``, ``class`` — are refused instead: ignoring them would make
  the consent cover more than the client agreed to.
* Codes of ``provision.purpose`` and ``provision.code`` must be in casebridge's systems. A coding
  in another system is refused, because dropping it could turn a list of categories into "no
  list" = every ordinary category.
* Patient identifiers must use casebridge's systems (``urn:casebridge:id:{agency}:{kind}`` or
  ``urn:casebridge:client``): they are what links the consent to a client in the registry.
* Times keep their UTC offset. FHIR allows dates and partial dates in ``dateTime`` and
  ``period``; casebridge reads them in Europe/Berlin (the agencies' zone): a start or
  ``dateTime`` means the first instant of that day/month/year, an end the last instant
  (23:59:59.999999) — FHIR's "the whole period is included".

Export: a withdrawn consent is rendered with ``status`` ``inactive`` and ``provision.period.end``
at the withdrawal time (never later than its own end, never before its start), so that a FHIR
server reading it grants nothing after the withdrawal; everything else is rendered as imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson
from pydantic import ValidationError

from casebridge.canonical_model import (
    AGENCY_SYSTEM,
    CLIENT_ID_SYSTEM,
    CONSENTABLE_PURPOSES,
    Category,
    ConsentDirective,
    ConsentForm,
    ConsentStatus,
    Evidence,
    Grantor,
    Identifier,
    PersonName,
    PersonRelation,
    Purpose,
)
from casebridge.consent.engine import LOCAL_ZONE
from casebridge.errors import ConsentError, ConsentImportError, InputTooLarge, Problem
from casebridge.settings import get_settings

SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
SCOPE_CODE = "patient-privacy"
LOINC_SYSTEM = "http://loinc.org"
CONSENT_DOCUMENT_CODE = "59284-0"
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DISCLOSER_ROLE = "CST"
RECIPIENT_ROLE = "IRCP"
FORM_EXTENSION = "urn:casebridge:consent-form"
LEGAL_BASIS_SYSTEM = "urn:casebridge:legal-basis"
PURPOSE_SYSTEM = "urn:casebridge:purpose"
CATEGORY_SYSTEM = "urn:casebridge:category"
CONTENT_TYPES = ("application/pdf", "text/plain")

#: v3-RoleCode of a RelatedPerson performer → who gave the consent.
RELATION_CODES: dict[str, PersonRelation] = {
    "MTH": PersonRelation.MOTHER,
    "FTH": PersonRelation.FATHER,
    "GUARD": PersonRelation.LEGAL_GUARDIAN,
    "PRN": PersonRelation.PARENT,
}
_RELATION_TO_CODE = {v: k for k, v in RELATION_CODES.items()}
_RELATED_PERSON_IDS = {
    PersonRelation.MOTHER: "mother",
    PersonRelation.FATHER: "father",
    PersonRelation.LEGAL_GUARDIAN: "guardian",
    PersonRelation.PARENT: "parent",
}
_GRANTING_STATUSES = {s.value: s for s in ConsentStatus}
_CLIENT_SYSTEM = re.compile(
    r"^urn:casebridge:id:[a-z0-9][a-z0-9-]{0,62}[a-z0-9]:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
)
_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
_LEGAL_BASIS = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
#: FHIR elements that restrict a provision; honouring none of them, casebridge refuses them.
_NARROWING_PROVISION_ELEMENTS = ("provision", "data", "dataPeriod", "securityLabel", "class_fhir")


# --- import -------------------------------------------------------------------------------------


def parse_consents(
    raw: bytes, *, source: str = "<input>", max_bytes: int | None = None
) -> list[ConsentDirective]:
    """Read a FHIR ``Consent`` or collection ``Bundle`` of them; all of the file or an error."""
    limit = max_bytes if max_bytes is not None else get_settings().max_message_bytes
    if len(raw) > limit:
        raise InputTooLarge(f"{source}: {len(raw)} bytes exceed the limit of {limit} bytes")
    document = _load_json(raw, source)
    kind = document.get("resourceType")
    if kind == "Consent":
        resources = [("Consent", document)]
    elif kind == "Bundle":
        resources = _bundle_entries(document, source)
    else:
        raise ConsentImportError(
            f"{source}: expected a FHIR Consent or a Bundle of type collection",
            problems=[Problem("resourceType", "must be 'Consent' or 'Bundle'")],
        )

    problems: list[Problem] = []
    directives: list[ConsentDirective] = []
    seen: dict[str, str] = {}
    for where, resource in resources:
        label = _label(where, resource)
        reader = _ConsentReader(label)
        directive = reader.read(resource)
        problems.extend(reader.problems)
        if directive is None:
            continue
        if directive.consent_id in seen:
            other = seen[directive.consent_id]
            problems.append(Problem(f"{label}.id", f"the id is also used by {other}"))
            continue
        seen[directive.consent_id] = label
        directives.append(directive)
    if problems:
        raise ConsentImportError(
            f"{source}: consent file refused, nothing imported ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''})",
            problems=problems,
        )
    return directives


def _load_json(raw: bytes, source: str) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("an object holds the same key twice")
        return dict(pairs)

    try:
        text = raw.decode("utf-8-sig")
        document = json.loads(text, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError as exc:
        raise ConsentImportError(
            f"{source}: not UTF-8 (invalid byte at offset {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConsentImportError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConsentImportError(f"{source}: not acceptable JSON ({_safe_text(exc)})") from None
    if not isinstance(document, dict):
        raise ConsentImportError(f"{source}: a FHIR resource is a JSON object")
    return document


def _safe_text(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]


def _bundle_entries(document: dict[str, Any], source: str) -> list[tuple[str, Any]]:
    try:
        bundle = Bundle.model_validate(
            {**document, "entry": [_shell(e) for e in _list(document.get("entry"))]}
        )
    except ValidationError as exc:
        raise ConsentImportError(
            f"{source}: not a valid FHIR Bundle", problems=_validation_problems("Bundle", exc)
        ) from None
    if bundle.type != "collection":
        raise ConsentImportError(
            f"{source}: a consent file holds a Bundle of type collection",
            problems=[Problem("Bundle.type", "must be 'collection'")],
        )
    entries = _list(document.get("entry"))
    if not entries:
        raise ConsentImportError(
            f"{source}: the Bundle holds no Consent",
            problems=[Problem("Bundle.entry", "no entries")],
        )
    problems = []
    resources: list[tuple[str, Any]] = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Consent":
            problems.append(Problem(f"Bundle.entry[{i}].resource", "must be a Consent"))
            continue
        resources.append((f"Bundle.entry[{i}]", resource))
    if problems:
        raise ConsentImportError(
            f"{source}: consent file refused, nothing imported", problems=problems
        )
    return resources


def _shell(entry: Any) -> Any:
    # The Bundle is validated without its resources: each Consent is validated on its own,
    # so its problems can be named by its id.
    if isinstance(entry, dict) and "resource" in entry:
        return {k: v for k, v in entry.items() if k != "resource"}
    return entry


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _label(where: str, resource: dict[str, Any]) -> str:
    ident = resource.get("id")
    if isinstance(ident, str) and re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", ident):
        return f"Consent[{ident}]"
    return f"{where}.Consent" if where != "Consent" else "Consent"


def _validation_problems(label: str, exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        path = label
        for step in err["loc"]:
            path += f"[{step}]" if isinstance(step, int) else f".{step}"
        problems.append(Problem(path, str(err["msg"]).removeprefix("Value error, ")))
    return problems


class _ConsentReader:
    """Reads one validated Consent into a directive, collecting every problem on the way."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[Problem] = []

    def fail(self, element: str, message: str) -> None:
        self.problems.append(Problem(f"{self.label}.{element}" if element else self.label, message))

    def read(self, resource: dict[str, Any]) -> ConsentDirective | None:
        try:
            consent = Consent.model_validate(resource)
        except ValidationError as exc:
            self.problems.extend(_validation_problems(self.label, exc))
            return None
        except (ValueError, TypeError, RecursionError) as exc:
            self.fail("", f"not a valid FHIR Consent ({_safe_text(exc)})")
            return None
        fields: dict[str, Any] = {}
        if not consent.id:
            self.fail("id", "missing")
        fields["consent_id"] = consent.id
        fields["status"] = self._status(consent.status)
        self._fixed_codes(consent)
        contained = self._contained(consent)
        patient_ref = self._patient(consent, contained, fields)
        fields["grantor"] = self._performer(consent, contained, patient_ref)
        fields["recorded_by"] = self._organization(consent)
        fields["given_at"] = self._instant(consent.dateTime, "dateTime", end=False, required=True)
        fields["evidence"] = self._evidence(consent)
        fields["form"] = self._form(consent)
        fields["legal_basis"] = self._legal_basis(consent)
        self._provision(consent, fields)
        if self.problems:
            return None
        try:
            return ConsentDirective(**fields)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                field = str(err["loc"][0]) if err["loc"] else ""
                self.fail(_ELEMENT_OF_FIELD.get(field, field), str(err["msg"]).removeprefix(
                    "Value error, "))
            return None

    def _status(self, status: str | None) -> ConsentStatus | None:
        if status is None:
            self.fail("status", "missing")
            return None
        if status == "entered-in-error":
            self.fail("status", "'entered-in-error' consents are refused")
            return None
        if status not in _GRANTING_STATUSES:
            self.fail("status", f"unknown status '{status[:40]}'")
            return None
        return _GRANTING_STATUSES[status]

    def _fixed_codes(self, consent: Consent) -> None:
        if not _has_coding(consent.scope, SCOPE_SYSTEM, SCOPE_CODE):
            self.fail("scope", f"must be {SCOPE_SYSTEM}#{SCOPE_CODE}")
        categories = consent.category or []
        if not any(_has_coding(c, LOINC_SYSTEM, CONSENT_DOCUMENT_CODE) for c in categories):
            self.fail("category", f"must contain {LOINC_SYSTEM}#{CONSENT_DOCUMENT_CODE}")

    def _contained(self, consent: Consent) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for i, res in enumerate(consent.contained or []):
            if res.id in found:
                self.fail(f"contained[{i}].id", "the id is used twice")
            elif res.id:
                found[res.id] = res
        return found

    def _patient(
        self, consent: Consent, contained: dict[str, Any], fields: dict[str, Any]
    ) -> str | None:
        ref = consent.patient.reference if consent.patient else None
        if not ref:
            self.fail("patient", "missing: a reference to the contained Patient is required")
            return None
        patient = contained.get(ref[1:]) if ref.startswith("#") else None
        if not isinstance(patient, Patient):
            self.fail("patient.reference", "must point to a contained Patient ('#id')")
            return None
        where = f"contained[{list(contained).index(ref[1:])}]"
        identifiers = []
        for i, ident in enumerate(patient.identifier or []):
            if not ident.system or not ident.value:
                self.fail(f"{where}.identifier[{i}]", "needs a system and a value")
            elif ident.system != CLIENT_ID_SYSTEM and not _CLIENT_SYSTEM.match(ident.system):
                self.fail(
                    f"{where}.identifier[{i}].system",
                    "must be urn:casebridge:id:{agency}:{kind} or urn:casebridge:client",
                )
            else:
                candidate = Identifier(system=ident.system, value=ident.value)
                if candidate not in identifiers:
                    identifiers.append(candidate)
        if not patient.identifier:
            self.fail(f"{where}.identifier", "missing: at least one client identifier is required")
        fields["client_identifiers"] = identifiers
        fields["client_name"] = self._name(patient.name, f"{where}.name", required=False)
        birth = patient.birthDate
        if birth is None:
            self.fail(f"{where}.birthDate", "missing")
        elif not isinstance(birth, date):
            self.fail(f"{where}.birthDate", "must be a full date (YYYY-MM-DD)")
        else:
            fields["client_birth_date"] = birth
        return ref

    def _name(
        self, names: Sequence[Any] | None, where: str, *, required: bool
    ) -> PersonName | None:
        for human in names or []:
            family = (human.family or "").strip() or None
            given = [g.strip() for g in human.given or [] if g and g.strip()]
            if family or given:
                return PersonName(family=family, given=given)
        if required:
            self.fail(where, "missing: a family or given name is required")
        return None

    def _performer(
        self, consent: Consent, contained: dict[str, Any], patient_ref: str | None
    ) -> Grantor | None:
        performers = consent.performer or []
        if len(performers) != 1:
            self.fail("performer", "exactly one performer (who gave the consent) is required")
            return None
        ref = performers[0].reference
        person = contained.get(ref[1:]) if ref and ref.startswith("#") else None
        if isinstance(person, Patient):
            if patient_ref is None:
                return None  # the patient element itself is wrong; that problem is reported
            if ref == patient_ref:
                return Grantor(relation=PersonRelation.SELF)
            self.fail("performer[0]", "refers to a Patient other than the consent's patient")
            return None
        if not isinstance(person, RelatedPerson):
            self.fail(
                "performer[0]", "must be the contained Patient or a contained RelatedPerson"
            )
            return None
        where = f"contained[{list(contained).index(ref[1:])}]"  # type: ignore[index]
        codes = {
            c.code
            for concept in person.relationship or []
            for c in concept.coding or []
            if c.system == ROLE_CODE_SYSTEM
        }
        relations = {RELATION_CODES[c] for c in codes if c in RELATION_CODES}
        if len(relations) != 1 or len(codes) != 1:
            self.fail(
                f"{where}.relationship",
                f"needs exactly one {ROLE_CODE_SYSTEM} code of MTH, FTH, GUARD, PRN",
            )
            return None
        name = self._name(person.name, f"{where}.name", required=True)
        if name is None:
            return None
        return Grantor(relation=relations.pop(), name=name)

    def _organization(self, consent: Consent) -> str | None:
        agencies = [
            (i, org.identifier.value)
            for i, org in enumerate(consent.organization or [])
            if org.identifier is not None and org.identifier.system == AGENCY_SYSTEM
        ]
        if len(agencies) != 1:
            self.fail("organization", f"exactly one agency with an {AGENCY_SYSTEM} identifier")
            return None
        i, value = agencies[0]
        if not value or not _AGENCY_ID.match(value):
            self.fail(f"organization[{i}].identifier.value", "not an agency id")
            return None
        return value

    def _instant(self, value: Any, element: str, *, end: bool, required: bool) -> datetime | None:
        if value is None:
            if required:
                self.fail(element, "missing")
            return None
        result = to_instant(value, end=end)
        if result is None:
            self.fail(element, "must be a date or a date-time with a UTC offset")
        return result

    def _evidence(self, consent: Consent) -> Evidence | None:
        att = consent.sourceAttachment
        if att is None:
            self.fail("sourceAttachment", "missing: the evidence reference is required")
            return None
        title, content_type = att.title, att.contentType
        if not title or not title.strip():
            self.fail("sourceAttachment.title", "missing")
            return None
        if content_type not in CONTENT_TYPES:
            self.fail("sourceAttachment.contentType", "must be application/pdf or text/plain")
            return None
        return Evidence(title=title, content_type=content_type)

    def _form(self, consent: Consent) -> ConsentForm | None:
        found = [
            (i, ext) for i, ext in enumerate(consent.extension or []) if ext.url == FORM_EXTENSION
        ]
        if len(found) != 1:
            self.fail(f"extension[{FORM_EXTENSION}]", "exactly one is required")
            return None
        i, ext = found[0]
        if ext.valueCode not in ("written", "electronic"):
            self.fail(f"extension[{i}].valueCode", "must be 'written' or 'electronic'")
            return None
        return ConsentForm(ext.valueCode)

    def _legal_basis(self, consent: Consent) -> str | None:
        codes = [
            (i, c.code)
            for i, c in enumerate(consent.policyRule.coding or [] if consent.policyRule else [])
            if c.system == LEGAL_BASIS_SYSTEM
        ]
        if not codes:
            return None
        if len(codes) > 1:
            self.fail("policyRule", f"at most one {LEGAL_BASIS_SYSTEM} code")
            return None
        i, code = codes[0]
        if not code or not _LEGAL_BASIS.match(code):
            self.fail(f"policyRule.coding[{i}].code", "not a legal-basis code")
            return None
        return code

    def _provision(self, consent: Consent, fields: dict[str, Any]) -> None:
        prov = consent.provision
        if prov is None:
            self.fail("provision", "missing")
            return
        if prov.type != "permit":
            self.fail("provision.type", "must be 'permit'")
        for element in _NARROWING_PROVISION_ELEMENTS:
            if getattr(prov, element, None):
                name = "class" if element == "class_fhir" else element
                self.fail(
                    f"provision.{name}",
                    "not part of the casebridge profile; a consent cannot be narrowed this way",
                )
        if prov.period is not None:
            fields["valid_from"] = self._instant(
                prov.period.start, "provision.period.start", end=False, required=False
            )
            fields["valid_until"] = self._instant(
                prov.period.end, "provision.period.end", end=True, required=False
            )
            start = fields["valid_from"] or fields.get("given_at")
            if start is not None and fields["valid_until"] is not None:
                if fields["valid_until"] < start:
                    self.fail("provision.period.end", "lies before the start")
        self._actors(prov, fields)
        fields["purposes"] = self._purposes(prov)
        fields["categories"] = self._categories(prov)

    def _actors(self, prov: Any, fields: dict[str, Any]) -> None:
        roles: dict[str, list[str]] = {DISCLOSER_ROLE: [], RECIPIENT_ROLE: []}
        for i, actor in enumerate(prov.actor or []):
            role = {
                c.code for c in (actor.role.coding or []) if c.system == PARTICIPATION_SYSTEM
            } & set(roles)
            if not role:
                continue  # an actor in a role the profile does not describe grants nothing
            if len(role) > 1:
                self.fail(f"provision.actor[{i}].role", "is both discloser and recipient")
                continue
            ident = actor.reference.identifier if actor.reference else None
            if ident is None or ident.system != AGENCY_SYSTEM:
                self.fail(
                    f"provision.actor[{i}].reference.identifier",
                    f"must be an identifier in system {AGENCY_SYSTEM}",
                )
                continue
            if not ident.value or not _AGENCY_ID.match(ident.value):
                self.fail(f"provision.actor[{i}].reference.identifier.value", "not an agency id")
                continue
            agencies = roles[role.pop()]
            if ident.value not in agencies:
                agencies.append(ident.value)
        if not roles[DISCLOSER_ROLE]:
            self.fail("provision.actor", f"no discloser (role {DISCLOSER_ROLE})")
        if not roles[RECIPIENT_ROLE]:
            self.fail("provision.actor", f"no recipient (role {RECIPIENT_ROLE})")
        fields["disclosers"] = roles[DISCLOSER_ROLE]
        fields["recipients"] = roles[RECIPIENT_ROLE]

    def _purposes(self, prov: Any) -> list[Purpose]:
        purposes: list[Purpose] = []
        for i, coding in enumerate(prov.purpose or []):
            where = f"provision.purpose[{i}]"
            if coding.system != PURPOSE_SYSTEM:
                self.fail(f"{where}.system", f"must be {PURPOSE_SYSTEM}")
            elif coding.code not in {p.value for p in CONSENTABLE_PURPOSES}:
                statutory = coding.code in {p.value for p in Purpose}
                self.fail(where, f"purpose '{_code(coding.code)}' " + (
                    "is statutory and cannot be consented to" if statutory else "is unknown"))
            elif Purpose(coding.code) not in purposes:
                purposes.append(Purpose(coding.code))
        if not prov.purpose:
            self.fail("provision.purpose", "missing: at least one purpose is required")
        return purposes

    def _categories(self, prov: Any) -> list[Category] | None:
        if not prov.code:
            return None
        categories: list[Category] = []
        known = {c.value for c in Category}
        for i, concept in enumerate(prov.code):
            where = f"provision.code[{i}]"
            codings = concept.coding or []
            foreign = [c for c in codings if c.system != CATEGORY_SYSTEM]
            codes = {c.code for c in codings if c.system == CATEGORY_SYSTEM}
            if foreign or not codes:
                self.fail(where, f"every coding must be in system {CATEGORY_SYSTEM}")
            elif len(codes) > 1:
                self.fail(where, "one concept names several categories")
            else:
                code = codes.pop()
                if code not in known:
                    self.fail(where, f"unknown category '{_code(code)}'")
                elif Category(code) not in categories:
                    categories.append(Category(code))
        return categories


def _code(code: str | None) -> str:
    # Codes are vocabulary, not personal data; still bound them so a hostile file cannot make
    # the message unbounded.
    return (code or "")[:40]


#: Canonical field → the FHIR element it comes from (for problems found by the model itself).
_ELEMENT_OF_FIELD = {
    "consent_id": "id",
    "client_identifiers": "patient",
    "client_name": "patient.name",
    "client_birth_date": "patient.birthDate",
    "grantor": "performer",
    "recorded_by": "organization",
    "given_at": "dateTime",
    "evidence": "sourceAttachment",
    "legal_basis": "policyRule",
    "valid_from": "provision.period.start",
    "valid_until": "provision.period.end",
    "disclosers": "provision.actor",
    "recipients": "provision.actor",
    "purposes": "provision.purpose",
    "categories": "provision.code",
}


def _has_coding(concept: Any, system: str, code: str) -> bool:
    return concept is not None and any(
        c.system == system and c.code == code for c in concept.coding or []
    )


def to_instant(value: datetime | date | str, *, end: bool) -> datetime | None:
    """A FHIR date/dateTime as an aware instant; dates are whole days in Europe/Berlin."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, date):
        first, last = value, value
    else:
        match = _PARTIAL.match(value)
        if not match:
            return None
        year, month = int(match.group(1)), match.group(2)
        if month is None:
            first, last = date(year, 1, 1), date(year, 12, 31)
        elif 1 <= int(month) <= 12:
            first = date(year, int(month), 1)
            following = date(year + (first.month == 12), first.month % 12 + 1, 1)
            last = following - timedelta(days=1)
        else:
            return None
    if end:
        return datetime.combine(last, time.max, LOCAL_ZONE)
    return datetime.combine(first, time.min, LOCAL_ZONE)


# --- export -------------------------------------------------------------------------------------


def render_consent(directive: ConsentDirective, *, withdrawn_at: datetime | None = None) -> bytes:
    """The directive as a FHIR R4 Consent (JSON) per the profile; withdrawn ones as inactive."""
    resource = consent_resource(directive, withdrawn_at=withdrawn_at)
    Consent.model_validate(resource)  # what casebridge writes must be valid FHIR
    return json.dumps(resource, ensure_ascii=False, indent=2).encode("utf-8")


def render_bundle(
    items: Sequence[tuple[ConsentDirective, datetime | None]],
) -> bytes:
    """Several directives (each with its withdrawal time or None) as a collection Bundle."""
    entries = [
        {"resource": consent_resource(d, withdrawn_at=w)} for d, w in items
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    Bundle.model_validate(bundle)
    return json.dumps(bundle, ensure_ascii=False, indent=2).encode("utf-8")


def consent_resource(
    directive: ConsentDirective, *, withdrawn_at: datetime | None = None
) -> dict[str, Any]:
    """The FHIR Consent of a directive as a JSON-ready dict."""
    if directive.client_birth_date is None:
        raise ConsentError(
            f"consent '{directive.consent_id}' has no client birth date; the FHIR profile needs one"
        )
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [
            {"system": i.system, "value": i.value} for i in directive.client_identifiers
        ],
    }
    if directive.client_name is not None:
        patient["name"] = [_human_name(directive.client_name)]
    patient["birthDate"] = directive.client_birth_date.isoformat()
    contained: list[dict[str, Any]] = [patient]
    grantor = directive.grantor
    if grantor.relation == PersonRelation.SELF:
        performer = "#patient"
    elif grantor.relation in _RELATION_TO_CODE and grantor.name is not None:
        person_id = _RELATED_PERSON_IDS[grantor.relation]
        contained.append({
            "resourceType": "RelatedPerson",
            "id": person_id,
            "patient": {"reference": "#patient"},
            "relationship": [{"coding": [
                {"system": ROLE_CODE_SYSTEM, "code": _RELATION_TO_CODE[grantor.relation]}
            ]}],
            "name": [_human_name(grantor.name)],
        })
        performer = f"#{person_id}"
    else:
        raise ConsentError(
            f"consent '{directive.consent_id}': a grantor '{grantor.relation}' without a name "
            "cannot be expressed in the FHIR profile"
        )

    status = directive.status.value
    valid_until = directive.valid_until
    if withdrawn_at is not None:
        status = ConsentStatus.INACTIVE.value
        end = withdrawn_at if valid_until is None else min(valid_until, withdrawn_at)
        valid_until = max(end, directive.effective_from)

    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": directive.consent_id,
        "contained": contained,
        "extension": [{"url": FORM_EXTENSION, "valueCode": directive.form.value}],
        "status": status,
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": SCOPE_CODE}]},
        "category": [{"coding": [{"system": LOINC_SYSTEM, "code": CONSENT_DOCUMENT_CODE}]}],
        "patient": {"reference": "#patient"},
        "dateTime": _iso(directive.given_at),
        "performer": [{"reference": performer}],
        "organization": [{"identifier": {"system": AGENCY_SYSTEM, "value": directive.recorded_by}}],
        "sourceAttachment": {
            "contentType": directive.evidence.content_type,
            "title": directive.evidence.title,
        },
    }
    if directive.legal_basis is not None:
        resource["policyRule"] = {
            "coding": [{"system": LEGAL_BASIS_SYSTEM, "code": directive.legal_basis}]
        }
    provision: dict[str, Any] = {"type": "permit"}
    period = {}
    if directive.valid_from is not None:
        period["start"] = _iso(directive.valid_from)
    if valid_until is not None:
        period["end"] = _iso(valid_until)
    if period:
        provision["period"] = period
    provision["actor"] = [_actor(DISCLOSER_ROLE, a) for a in directive.disclosers] + [
        _actor(RECIPIENT_ROLE, a) for a in directive.recipients
    ]
    provision["purpose"] = [{"system": PURPOSE_SYSTEM, "code": p.value} for p in directive.purposes]
    if directive.categories is not None:
        provision["code"] = [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": c.value}]} for c in directive.categories
        ]
    resource["provision"] = provision
    return resource


def _human_name(name: PersonName) -> dict[str, Any]:
    human: dict[str, Any] = {}
    if name.family is not None:
        human["family"] = name.family
    if name.given:
        human["given"] = list(name.given)
    return human


def _actor(role: str, agency: str) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": role}]},
        "reference": {"identifier": {"system": AGENCY_SYSTEM, "value": agency}},
    }


def _iso(moment: datetime) -> str:
    # Aware datetimes only (the model guarantees it), so the offset FHIR requires is always there.
    return moment.isoformat()


__all__ = [
    "LOCAL_ZONE",
    "consent_resource",
    "parse_consents",
    "render_bundle",
    "render_consent",
    "to_instant",
]
