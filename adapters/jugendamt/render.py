"""Canonical envelope (from any source system) → ``jugendamt-fallakte/3`` export.

Each part goes to its native field when the parser would read exactly that part back from it
(checked by running the slot parser on what was written). Every other part -- categories the
format has no field for (contact, benefits, health, ...), a second identity, a note with an
author -- becomes a note in German prose under its category heading
(:mod:`casebridge.adapters.prose`), which the parser reads back into that category. ``fall.kind``
is always a minor: for an adult client it is the child the message names (of a child-protection
observation, or the household's child), and the client goes among ``sorgeberechtigte``; an
adult with no child named cannot be rendered (RenderError saying so).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from casebridge.adapters import moments, prose, statutory
from casebridge.adapters.json_input import dump_json
from casebridge.adapters.jugendamt import codes, parse
from casebridge.canonical_model import (
    CaseFileData,
    ChildProtectionData,
    ContactData,
    Grantor,
    HouseholdData,
    HouseholdRole,
    IdentityData,
    MessageType,
    Note,
    Part,
    Person,
    PersonName,
    Sex,
    Statement,
    SupportPlanData,
    TransferEnvelope,
)
from casebridge.canonical_model.parts import PartContent
from casebridge.errors import Problem, RenderError

Json = dict[str, Any]
_CONTENT: dict[str, type[BaseModel]] = {
    "identity": IdentityData, "statement": Statement, "case_file": CaseFileData,
    "household": HouseholdData, "support_plan": SupportPlanData,
    "child_protection": ChildProtectionData, "note": Note,
}


def _survives(content: PartContent, parse_back: Callable[[], Json]) -> bool:
    try:
        back = _CONTENT[content.kind].model_validate(parse_back())
    except (ValidationError, parse._Bad, KeyError, TypeError, AttributeError):
        return False  # what was written cannot be read back: carry the part instead
    return back == content


#: What fallakte-3.schema.json bounds that canonical values may exceed: names, roles, places,
#: case numbers and who entrusted a note are ``short`` (500 characters), unbounded in the
#: canonical model; plan numbers at most 100,000; notes 5,000,000 characters; a few lists.
#: The rendered document is not validated against the schema at run time (the property tests
#: do that for every message type), so these bounds are checked where a value is written; the
#: schema's other constraints follow from the canonical model's own.
SHORT_MAX = 500
NUMBER_MAX = 100_000
NOTE_MAX = 5_000_000
RECIPIENTS_MAX = 100
GUARDIANS_MAX = 50
HINTS_MAX = 1000


def _refuse(where: str, what: str) -> RenderError:
    return RenderError(f"{where}: {what}", problems=[Problem(where, what)])


def _short(value: str | None, where: str) -> str | None:
    if value is not None and len(value) > SHORT_MAX:
        raise _refuse(where, f"{len(value)} characters; the format allows {SHORT_MAX}")
    return value


def _drop_none(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if v is not None and v != []}


def _names(name: Any) -> Json:
    if name is None:
        return {}
    return _drop_none({"vorname": _short(" ".join(name.given) or None, "vorname"),
                       "nachname": _short(name.family, "nachname")})


def _kind(identity: IdentityData) -> Json:
    return _drop_none({**_names(identity.name),
                       "geburtsdatum": identity.birth_date.isoformat()
                       if identity.birth_date else None})


def _guardians(data: HouseholdData) -> list[Json]:
    out = []
    for m in data.members:
        g = _drop_none({**_names(m.person.name),
                        "geburtsdatum": m.person.birth_date.isoformat()
                        if m.person.birth_date else None,
                        "rolle": _short(m.role_label, "rolle")})
        if m.person.addresses:
            a = m.person.addresses[0]
            g["anschrift"] = _anschrift(a.street, a.postal_code, a.city)
        out.append(g)
    return out


def _anschrift(street: str | None, plz: str | None, city: str | None) -> Json:
    return _drop_none({"strasse": _short(street, "anschrift/strasse"),
                       "plz": _short(plz, "anschrift/plz"), "ort": _short(city, "anschrift/ort")})


def _plan_fits(data: SupportPlanData) -> bool:
    """Whether the plan's numbers fit ``hilfeplan`` (else it is written as a note)."""
    numbers = [g.number for g in data.plan.goals] + [m.goal for m in data.plan.measures]
    return all(n is None or n <= NUMBER_MAX for n in numbers)


def _guardians_fit(data: HouseholdData) -> bool:
    """Whether ``sorgeberechtigte`` can hold the household (else it is written as a note)."""
    return len(data.members) <= GUARDIANS_MAX


