"""Social office XML → canonical: each ``Fallmitteilung`` of a file becomes one envelope.

The element readers are also used by :mod:`.write` to check that what it rendered reads back to
the same canonical data (otherwise the data travels in a carrier instead).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from casebridge.adapters import carrier, statutory
from casebridge.adapters.xml import at, bad_value, blank, children, line, text_of
from casebridge.canonical_model import (
    CaseFile,
    CaseFileData,
    Category,
    ContactData,
    Identifier,
    IdentityData,
    MessageType,
    PersonName,
    Purpose,
    Statement,
    TransferEnvelope,
    agency_identifier_system,
)

NS = "urn:de:sozialamt:fallmitteilung:1"
P = "{" + NS + "}"
BERLIN = ZoneInfo("Europe/Berlin")
SYSTEM = "sozialamt"

ANLASS = {
    "Zuweisung": (Purpose.REFERRAL, MessageType.REFERRAL),
    "Fallkonferenz": (Purpose.CASE_CONFERENCE, MessageType.CASE_CONFERENCE),
    "Hilfeplanung": (Purpose.JOINT_PLANNING, MessageType.PLAN_UPDATE),
    # 1.5: a notification, not a referral: no answer is tracked for it.
    "Kinderschutz": (Purpose.CHILD_PROTECTION, MessageType.CASE_EXPORT),
}
#: 1.5: an Angabe in this Bereich is an observation about the child (child_protection).
KINDERSCHUTZ = "Kinderschutz"
BEREICH = {
    "Wohnen": Category.HOUSING,
    "Finanzen": Category.FINANCES,
    "Schulden": Category.DEBTS,
    "Gesundheit": Category.HEALTH,
    "Sucht": Category.ADDICTION,
    "Arbeit": Category.EMPLOYMENT,
    "Bildung": Category.EDUCATION,
    "Familie": Category.HOUSEHOLD,
    KINDERSCHUTZ: Category.CHILD_PROTECTION,
}
# Integration assistance (SGB IX) is granted for a disability: such a case file is health data
# (Art. 9 GDPR); every other case file states which assistance the client receives: benefits.
_SGB_IX = re.compile(r"\bSGB\s*IX\b")
_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})(?: (\d{2}):(\d{2}))?$")


Json = dict[str, Any]
# Tags in Clark notation, built once: each lookup is then a plain string comparison.
_ZEITPUNKT, _VON, _AN, _ANLASS, _TERMIN, _AKTE, _PERSON, _ANGABEN, _VERMERK = (
    P + name
    for name in ("Zeitpunkt", "Von", "An", "Anlass", "Termin", "Akte", "Person", "Angaben",
                 "Vermerk")
)
_NAME, _GEBDATUM, _ADRESSE = P + "Name", P + "GebDatum", P + "Adresse"
_RECHTSGRUNDLAGE, _BEGRUENDUNG, _ORT, _HILFEPLAN = (
    P + "Rechtsgrundlage", P + "Begruendung", P + "Ort", P + "Hilfeplan")
_ZIEL, _TEILZIEL, _MASSNAHME = P + "Ziel", P + "Teilziel", P + "Massnahme"
_IDENTITY, _CONTACT = Category.IDENTITY, Category.CONTACT
_AKTE_KEYS = {P + name: name for name in ("Aktenzeichen", "Rechtsgebiet", "Hilfeart")}


def local(el: etree._Element) -> str:
    """The element's name without namespace."""
    tag = el.tag
    return tag[len(P) :] if isinstance(tag, str) and tag.startswith(P) else str(tag)


def german_date(el: etree._Element, source: str, attribute: str | None = None) -> date:
    """``DD.MM.YYYY`` (the element's text or ``attribute``) → date; MappingError (naming the
    element) for impossible dates."""
    value = (el.get(attribute) or "") if attribute else text_of(el, source)
    match = _DATE.match(value)
    try:
        if not match or match.group(4) is not None:
            raise ValueError
        return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    except ValueError:
        raise bad_value(el, source, "not a valid date (DD.MM.YYYY)", attribute) from None


def german_datetime(el: etree._Element, source: str) -> datetime:
    """``DD.MM.YYYY HH:MM`` (or a bare date, meaning 00:00) in Europe/Berlin local time."""
    match = _DATE.match(text_of(el, source))
    try:
        if not match:
            raise ValueError
        day, month, year, hour, minute = match.groups()
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=BERLIN
        )
    except ValueError:
        raise bad_value(el, source, "not a valid date and time (DD.MM.YYYY HH:MM)") from None


def name_data(value: str) -> Json:
    """ "Family, Given" as written; without a comma the whole is the family name."""
    family, comma, given = value.partition(",")
    if not comma:
        return {"family": value.strip()}
    return {"family": family.strip() or None, "given": given.split()}


