"""FHIR elements ↔ canonical parts: Patient, reasonCode, Annotation, security labels.

Reading works on the models fhir.resources has already validated (no second validation);
writing produces plain FHIR JSON dicts that are written out as they are (not validated again at
run time; tests/adapters/test_rendered_output_valid.py validates them with fhir.resources).
Elements casebridge does not map are rejected with the pointer, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from casebridge.adapters import prose
from casebridge.adapters.provider_fhir import codes
from casebridge.canonical_model import (
    Category,
    ContactData,
    IdentityData,
    Note,
    Part,
    Statement,
)
from casebridge.canonical_model.validation import problems_from

Json = dict[str, Any]


class Bad(Exception):
    """A FHIR-valid element casebridge cannot map (pointer + reason, no values)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def only(obj: Any, allowed: Iterable[str], where: str) -> None:
    """Reject elements of ``obj`` that casebridge does not map (unknown → clear error)."""
    allowed = set(allowed)
    for name in obj.model_fields_set:
        if name in allowed or getattr(obj, name) in (None, []):
            continue
        alias = type(obj).model_fields[name].alias or name
        raise Bad(f"{where}/{alias}", f"element '{alias}' is not supported by casebridge "
                  "(rejected rather than dropped)")


def extensions(obj: Any, allowed: Iterable[str], where: str) -> dict[str, list[Any]]:
    """The extensions of ``obj`` by url; an unknown url is rejected."""
    out: dict[str, list[Any]] = {}
    for i, ext in enumerate(obj.extension or []):
        if ext.url not in allowed:
            raise Bad(f"{where}/extension/{i}", "extension is not supported by casebridge")
        out.setdefault(ext.url, []).append(ext)
    return out


def one_date(value: Any) -> date | None:
    """A FHIR date/dateTime value as a calendar date (partial dates are refused by the caller)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    raise ValueError("partial date")


# --- security labels -------------------------------------------------------------------------


def security(categories: Iterable[Category]) -> list[Json]:
    """``meta.security`` codings announcing the special categories a resource carries."""
    given = set(categories)
    present = [c for c in codes.LABELLED if c in given]
    if not present:
        return []
    out: list[Json] = [{"system": codes.CONFIDENTIALITY, "code": "R", "display": "restricted"}]
    for cat in present:
        if cat in codes.ACT_CODE_FOR:
            code, display = codes.ACT_CODE_FOR[cat]
            out.append({"system": codes.ACT_CODE, "code": code, "display": display})
        out.append({"system": codes.CATEGORY_SYSTEM, "code": str(cat)})
    return out


def labelled(meta: Any) -> set[Category]:
    """Categories a resource's ``meta.security`` announces (casebridge codes and ActCode)."""
    found: set[Category] = set()
    for coding in (meta.security or []) if meta is not None else []:
        if coding.system == codes.CATEGORY_SYSTEM and coding.code in Category.__members__.values():
            found.add(Category(coding.code))
        elif coding.system == codes.ACT_CODE and coding.code in codes.CATEGORY_FOR_ACT_CODE:
            found.add(codes.CATEGORY_FOR_ACT_CODE[coding.code])
    return found


def _fallback(labels: set[Category], default: Category) -> Category:
    # An element that does not say what it is about takes the resource's special label, or the
    # default: 'health' for reasons (consent must name it), 'case_notes' for notes.
    for cat in codes.SPECIAL_ORDER:
        if cat in labels:
            return cat
    return default


def _category(code: str | None, where: str) -> Category:
    try:
        return Category(code or "")  # '' is no category either
    except ValueError:
        raise Bad(where, "not a casebridge category code") from None


# --- Patient ↔ identity + contact ------------------------------------------------------------


def patient(identity: IdentityData, contact: ContactData | None, ids: tuple[str, str],
            resource_id: str | None = None) -> Json:
    """A Patient resource from the client's identity (and contact) content."""
    res: Json = {"resourceType": "Patient"}
    if resource_id:
        res["id"] = resource_id
    exts = []
    if ids[0] != "identity":
        exts.append({"url": codes.EXT_IDENTITY_PART, "valueString": ids[0]})
    if contact is not None and (ids[1] != "contact" or not (contact.addresses or contact.telecom)):
        exts.append({"url": codes.EXT_CONTACT_PART, "valueString": ids[1]})
    if exts:
        res["extension"] = exts
    if identity.identifiers:
        res["identifier"] = [{"system": i.system, "value": i.value} for i in identity.identifiers]
    names = []
    if identity.name is not None:
        n = identity.name
        names.append({k: v for k, v in (("use", "official"), ("family", n.family),
                                        ("given", list(n.given))) if v})
        if n.birth_name:
            names.append({"use": "maiden", "family": n.birth_name})
    if names:
        res["name"] = names
    if identity.sex is not None:
        res["gender"] = codes.FHIR_GENDER[identity.sex]
    if identity.birth_date is not None:
        res["birthDate"] = identity.birth_date.isoformat()
    if contact is not None:
        if contact.telecom:
            res["telecom"] = [{"system": t.system, "value": t.value} for t in contact.telecom]
        if contact.addresses:
            res["address"] = [_address(a) for a in contact.addresses]
    return res