def _plan(data: SupportPlanData) -> Json:
    plan = data.plan
    return _drop_none({
        "stand": plan.as_of.isoformat() if plan.as_of else None,
        "ziele": [_drop_none({"nr": g.number, "text": g.text}) | {"teilziele": list(g.sub_goals)}
                  for g in plan.goals],
        "massnahmen": [_drop_none({"ziel": m.goal, "text": m.text,
                                   "verantwortlich": _short(m.responsible, "verantwortlich"),
                                   "bis": m.due.isoformat() if m.due else None})
                       for m in plan.measures],
    })


def _protection(data: ChildProtectionData) -> Json:
    return _drop_none({"gefaehrdungseinschaetzung": data.endangerment_assessed,
                       "datum": data.assessed_on.isoformat() if data.assessed_on else None,
                       "text": data.text})


def _kind_of(name: PersonName | None, birth: date | None) -> Json:
    return _drop_none({**_names(name), "geburtsdatum": birth.isoformat() if birth else None})


def _minor(birth: date | None, on: date) -> bool | None:
    return None if birth is None else statutory.is_minor(birth, on)


def child_of_adult(identity: IdentityData, parts: list[Part], on: date) -> Person | None:
    """The child the export is about when the client is an adult; None when the client is the
    child. RenderError for an adult client with no child the message names.

    The client counts as an adult when their birth date says so, or, without one, when the
    message names a child of theirs (a household member in the role of a child, or the child of
    a child-protection notice): a youth-office case is always a minor's.
    """
    notice = [p.content.child for p in parts if isinstance(p.content, ChildProtectionData)
              and p.content.child is not None]
    children = [m.person for p in parts if isinstance(p.content, HouseholdData)
                for m in p.content.members
                if m.role == HouseholdRole.CHILD and _minor(m.person.birth_date, on) is not False]
    client_minor = _minor(identity.birth_date, on)
    if client_minor or (client_minor is None and not notice and not children):
        return None
    for person in [*notice, *children]:
        if person.name is not None:
            return person
    raise RenderError(
        "the client is an adult and the message names no child (with a name) in the household "
        "or a child-protection notice; the youth office's fall.kind must be a minor")


_PARENT_WORD = {Sex.FEMALE: "Mutter", Sex.MALE: "Vater"}


def _client_as_guardian(identity: IdentityData, contact: ContactData | None) -> Json:
    entry = _drop_none({**_names(identity.name),
                        "geburtsdatum": identity.birth_date.isoformat()
                        if identity.birth_date else None,
                        "rolle": _PARENT_WORD.get(identity.sex, "Elternteil")
                        if identity.sex else "Elternteil"})
    if contact is not None and contact.addresses:
        a = contact.addresses[0]
        street = " ".join(x for x in (a.street, a.house_number) if x) or (
            a.text if not (a.postal_code or a.city) else None)
        anschrift = _anschrift(street, a.postal_code, a.city)
        if anschrift:
            entry["anschrift"] = anschrift
    return entry


def _protection_slots(out: _Export, parts: list[Part], placed: set[str],
                      child: Person | None) -> None:
    """``kinderschutz``: the assessment and the observations (``hinweise``) about the child."""
    protection: Json | None = None
    hints: list[Json] = []
    for part in parts:
        c = part.content
        if part.id in placed or not isinstance(c, ChildProtectionData) or part.entrusted_by:
            continue
        if c.child is not None and c.child != child:
            continue  # about another child than fall.kind: carried in a note
        if protection is None and c.child is None:
            value = _protection(c)

            def back(v: Json = value) -> Json:
                return parse.parse_protection(v, "/") or {}

            if _survives(c, back):
                protection = value
                out.place("/fall/kinderschutz", part, codes.SLOT_IDS["/fall/kinderschutz"])
                placed.add(part.id)
                continue
        if c.endangerment_assessed is None and c.text is not None:
            # An observation; about the child of an adult client it loses ``child``, which
            # fall.kind now names.
            hint = _drop_none({"datum": c.assessed_on.isoformat() if c.assessed_on else None,
                               "text": c.text})
            out.place(f"/fall/kinderschutz/hinweise/{len(hints)}", part,
                      codes.hint_id(len(hints)))
            hints.append(hint)
            placed.add(part.id)
    if len(hints) > HINTS_MAX:
        raise _refuse("kinderschutz/hinweise", f"{len(hints)} observations; the format allows "
                      f"{HINTS_MAX}")
    if hints:
        protection = {**(protection or {}), "hinweise": hints}
    if protection is not None:
        out.fall["kinderschutz"] = protection


def _entruster_word(part: Part) -> str | None:
    by = part.entrusted_by
    if by is None:
        return None
    if by.relation == "other" and by.name is not None:
        return _short(by.name.display(), "anvertraut_von")
    return codes.ENTRUSTER_WORD.get(by.relation, "sorgeberechtigte")