def read_name(value: str) -> PersonName:
    """ "Family, Given" as written; without a comma the whole is the family name."""
    return PersonName.model_validate(name_data(value))


def case_file_category(case_file: CaseFile) -> Category:
    """health for an SGB IX case (it reveals a disability), benefits otherwise."""
    return _category_of(case_file.legal_basis)


def _category_of(legal_basis: str | None) -> Category:
    return Category.HEALTH if legal_basis and _SGB_IX.search(legal_basis) else Category.BENEFITS


def akte_data(
    akte: etree._Element, sender: str, source: str
) -> tuple[Json, tuple[Category, Json] | None]:
    """Akte → the Aktenzeichen as identifier dict and, when it says more than its number, the
    case-file content dict (category per :func:`case_file_category`)."""
    values = {}
    for c in children(akte):
        key = _AKTE_KEYS.get(c.tag)
        value = (c.text or "").strip()
        if not value:
            raise blank(c, source)
        values[key if key is not None else local(c)] = value
    number = values["Aktenzeichen"]
    identifier = {"system": agency_identifier_system(sender, "aktenzeichen"), "value": number}
    if "Rechtsgebiet" not in values and "Hilfeart" not in values:
        return identifier, None
    legal_basis = values.get("Rechtsgebiet")
    case_file = {
        "agency": sender,
        "local_case_id": number,
        "legal_basis": legal_basis,
        "help_type": values.get("Hilfeart"),
    }
    return identifier, (_category_of(legal_basis), {"kind": "case_file", "case_file": case_file})


def read_akte(
    akte: etree._Element, sender: str, source: str
) -> tuple[Identifier, tuple[Category, CaseFileData] | None]:
    """Akte → the Aktenzeichen as identifier and, when it says more than its number, the case
    file (category per :func:`case_file_category`)."""
    identifier, case_file = akte_data(akte, sender, source)
    return Identifier.model_validate(identifier), (
        None
        if case_file is None
        else (case_file[0], CaseFileData.model_validate(case_file[1]))
    )


def person_data(
    person: etree._Element | None, identifier: Json | None, source: str
) -> tuple[Json | None, Json | None]:
    """Person (Name, GebDatum, Adresse) and the Aktenzeichen → identity and contact dicts."""
    name = birth = address = None
    if person is not None:
        for child in children(person):
            tag = child.tag
            if tag == _NAME:
                name = name_data(text_of(child, source))
            elif tag == _GEBDATUM:
                birth = german_date(child, source)
            elif tag == _ADRESSE:
                address = text_of(child, source)
    identity = None
    if name is not None or birth is not None or identifier is not None:
        identity = {
            "kind": "identity",
            "identifiers": [identifier] if identifier else [],
            "name": name,
            "birth_date": birth,
        }
    contact = {"kind": "contact", "addresses": [{"text": address}]} if address else None
    return identity, contact


def read_person(
    person: etree._Element | None, identifier: Identifier | None, source: str
) -> tuple[IdentityData | None, ContactData | None]:
    """Person (Name, GebDatum, Adresse) and the Aktenzeichen → identity and contact."""
    identity, contact = person_data(
        person, None if identifier is None else identifier.model_dump(), source
    )
    return (
        None if identity is None else IdentityData.model_validate(identity),
        None if contact is None else ContactData.model_validate(contact),
    )


def angabe_data(el: etree._Element, source: str) -> tuple[Category, Json]:
    """Angabe → (category of its Bereich, statement dict labelled with the Bereich; an
    observation about the child for Bereich Kinderschutz)."""
    bereich = el.get("bereich", "")
    category = BEREICH.get(bereich)
    if category is None:
        raise bad_value(el, source, "unknown Bereich", "bereich")
    if bereich == KINDERSCHUTZ:
        return category, {"kind": "child_protection", "text": text_of(el, source)}
    return category, {"kind": "statement", "label": bereich, "text": text_of(el, source)}


def plan_data(el: etree._Element, source: str) -> Json:
    """Hilfeplan (1.5) → support-plan content: goals with their sub-goals, measures."""
    goals: list[Json] = []
    measures: list[Json] = []
    pending: list[tuple[etree._Element, int | None, str]] = []
    for child in children(el):
        tag = child.tag
        text = text_of(child, source)
        goal = child.get("nr" if tag == _ZIEL else "ziel")
        number = None if goal is None else int(goal)  # the XSD guarantees a positive integer
        if tag == _ZIEL:
            goals.append({"number": number, "text": text, "sub_goals": []})
        elif tag == _TEILZIEL:
            pending.append((child, number, text))
        elif tag == _MASSNAHME:
            due = child.get("bis")
            measures.append({
                "goal": number, "text": text,
                "responsible": (child.get("verantwortlich") or "").strip() or None,
                "due": None if due is None else german_date(child, source, "bis"),
            })
    for child, number, text in pending:
        matches = [g for g in goals if g["number"] == number] if number is not None else (
            goals if len(goals) == 1 else [])
        if not matches:
            raise bad_value(child, source, "names no goal of the plan", "ziel")
        matches[0]["sub_goals"].append(text)
    stand = el.get("stand")
    return {"kind": "support_plan", "plan": {
        "as_of": None if stand is None else german_date(el, source, "stand"),
        "goals": goals, "measures": measures}}


