"""``jugendamt-fallakte/3`` (already schema-valid) → canonical transfer envelope.

The child is the client. Every native element becomes one categorised part whose ``source`` is
the JSON pointer it came from; default part ids follow the pointer (``codes.SLOT_IDS``), and a
message casebridge rendered may name other ids in its ``casebridge.teil_ids``. The slot parsers
here are also what the renderer uses to check that a part survives the trip exactly.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from casebridge.adapters import prose
from casebridge.adapters import statutory as statutory_rules
from casebridge.adapters.json_input import at
from casebridge.adapters.jugendamt import codes
from casebridge.canonical_model import Category, Grantor, Part, TransferEnvelope
from casebridge.canonical_model.validation import field_path, problems_from
from casebridge.errors import MappingError, Problem

Json = dict[str, Any]
_MARKER_HEAD = codes.CARRIED_MARKER[0]
# Members, not their strings: pydantic-core takes a member as it is, a string it looks up.
_CASE_NOTES, _ENTRUSTED = Category.CASE_NOTES, Category.ENTRUSTED


class _Bad(Exception):
    """A value the schema let through but the mapping cannot use (pointer + reason)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _date(value: str | None, where: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Bad(where, "not a valid date (YYYY-MM-DD)") from None


def _datetime(value: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise _Bad(where, "not a valid date-time (RFC 3339)") from None
    if parsed.tzinfo is None:
        raise _Bad(where, "date-time needs a UTC offset")
    return parsed


def _name(obj: Json) -> Json:
    name: Json = {"given": [obj["vorname"]] if obj.get("vorname") else []}
    if obj.get("nachname"):
        name["family"] = obj["nachname"]
    return name


# --- slot parsers: native fragment → canonical content (python-mode dicts) ------------------


def parse_kind(kind: Json, fallnummer: str | None, agency: str, where: str) -> Json:
    """``fall.kind`` (+ Fallnummer) → identity content."""
    identifiers = (
        [{"system": codes.fallnummer_system(agency), "value": fallnummer}] if fallnummer else []
    )
    return {
        "kind": "identity",
        "identifiers": identifiers,
        "name": _name(kind),
        "birth_date": _date(kind.get("geburtsdatum"), f"{where}/geburtsdatum"),
    }


def parse_school(text: str) -> Json:
    """``fall.kind.schule`` → an education statement."""
    return {"kind": "statement", "label": codes.SCHOOL_LABEL, "text": text}


def parse_case_file(fall: Json, agency: str) -> Json | None:
    """Fallnummer, Hilfeart and Beginn → the case file (only when there is more than the id)."""
    fallnummer = fall.get("fallnummer")
    if not fallnummer or (fall.get("hilfeart") is None and fall.get("beginn") is None):
        return None
    return {
        "kind": "case_file",
        "case_file": {
            "agency": agency,
            "local_case_id": fallnummer,
            "help_type": fall.get("hilfeart"),
            "opened_on": _date(fall.get("beginn"), "/fall/beginn"),
        },
    }


def parse_guardians(guardians: list[Json], where: str) -> Json:
    """``sorgeberechtigte`` → household content: legal guardians holding custody."""
    members = []
    for i, g in enumerate(guardians):
        label = g["rolle"]
        person: Json = {
            "name": _name(g),
            "birth_date": _date(g.get("geburtsdatum"), f"{where}/{i}/geburtsdatum"),
        }
        address = g.get("anschrift")
        if address:
            fields = {"street": address.get("strasse"), "postal_code": address.get("plz"),
                      "city": address.get("ort")}
            if any(fields.values()):
                person["addresses"] = [fields]
        members.append({
            "role": codes.GUARDIAN_ROLES.get(label.strip().casefold(), "legal_guardian"),
            "role_label": label,
            "has_custody": True,
            "person": person,
        })
    return {"kind": "household", "members": members}


def parse_plan(plan: Json, where: str) -> Json:
    """``hilfeplan`` → support-plan content."""
    goals = [
        {"number": _int(z.get("nr")), "text": z["text"],
         "sub_goals": list(z.get("teilziele") or [])}
        for z in plan.get("ziele") or []
    ]
    measures = [
        {"goal": _int(m.get("ziel")), "text": m["text"], "responsible": m.get("verantwortlich"),
         "due": _date(m.get("bis"), f"{where}/massnahmen/{i}/bis")}
        for i, m in enumerate(plan.get("massnahmen") or [])
    ]
    return {
        "kind": "support_plan",
        "plan": {"as_of": _date(plan.get("stand"), f"{where}/stand"), "goals": goals,
                 "measures": measures},
    }


def _int(value: float | None) -> int | None:
    # JSON Schema accepts 1.0 as an integer; the canonical model is strict about int.
    return None if value is None else int(value)


def parse_protection(ks: Json, where: str) -> Json | None:
    """``kinderschutz`` → child-protection content (None when it holds observations only)."""
    if ks.get("hinweise") and all(
            ks.get(k) is None for k in ("gefaehrdungseinschaetzung", "datum", "text")):
        return None
    return {
        "kind": "child_protection",
        "endangerment_assessed": ks.get("gefaehrdungseinschaetzung"),
        "assessed_on": _date(ks.get("datum"), f"{where}/datum"),
        "text": ks.get("text"),
    }


# Grantor is a frozen value object: the one validated instance per code-table relation serves
# every note naming it (the envelope takes instances of the class as they are), instead of a
# model instance and its validator per entrusted note.
_GRANTORS = {word: Grantor(relation=relation) for word, relation in codes.ENTRUSTERS.items()}


def parse_hint(hint: Json, where: str) -> Json:
    """``kinderschutz.hinweise[i]`` → an observation about the child (child-protection content)."""
    return {"kind": "child_protection", "text": hint["text"],
            "assessed_on": _date(hint.get("datum"), f"{where}/datum")}


def entruster(word: str) -> Json | Grantor:
    """``anvertraut_von`` → Grantor: the child, a parent, the guardians, or a named person."""
    known = _GRANTORS.get(word.strip().casefold())
    if known is not None:
        return known
    return {"relation": "other", "name": {"family": word}}


def parse_note(note: Json, where: str) -> tuple[str, Json | Grantor | None, Json]:
    """A plain note → (category, entrusted_by, note content)."""
    content = {"kind": "note", "text": note["text"],
               "written_on": _date(note.get("datum"), f"{where}/datum")}
    who = note.get("anvertraut_von")
    if who is not None:
        return "entrusted", entruster(who), content
    return "case_notes", None, content


class _Carried(BaseModel):
    """The JSON a casebridge-written note carries: a canonical part, maybe replacing a slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    teil: Part
    ersetzt: str | None = None


def carried_part(text: str, where: str) -> tuple[Part, str | None] | None:
    """The part a casebridge-written note carries, with the pointer it replaces; else None."""
    _, sep, payload = text.rpartition("\n" + codes.CARRIED_MARKER)
    if not sep:
        if not text.startswith(codes.CARRIED_MARKER):
            return None
        payload = text[len(codes.CARRIED_MARKER):]
    try:
        carried = _Carried.model_validate_json(payload)
    except ValidationError as exc:
        detail = "; ".join(str(p) for p in problems_from(exc))
        raise _Bad(f"{where}/text", f"carries an unreadable casebridge part ({detail})") from None
    return carried.teil, carried.ersetzt


# --- the whole export ----------------------------------------------------------------------


def _part(where: str, category: str, content: Json, ids: Json,
          entrusted_by: Json | None = None, default_id: str | None = None) -> Json:
    part = {"id": ids.get(where) or default_id or codes.SLOT_IDS[where], "category": category,
            "source": where, "content": content}
    if entrusted_by is not None:
        part["entrusted_by"] = entrusted_by
    return part


def _derived_message_id(doc: Json) -> str:
    # No id in the native format: the same export (office, time, case, purpose, recipients)
    # always gets the same id, so a resent export is recognisable; the case number itself
    # does not leak into routing metadata. Hashing these few fields, not the whole body,
    # keeps the cost independent of the export's size.
    key = "|".join([doc["dienststelle"], doc["exportiert"], doc["zweck"],
                    doc["fall"].get("fallnummer") or "", *doc["empfaenger"]])
    return f"{doc['dienststelle']}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _parts(doc: Json) -> list[tuple[str, Any]]:
    agency = doc["dienststelle"]
    fall = doc["fall"]
    ids: Json = (doc.get("casebridge") or {}).get("teil_ids") or {}
    notes = fall.get("notizen") or []
    pointers = [f"/fall/notizen/{i}" for i in range(len(notes))]
    out: list[tuple[str, Any]] = []  # (pointer, part dict or Part)

    carried: dict[str, tuple[Part, str | None]] = {}
    for where, note in zip(pointers, notes, strict=True):
        text = note["text"]
        # Every carried note holds the marker. Notes are the longest texts of an export: a
        # memchr for its first character rules most of them out before the substring search.
        if (_MARKER_HEAD in text and codes.CARRIED_MARKER in text
                and prose.read(text) is None):  # a headed note is prose, never a carrier
            found = carried_part(text, where)
            if found is not None:
                carried[where] = found
    replacing = {r: (w, p) for w, (p, r) in carried.items() if r is not None}
    consumed: set[str] = set()

    def replaced(where: str) -> bool:
        # A slot a carried note replaces is not read (its native form may not even map).
        hit = replacing.get(where)
        if hit is None:
            return False
        consumed.add(hit[0])
        out.append(hit)
        return True

    case_file = parse_case_file(fall, agency)
    if case_file is not None and not (replacing and replaced("/fall")):
        out.append(("/fall", _part("/fall", "support_plan", case_file, ids)))
    kind = fall["kind"]
    if not (replacing and replaced(codes.KIND_POINTER)):
        identity = parse_kind(kind, fall.get("fallnummer"), agency, codes.KIND_POINTER)
        out.append((codes.KIND_POINTER, _part(codes.KIND_POINTER, "identity", identity, ids)))
    school = kind.get("schule")
    if school is not None and not (replacing and replaced("/fall/kind/schule")):
        out.append(("/fall/kind/schule",
                    _part("/fall/kind/schule", "education", parse_school(school), ids)))
    guardians = fall.get("sorgeberechtigte")
    if guardians is not None and not (replacing and replaced("/fall/sorgeberechtigte")):
        household = parse_guardians(guardians, "/fall/sorgeberechtigte")
        out.append(("/fall/sorgeberechtigte",
                    _part("/fall/sorgeberechtigte", "household", household, ids)))
    plan = fall.get("hilfeplan")
    if plan is not None and not (replacing and replaced("/fall/hilfeplan")):
        out.append(("/fall/hilfeplan", _part(
            "/fall/hilfeplan", "support_plan", parse_plan(plan, "/fall/hilfeplan"), ids)))
    protection = fall.get("kinderschutz")
    if protection is not None and not (replacing and replaced("/fall/kinderschutz")):
        assessment = parse_protection(protection, "/fall/kinderschutz")
        if assessment is not None:
            out.append(("/fall/kinderschutz", _part(
                "/fall/kinderschutz", "child_protection", assessment, ids)))
        for i, hint in enumerate(protection.get("hinweise") or []):
            where = f"/fall/kinderschutz/hinweise/{i}"
            out.append((where, _part(where, "child_protection", parse_hint(hint, where), ids,
                                     default_id=codes.hint_id(i))))

    for i, (where, note) in enumerate(zip(pointers, notes, strict=True)):
        if where in consumed:
            continue
        if carried and where in carried:
            out.append((where, carried[where][0]))
            continue
        # parse_note and _part, inline: this loop runs for every note of every export.
        datum = note.get("datum")
        try:
            written = None if datum is None else date.fromisoformat(datum)
        except ValueError:
            raise _Bad(f"{where}/datum", "not a valid date (YYYY-MM-DD)") from None
        part: Json = {
            "id": (ids.get(where) if ids else None) or f"note-{i + 1}",
            "category": _CASE_NOTES,
            "source": where,
            "content": {"kind": "note", "text": note["text"], "written_on": written},
        }
        who = note.get("anvertraut_von")
        headed = prose.read(note["text"]) if note["text"][:1] == "[" else None
        if headed is not None:
            # A note under a category heading (written by casebridge or a person) is of that
            # category; anvertraut_von, when set, still names who entrusted it.
            category, by, rest = headed
            part["category"] = category
            dated = ("assessed_on" if category is Category.CHILD_PROTECTION
                     else "written_on")
            part["content"] = {**prose.content_dict(category, rest), dated: written}
            if by is not None:
                part["entrusted_by"] = by
        if who is not None:
            part["category"] = _ENTRUSTED
            part["entrusted_by"] = entruster(who)
        out.append((where, part))
    return out


def to_envelope(doc: Json, raw: bytes, source: str) -> TransferEnvelope:
    """Map one schema-valid export to a canonical envelope (MappingError names the pointer)."""
    try:
        ext: Json = doc.get("casebridge") or {}
        parts = _parts(doc)
        created = _datetime(doc["exportiert"], "/exportiert")
        conference = None
        # Top-level since the 2026-12 interface; inside ``casebridge`` as written before.
        where = "/konferenz" if "konferenz" in doc else "/casebridge/konferenz"
        k = doc.get("konferenz") or ext.get("konferenz")
        if k is not None:
            conference = {"location": k.get("ort"), "scheduled_at": (
                _datetime(k["termin"], f"{where}/termin") if "termin" in k else None)}
        statutory = doc.get("rechtsgrundlage") or ext.get("rechtsgrundlage")
        problem = statutory_rules.claim_problem(
            codes.ZWECK_TO_PURPOSE[doc["zweck"]],
            None if statutory is None else statutory["code"],
            None if statutory is None else statutory["begruendung"])
        if problem is not None:
            raise _Bad("/rechtsgrundlage", problem)
    except _Bad as bad:
        raise MappingError(f"{source}: cannot map the export",
                           problems=[Problem(at(source, bad.where), bad.message)]) from None
    envelope = {
        "message_id": ext.get("nachricht_id") or _derived_message_id(doc),
        "correlation_id": ext.get("bezug"),
        "message_type": ext.get("nachrichtentyp") or codes.DEFAULT_MESSAGE_TYPE[doc["zweck"]],
        "sender": doc["dienststelle"],
        "recipients": doc["empfaenger"],
        "purpose": codes.ZWECK_TO_PURPOSE[doc["zweck"]],
        "created_at": created,
        "source_system": "jugendamt",
        "service": ext.get("leistung"),
        "conference": conference,
        "reason_part_ids": ext.get("anlass_teile") or [],
        "statutory": (
            {"legal_basis": statutory["code"], "justification": statutory["begruendung"]}
            if statutory else None
        ),
        "parts": [p for _, p in parts],
    }
    try:
        # The validator itself: model_validate adds a Python frame and keyword handling.
        return cast(TransferEnvelope,
                    TransferEnvelope.__pydantic_validator__.validate_python(envelope))
    except ValidationError as exc:
        raise MappingError(f"{source}: the export does not make a valid canonical message",
                           problems=_locate(exc, [w for w, _ in parts], source)) from None


def _locate(exc: ValidationError, pointers: list[str], source: str) -> list[Problem]:
    problems = []
    for problem, err in zip(problems_from(exc), exc.errors(include_url=False, include_input=False),
                            strict=True):
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] == "parts" and isinstance(loc[1], int):
            rest = field_path(tuple(p for p in loc[2:] if p not in ("note", "identity")))
            problems.append(Problem(at(source, pointers[loc[1]]), f"{rest}: {problem.message}"))
        else:
            problems.append(Problem(at(source, "/"), problem.message
                                    if problem.location == "(message)"
                                    else f"{problem.location}: {problem.message}"))
    return problems