def _prose_note(part: Part) -> Json:
    """A part without a field here, as a note people read (``[Gesundheit] …``)."""
    text = prose.note(part)
    if len(text) > NOTE_MAX:
        raise _refuse("notizen", f"a note of {len(text)} characters; the format allows "
                      f"{NOTE_MAX}")
    return {"datum": None, "text": text, "anvertraut_von": _entruster_word(part)}


class _Export:
    """Collects the native document and the part ids that differ from the defaults."""

    def __init__(self, envelope: TransferEnvelope) -> None:
        self.envelope = envelope
        self.agency = envelope.sender
        self.fall: Json = {}
        self.notes: list[Json] = []
        self.ids: Json = {}

    def place(self, where: str, part: Part, default_id: str) -> None:
        if part.id != default_id:
            self.ids[where] = part.id


def _first(parts: list[Part], test: Callable[[Part], bool]) -> Part | None:
    return next((p for p in parts if test(p)), None)


def render_doc(envelope: TransferEnvelope) -> Json:
    """The export document as a dict (see module docstring for where each part goes)."""
    zweck = codes.PURPOSE_TO_ZWECK.get(envelope.purpose)
    if zweck is None:
        raise RenderError(
            f"purpose '{envelope.purpose}' has no 'zweck' in jugendamt-fallakte/3 "
            "(only referral, case_conference, joint_planning, child_protection)")
    if envelope.message_type == MessageType.STATUS_UPDATE:
        raise RenderError("the youth office accepts case exports only, not status updates")
    claim = envelope.statutory
    problem = statutory.claim_problem(
        envelope.purpose, None if claim is None else claim.legal_basis,
        None if claim is None else claim.justification)
    if problem is not None:
        raise RenderError(problem)
    out = _Export(envelope)
    parts = list(envelope.parts)
    placed: set[str] = set()
    sender = envelope.sender

    identity = _first(parts, lambda p: isinstance(p.content, IdentityData))
    if identity is None or not isinstance(identity.content, IdentityData) or (
            identity.content.name is None):
        raise RenderError("a youth-office export needs the client's identity with a name "
                          "(fall.kind)")
    id_content = identity.content
    on = envelope.created_at.date()
    child = child_of_adult(id_content, parts, on)
    fn_identity = next((i.value for i in id_content.identifiers
                        if i.system == codes.fallnummer_system(sender)), None)
    case_part = _first(parts, lambda p: isinstance(p.content, CaseFileData)
                       and p.category == "support_plan")
    fallnummer = fn_identity
    if case_part is not None and isinstance(case_part.content, CaseFileData):
        cf = case_part.content.case_file
        fallnummer = _short(fallnummer or cf.local_case_id, "fallnummer")
        fall_fields = _drop_none({"fallnummer": fallnummer, "hilfeart": cf.help_type,
                                  "beginn": cf.opened_on.isoformat() if cf.opened_on else None})
        if _survives(case_part.content, lambda: parse.parse_case_file(fall_fields, sender) or {}):
            out.fall.update(fall_fields)
            out.place("/fall", case_part, codes.SLOT_IDS["/fall"])
            placed.add(case_part.id)
    if fallnummer and "fallnummer" not in out.fall and fallnummer == fn_identity:
        out.fall["fallnummer"] = _short(fallnummer, "fallnummer")
    identity_note = None
    if child is not None:
        # The client is an adult: the export is about their child, and the client is one of
        # the child's guardians. The client's own identity travels whole in a note; the ids of
        # the native slots differ from the defaults so they never clash with a carried part.
        kind = _kind_of(child.name, child.birth_date)
        out.fall["kind"] = kind
        out.ids["/fall/kind"] = "jugendamt-kind"
        contact = _first(parts, lambda p: isinstance(p.content, ContactData))
        out.fall["sorgeberechtigte"] = [_client_as_guardian(
            id_content, contact.content if contact is not None
            and isinstance(contact.content, ContactData) else None)]
        out.ids["/fall/sorgeberechtigte"] = "jugendamt-sorgeberechtigte"
        identity_note = _prose_note(identity)
    else:
        kind = _kind(id_content)
        out.fall["kind"] = kind
        written_fn = out.fall.get("fallnummer")
        if _survives(id_content,
                     lambda: parse.parse_kind(kind, written_fn, sender, "/fall/kind")):
            out.place("/fall/kind", identity, codes.SLOT_IDS["/fall/kind"])
        else:  # the identity travels in a note under its own id; fall.kind's must not clash
            identity_note = _prose_note(identity)
            out.ids["/fall/kind"] = "jugendamt-kind"
    placed.add(identity.id)

    school = _first(parts, lambda p: p.category == "education" and isinstance(p.content, Statement)
                    and p.content.label == codes.SCHOOL_LABEL)
    if child is None and school is not None and isinstance(school.content, Statement):
        text = school.content.text
        if _survives(school.content, lambda: parse.parse_school(text)):
            kind["schule"] = text
            out.place("/fall/kind/schule", school, codes.SLOT_IDS["/fall/kind/schule"])
            placed.add(school.id)
    if child is None:
        _slot(out, parts, placed, "/fall/sorgeberechtigte", "household", HouseholdData,
              _guardians, lambda v: parse.parse_guardians(v, "/"), _guardians_fit)
    _slot(out, parts, placed, "/fall/hilfeplan", "support_plan", SupportPlanData,
          _plan, lambda v: parse.parse_plan(v, "/"), _plan_fits)
    _protection_slots(out, parts, placed, child)

    if identity_note is not None:  # the identity's id goes with its note (reason_part_ids)
        out.place("/fall/notizen/0", identity, codes.note_id(0))
        out.notes.append(identity_note)
    for part in parts:
        if part.id in placed:
            continue
        note = _native_note(part)
        index = len(out.notes)
        out.notes.append(_prose_note(part) if note is None else note)
        out.place(f"/fall/notizen/{index}", part, codes.note_id(index))
    if out.notes:
        out.fall["notizen"] = out.notes
    if len(envelope.recipients) > RECIPIENTS_MAX:
        raise _refuse("empfaenger", f"{len(envelope.recipients)} recipients; the format allows "
                      f"{RECIPIENTS_MAX}")
    doc: Json = {
        "schema": codes.SCHEMA_TAG,
        "exportiert": moments.iso(envelope.created_at, "created_at"),
        "dienststelle": sender,
        "empfaenger": list(envelope.recipients),
        "zweck": zweck,
    }
    if envelope.statutory:
        doc["rechtsgrundlage"] = {"code": envelope.statutory.legal_basis,
                                  "begruendung": envelope.statutory.justification}
    conference = envelope.conference
    if conference is not None and (conference.scheduled_at or conference.location):
        doc["konferenz"] = _drop_none({
            "termin": moments.iso(conference.scheduled_at, "conference.scheduled_at")
            if conference.scheduled_at else None,
            "ort": _short(conference.location, "konferenz/ort")})
    doc["fall"] = _ordered(out.fall)
    doc["casebridge"] = _extension(envelope, zweck, out.ids)
    return doc