def _address(a: Any) -> Json:
    out: Json = {}
    lines: list[str] = []
    line_ext: list[Json | None] = []
    if a.street or a.house_number:
        lines.append(" ".join(x for x in (a.street, a.house_number) if x))
        exts = []
        if a.street:
            exts.append({"url": codes.ADXP_STREET, "valueString": a.street})
        if a.house_number:
            exts.append({"url": codes.ADXP_HOUSE_NUMBER, "valueString": a.house_number})
        line_ext.append({"extension": exts})
    for line in a.lines:
        lines.append(line)
        line_ext.append(None)
    if lines:
        out["line"] = lines
        if any(line_ext):
            out["_line"] = line_ext
    for key, value in (("city", a.city), ("postalCode", a.postal_code), ("country", a.country),
                       ("text", a.text)):
        if value:
            out[key] = value
    return out


_PATIENT_ELEMENTS = {"id", "meta", "text", "language", "active", "extension", "identifier",
                     "name", "gender", "birthDate", "telecom", "address"}


def parts_from_patient(pat: Any, where: str) -> list[Json]:
    """identity (always) and contact (if any) part dicts from a validated Patient."""
    only(pat, _PATIENT_ELEMENTS, where)
    exts = extensions(pat, (codes.EXT_IDENTITY_PART, codes.EXT_CONTACT_PART), where)
    identity: Json = {"kind": "identity", "identifiers": [], "sex": None}
    for i, ident in enumerate(pat.identifier or []):
        only(ident, ("system", "value"), f"{where}/identifier/{i}")
        identity["identifiers"].append({"system": ident.system, "value": ident.value})
    name: Json = {}
    for i, hn in enumerate(pat.name or []):
        only(hn, ("use", "family", "given"), f"{where}/name/{i}")
        if hn.use == "maiden":
            name["birth_name"] = hn.family
        elif "family" in name or "given" in name:
            raise Bad(f"{where}/name/{i}", "more than one current name is not supported")
        else:
            name.update({"family": hn.family, "given": list(hn.given or [])})
    if name:
        identity["name"] = name
    if pat.gender is not None:
        if pat.gender not in codes.GENDER:
            raise Bad(f"{where}/gender", "not a FHIR administrative gender code")
        identity["sex"] = codes.GENDER[pat.gender]
    identity["birth_date"] = _birth_date(pat.birthDate, f"{where}/birthDate")
    parts = [{"id": _ext_string(exts, codes.EXT_IDENTITY_PART) or "identity",
              "category": "identity", "source": where, "content": identity}]
    telecom = []
    for i, cp in enumerate(pat.telecom or []):
        only(cp, ("system", "value"), f"{where}/telecom/{i}")
        system = "other" if cp.system in (None, "pager") else cp.system
        telecom.append({"system": system, "value": cp.value})
    addresses = [_read_address(a, f"{where}/address/{i}") for i, a in enumerate(pat.address or [])]
    contact_id = _ext_string(exts, codes.EXT_CONTACT_PART)
    if telecom or addresses or contact_id:
        parts.append({"id": contact_id or "contact", "category": "contact", "source": where,
                      "content": {"kind": "contact", "telecom": telecom,
                                  "addresses": addresses}})
    return parts


def _birth_date(value: Any, where: str) -> date | None:
    try:
        return one_date(value)
    except ValueError:
        raise Bad(where, "a birth date must be a full date (YYYY-MM-DD)") from None


def _ext_string(exts: dict[str, list[Any]], url: str) -> str | None:
    found = exts.get(url)
    return found[0].valueString if found else None


def _read_address(a: Any, where: str) -> Json:
    only(a, ("line", "line__ext", "city", "postalCode", "country", "text"), where)
    out: Json = {"lines": [], "city": a.city, "postal_code": a.postalCode, "country": a.country,
                 "text": a.text}
    line_ext = a.line__ext or []
    for i, line in enumerate(a.line or []):
        ext = line_ext[i] if i < len(line_ext) else None
        parts = extensions(ext, (codes.ADXP_STREET, codes.ADXP_HOUSE_NUMBER),
                           f"{where}/line/{i}") if ext is not None else {}
        if parts:
            out["street"] = _ext_string(parts, codes.ADXP_STREET)
            out["house_number"] = _ext_string(parts, codes.ADXP_HOUSE_NUMBER)
        else:
            out["lines"].append(line)
    return out