def read_angabe(el: etree._Element, source: str) -> tuple[Category, Statement]:
    """Angabe → (category of its Bereich, statement labelled with the Bereich)."""
    category, data = angabe_data(el, source)
    return category, Statement.model_validate(data)


def read_fallmitteilung(msg: etree._Element, n: int, source: str) -> TransferEnvelope:
    """One validated Fallmitteilung → one envelope."""
    path = f"/Fallmitteilungen/Fallmitteilung[{n}]"
    fields: dict[str, Any] = {
        "message_id": msg.get("id"),
        "source_system": SYSTEM,
        "recipients": [],
    }
    parts = carrier.PartCollector(source)
    identifier = None
    akte = person = None
    angaben: list[etree._Element] = []
    notes: list[etree._Element] = []
    claim_els: dict[str, etree._Element] = {}
    plan: etree._Element | None = None
    for el in children(msg):
        tag = el.tag
        if tag == _ZEITPUNKT:
            fields["created_at"] = german_datetime(el, source)
        elif tag == _VON:
            fields["sender"] = text_of(el, source)
        elif tag == _AN:
            fields["recipients"].append(text_of(el, source))
        elif tag == _ANLASS:
            code = text_of(el, source)
            if code not in ANLASS:
                raise bad_value(el, source, "unknown Anlass")
            fields["purpose"], fields["message_type"] = ANLASS[code]
        elif tag == _TERMIN:
            fields.setdefault("conference", {})["scheduled_at"] = german_datetime(el, source)
        elif tag == _ORT:
            fields.setdefault("conference", {})["location"] = text_of(el, source)
        elif tag == _RECHTSGRUNDLAGE:
            claim_els["basis"] = el
        elif tag == _BEGRUENDUNG:
            claim_els["why"] = el
        elif tag == _HILFEPLAN:
            plan = el
        elif tag == _AKTE:
            akte = el
        elif tag == _PERSON:
            person = el
        elif tag == _ANGABEN:
            angaben.extend(children(el))
        elif tag == _VERMERK:
            notes.append(el)
    claim = statutory.xml_claim(fields["purpose"], claim_els.get("basis"), claim_els.get("why"),
                                msg, source)
    if claim is not None:
        fields["statutory"] = claim
    case_file = None
    if akte is not None:
        identifier, case_file = akte_data(akte, fields["sender"], source)
    identity, contact = person_data(person, identifier, source)
    if identity is not None:
        parts.add("identity", _IDENTITY, identity, f"{path}/Person", view=True)
    if contact is not None:
        parts.add("contact", _CONTACT, contact, f"{path}/Person/Adresse", view=True)
    if case_file is not None:
        parts.add("case-file", case_file[0], case_file[1], f"{path}/Akte")
    angabe_path = f"{path}/Angaben/Angabe["
    for k, el in enumerate(angaben, start=1):
        # angabe_data, inline: most parts of a Fallmitteilung are Angaben.
        bereich = el.get("bereich", "")
        category = BEREICH.get(bereich)
        if category is None:
            raise bad_value(el, source, "unknown Bereich", "bereich")
        text = (el.text or "").strip()
        if not text:
            raise blank(el, source)
        parts.add(
            f"angabe-{k}",
            category,
            {"kind": "child_protection", "text": text} if bereich == KINDERSCHUTZ
            else {"kind": "statement", "label": bereich, "text": text},
            f"{angabe_path}{k}]",
        )
    if plan is not None:
        parts.add("hilfeplan", Category.SUPPORT_PLAN, plan_data(plan, source), f"{path}/Hilfeplan")
    for k, el in enumerate(notes, start=1):
        parts.note(el, k, f"{path}/Vermerk")
    fields["parts"] = parts.parts
    return carrier.build_envelope(fields, parts.header, at(source, line(msg)))


def read_file(root: etree._Element, source: str) -> list[TransferEnvelope]:
    """A validated Fallmitteilungen file → one envelope per Fallmitteilung, in file order."""
    return [
        read_fallmitteilung(msg, n, source)
        for n, msg in enumerate(root.iterchildren(P + "Fallmitteilung"), start=1)
    ]