def _slot(out: _Export, parts: list[Part], placed: set[str], where: str, category: str,
          shape: type[BaseModel], write: Callable[[Any], Any],
          read: Callable[[Any], Json], fits: Callable[[Any], bool]) -> None:
    part = _first(parts, lambda p: p.category == category and isinstance(p.content, shape))
    if part is None or not fits(part.content):
        return
    value = write(part.content)
    if _survives(part.content, lambda: read(value)):
        out.fall[where.rsplit("/", 1)[1]] = value
        out.place(where, part, codes.SLOT_IDS[where])
        placed.add(part.id)


def _native_note(part: Part) -> Json | None:
    content = part.content
    if not isinstance(content, Note) or part.category not in ("case_notes", "entrusted"):
        return None
    note = {"datum": content.written_on.isoformat() if content.written_on else None,
            "text": content.text, "anvertraut_von": _entruster_word(part)}
    try:
        category, by, back = parse.parse_note(note, "/")
        if prose.read(content.text) is not None or parse.carried_part(content.text, "/"):
            return None  # would be read as another category: written under [Vermerk]
    except parse._Bad:
        return None
    same = (category == part.category and Note.model_validate(back) == content
            and (by is None) == (part.entrusted_by is None)
            and (by is None or part.entrusted_by == Grantor.model_validate(by)))
    return note if same else None


_FALL_ORDER = ["fallnummer", "hilfeart", "beginn", "kind", "sorgeberechtigte", "hilfeplan",
               "notizen", "kinderschutz"]


def _ordered(fall: Json) -> Json:
    return {k: fall[k] for k in _FALL_ORDER if k in fall}


def _extension(envelope: TransferEnvelope, zweck: str, ids: Json) -> Json:
    ext: Json = {"nachricht_id": envelope.message_id}
    if envelope.correlation_id:
        ext["bezug"] = envelope.correlation_id
    if envelope.message_type != codes.DEFAULT_MESSAGE_TYPE[zweck]:
        ext["nachrichtentyp"] = str(envelope.message_type)
    if envelope.service:
        ext["leistung"] = envelope.service
    if envelope.reason_part_ids:
        ext["anlass_teile"] = list(envelope.reason_part_ids)
    if ids:
        ext["teil_ids"] = ids
    return ext


def render_bytes(envelope: TransferEnvelope) -> bytes:
    """The export as UTF-8 JSON bytes."""
    return dump_json(render_doc(envelope), indent=2)