# --- reasonCode ↔ statement ------------------------------------------------------------------


def reason(part: Part) -> Json | None:
    """A reasonCode for a reason statement, or None if the statement needs more than FHIR has."""
    c = part.content
    if not isinstance(c, Statement) or part.entrusted_by is not None or c.period_start or (
            c.period_end):
        return None
    out: Json = {"id": part.id,
                 "coding": [{"system": codes.CATEGORY_SYSTEM, "code": str(part.category)}],
                 "text": c.text}
    if c.label:
        out["extension"] = [{"url": codes.EXT_LABEL, "valueString": c.label}]
    return out


def part_from_reason(cc: Any, index: int, where: str, labels: set[Category]) -> Json:
    """A statement part from a reasonCode (category: its coding, the labels, else health)."""
    only(cc, ("id", "extension", "coding", "text"), where)
    exts = extensions(cc, (codes.EXT_LABEL,), where)
    category = None
    for i, coding in enumerate(cc.coding or []):
        if coding.system != codes.CATEGORY_SYSTEM:
            raise Bad(f"{where}/coding/{i}", "only urn:casebridge:category codings are supported")
        if category is not None:
            raise Bad(f"{where}/coding/{i}", "a reason names more than one category")
        category = _category(coding.code, f"{where}/coding/{i}/code")
    if not cc.text:
        raise Bad(f"{where}/text", "a reason needs its text")
    return {
        "id": cc.id or f"reason-{index + 1}",
        "category": category or _fallback(labels, Category.HEALTH),
        "source": where,
        "content": {"kind": "statement", "label": _ext_string(exts, codes.EXT_LABEL),
                    "text": cc.text},
    }


# --- Annotation ↔ note or carried part -------------------------------------------------------


def annotation(part: Part) -> Json:
    """A note as Annotation; parts without a FHIR element ride along as JSON (EXT_PART)."""
    c = part.content
    out: Json = {"id": part.id}
    if isinstance(c, Note) and part.entrusted_by is None:
        out["text"] = c.text
        if c.written_on:
            out["time"] = c.written_on.isoformat()
        if c.author:
            out["authorString"] = c.author
        out["extension"] = [{"url": codes.EXT_CATEGORY, "valueCode": str(part.category)}]
        return out
    payload = part.model_dump_json(exclude_none=True)
    # The text is for people (German prose under the category's heading); the part itself
    # travels in the extension, which no case worker reads.
    out["text"] = prose.note(part)
    out["extension"] = [{"url": codes.EXT_CATEGORY, "valueCode": str(part.category)},
                        {"url": codes.EXT_PART, "valueString": payload}]
    return out


def part_from_annotation(note: Any, index: int, where: str,
                         labels: set[Category]) -> Json | Part:
    """A note part (or the part a casebridge-written Annotation carries)."""
    only(note, ("id", "extension", "text", "time", "authorString"), where)
    exts = extensions(note, (codes.EXT_CATEGORY, codes.EXT_PART), where)
    if codes.EXT_PART in exts:
        try:
            return Part.model_validate_json(exts[codes.EXT_PART][0].valueString or "")
        except ValidationError as exc:
            detail = "; ".join(str(p) for p in problems_from(exc))
            raise Bad(f"{where}/extension", f"carried part is not valid ({detail})") from None
    code = exts[codes.EXT_CATEGORY][0].valueCode if codes.EXT_CATEGORY in exts else None
    headed = prose.read(note.text or "") if not code else None
    category = (_category(code, f"{where}/extension") if code
                else headed[0] if headed is not None
                else _fallback(labels, Category.CASE_NOTES))
    time = note.time
    written = time.date() if isinstance(time, datetime) else time
    out: Json = {"id": note.id or f"note-{index + 1}", "category": category, "source": where,
                 "content": {"kind": "note", "text": note.text, "author": note.authorString,
                             "written_on": written}}
    if headed is not None:
        # A note under a category heading is of that category (interface rule of 2026-12).
        out["content"] = {**prose.content_dict(category, headed[2]),
                          **({} if category is Category.CHILD_PROTECTION
                             else {"author": note.authorString, "written_on": written})}
        if headed[1] is not None:
            out["entrusted_by"] = headed[1].model_dump()
    elif category == Category.ENTRUSTED:
        raise Bad(f"{where}/extension", "an entrusted note must name who entrusted it")
    return out


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
