"""Notes for people: a part the recipient's format has no field for, as German prose.

The interface rule of 2026-12 ("Free text is for people"): what casebridge writes into a note
(``Vermerk``, ``notizen[].text``, FHIR ``note``) reads as plain German, and a datum without a
field of its own goes into a note that begins with the German name of its category in square
brackets, e.g. ``[Gesundheit] Depressive Episode, fachärztlich behandelt``. That heading is how
the note is categorised again when it comes back (:func:`read`); a note without a known heading
is case_notes, whatever it says. Entrusted data names who entrusted it in the heading
(``[Anvertraut: Mutter]``), so the entruster's consent can be asked for again.

The prose is for reading, not a serialisation: what comes back is a note of the right category
(an observation about a child comes back as child-protection content), not the original
structure. Categories, which consent is given for, survive every trip; detail a format has a
field for travels in that field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from casebridge.canonical_model import (
    Address,
    BenefitData,
    CaseFileData,
    Category,
    ChildProtectionData,
    ContactData,
    Grantor,
    HouseholdData,
    Identifier,
    IdentityData,
    Note,
    Part,
    Person,
    PersonName,
    PersonRelation,
    Statement,
    SupportPlan,
    SupportPlanData,
)

#: The German name of every category: the heading of a note that carries it.
HEADINGS: dict[Category, str] = {
    Category.IDENTITY: "Identität",
    Category.CONTACT: "Kontakt",
    Category.HOUSEHOLD: "Haushalt",
    Category.BENEFITS: "Leistungen",
    Category.FINANCES: "Finanzen",
    Category.DEBTS: "Schulden",
    Category.EMPLOYMENT: "Arbeit",
    Category.EDUCATION: "Bildung",
    Category.HOUSING: "Wohnen",
    Category.HEALTH: "Gesundheit",
    Category.ADDICTION: "Sucht",
    Category.CRIMINAL: "Straftaten",
    Category.CHILD_PROTECTION: "Kinderschutz",
    Category.SUPPORT_PLAN: "Hilfeplan",
    Category.CASE_NOTES: "Vermerk",
    Category.ENTRUSTED: "Anvertraut",
}
_BY_HEADING = {h.casefold(): c for c, h in HEADINGS.items()}
_HEADING = re.compile(r"^\[(?P<name>[^\]\n:]{1,40})(?::\s*(?P<who>[^\]\n]{1,200}))?\]\s*")
#: Who entrusted a datum, as the heading names them (and back).
_ENTRUSTER_WORDS = {
    PersonRelation.SELF: "Klient/in",
    PersonRelation.MOTHER: "Mutter",
    PersonRelation.FATHER: "Vater",
    PersonRelation.PARENT: "Elternteil",
    PersonRelation.LEGAL_GUARDIAN: "Sorgeberechtigte",
}
_ENTRUSTER_OF = {w.casefold(): r for r, w in _ENTRUSTER_WORDS.items()}
_SEX = {"female": "weiblich", "male": "männlich", "diverse": "divers", "unknown": "unbekannt"}
_ROLES = {"child": "Kind", "partner": "Partner/in", "mother": "Mutter", "father": "Vater",
          "parent": "Elternteil", "legal_guardian": "Vormund", "sibling": "Geschwister",
          "other": "Haushaltsmitglied"}
_ID_KINDS = {"kundennummer": "Kundennummer", "bg-nummer": "BG-Nummer",
             "aktenzeichen": "Aktenzeichen", "fallnummer": "Fallnummer",
             "patient": "Klientennummer", "client": "Klientennummer"}
_TELECOM = {"phone": "Telefon", "email": "E-Mail", "fax": "Fax", "sms": "SMS", "url": "Web",
            "other": "Kontakt"}
_PERSONAL_LABEL = re.compile(r"^[A-ZÄÖÜ][A-Za-zÄÖÜäöüß ]{1,40}$")
#: Source headings that are element names rather than words.
_LABELS = {"LetzteTaetigkeit": "Letzte Tätigkeit", "Absender/@sachbearbeitung": "Sachbearbeitung",
           "schule": "Schule"}


def _d(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def _name(name: PersonName | None) -> str:
    if name is None:
        return "ohne Namen"
    text = " ".join([*name.given, name.family or ""]).strip()
    return f"{text} (geb. {name.birth_name})" if name.birth_name else text


def _person(person: Person) -> str:
    bits = [_name(person.name)]
    if person.birth_date:
        bits.append(f"geboren am {_d(person.birth_date)}")
    if person.addresses:
        bits.append(one_line(person.addresses[0]))
    return ", ".join(bits)


def _identifier(ident: Identifier) -> str:
    parts = ident.system.split(":")
    if ident.system.startswith("urn:casebridge:id:") and len(parts) >= 5:
        agency, kind = parts[3], ":".join(parts[4:])
        return f"{_ID_KINDS.get(kind, kind)} {ident.value} ({agency})"
    if ident.system == "urn:casebridge:client":
        return f"casebridge-Klientennummer {ident.value}"
    return f"Kennung {ident.value}"


def one_line(a: Address) -> str:
    """An address on one line, as agencies write it: "Musterstr. 12a, 47053 Duisburg"."""
    if a.text:
        return a.text
    street = " ".join(x for x in (a.street, a.house_number) if x)
    city = " ".join(x for x in (a.postal_code, a.city) if x)
    return ", ".join(x for x in (*a.lines, street, city, a.country or "") if x)


def _plan(plan: SupportPlan) -> str:
    bits = [f"Stand {_d(plan.as_of)}"] if plan.as_of else []
    for g in plan.goals:
        head = f"Ziel {g.number}" if g.number is not None else "Ziel"
        sub = f" (Teilziele: {'; '.join(g.sub_goals)})" if g.sub_goals else ""
        bits.append(f"{head}: {g.text}{sub}")
    for m in plan.measures:
        head = f"Maßnahme zu Ziel {m.goal}" if m.goal is not None else "Maßnahme"
        extra = [x for x in (f"verantwortlich: {m.responsible}" if m.responsible else "",
                             f"bis {_d(m.due)}" if m.due else "") if x]
        bits.append(f"{head}: {m.text}" + (f" ({', '.join(extra)})" if extra else ""))
    return " — ".join(bits) or "ohne Ziele und Maßnahmen"


def describe(content: Any, category: Category) -> str:
    """The content of a part as German prose (no heading)."""
    c = content
    if isinstance(c, Note):
        extra = [x for x in (f"vom {_d(c.written_on)}" if c.written_on else "",
                             f"von {c.author}" if c.author else "") if x]
        return c.text + (f" (Notiz {' '.join(extra)})" if extra else "")
    if isinstance(c, Statement):
        text = c.text
        label = _LABELS.get(c.label, c.label) if c.label else None
        if label and _PERSONAL_LABEL.match(label) and label != HEADINGS[category]:
            text = f"{label}: {text}"
        if c.period_start or c.period_end:
            span = " ".join(x for x in (f"von {c.period_start}" if c.period_start else "",
                                        f"bis {c.period_end}" if c.period_end else "") if x)
            text = f"{text} ({span})"
        return text
    if isinstance(c, IdentityData):
        bits = [_name(c.name)] if c.name else []
        if c.birth_date:
            bits.append(f"geboren am {_d(c.birth_date)}")
        if c.sex:
            bits.append(f"Geschlecht: {_SEX[c.sex.value]}")
        bits += [_identifier(i) for i in c.identifiers]
        return ", ".join(bits) or "ohne Angaben"
    if isinstance(c, ContactData):
        bits = [one_line(a) for a in c.addresses]
        bits += [f"{_TELECOM.get(t.system, 'Kontakt')} {t.value}" for t in c.telecom]
        return "; ".join(bits) or "ohne Angaben"
    if isinstance(c, HouseholdData):
        bits = [f"{m.role_label or _ROLES[m.role.value]}: {_person(m.person)}"
                + (" (sorgeberechtigt)" if m.has_custody else "") for m in c.members]
        if c.community_id:
            bits.append(_identifier(c.community_id))
        return "; ".join(bits) or "ohne Mitglieder"
    if isinstance(c, BenefitData):
        bits = [c.benefit_type]
        if c.granted_from:
            bits.append(f"bewilligt ab {_d(c.granted_from)}")
        if c.granted_until:
            bits.append(f"bewilligt bis {_d(c.granted_until)}")
        if c.amount is not None:
            amount = f"{c.amount:.2f}".replace(".", ",")
            bits.append(f"{amount} {c.currency or 'EUR'}")
        return ", ".join(bits)
    if isinstance(c, CaseFileData):
        cf = c.case_file
        bits = [f"Akte {cf.local_case_id} ({cf.agency})"]
        bits += [x for x in (cf.legal_basis, f"Hilfeart: {cf.help_type}" if cf.help_type else "",
                             f"seit {_d(cf.opened_on)}" if cf.opened_on else "") if x]
        return ", ".join(bits)
    if isinstance(c, SupportPlanData):
        return _plan(c.plan)
    if isinstance(c, ChildProtectionData):
        bits = []
        if c.endangerment_assessed is not None:
            answer = "Gefährdung festgestellt" if c.endangerment_assessed else (
                "keine Gefährdung festgestellt")
            bits.append(f"Gefährdungseinschätzung: {answer}")
        if c.assessed_on:
            bits.append(f"am {_d(c.assessed_on)}")
        if c.text:
            bits.append(c.text)
        if c.child is not None:
            bits.append(f"betrifft: {_person(c.child)}")
        return "; ".join(bits) or "ohne Angaben"
    raise TypeError(f"no prose for {type(c).__name__}")


def heading(part: Part) -> str:
    """``[Gesundheit]``; for entrusted data ``[Anvertraut: Mutter]`` (who entrusted it)."""
    name = HEADINGS[part.category]
    by = part.entrusted_by
    if by is None:
        return f"[{name}]"
    who = _ENTRUSTER_WORDS.get(by.relation) if by.relation is not PersonRelation.OTHER else None
    if who is None:
        who = by.name.display() if by.name is not None else "unbekannt"
    return f"[{name}: {who}]"


def note(part: Part) -> str:
    """The whole note: heading, blank, prose."""
    return f"{heading(part)} {describe(part.content, part.category)}"


def plain(text: str) -> str:
    """A case note as written, unless it begins with a heading: then under ``[Vermerk]``, so it
    is not read back as the category its first words name."""
    return f"[{HEADINGS[Category.CASE_NOTES]}] {text}" if read(text) is not None else text


def conference(scheduled_at: datetime | None, location: str | None) -> str | None:
    """A case conference's date (Berlin time) and place as a sentence, for a format version
    without a field for them; None when neither is known. Not personal data: no heading."""
    if scheduled_at is None and location is None:
        return None
    words = ["Fallkonferenz"]
    if scheduled_at is not None:
        local = scheduled_at.astimezone(ZoneInfo("Europe/Berlin"))
        words.append(local.strftime("am %d.%m.%Y um %H:%M Uhr"))
    if location is not None:
        words.append(f"in {location}")
    return plain(" ".join(words) + ".")


def entruster(word: str) -> Grantor:
    """Who a heading or an ``anvertraut_von`` names."""
    relation = _ENTRUSTER_OF.get(word.strip().casefold())
    if relation is not None:
        return Grantor(relation=relation)
    family, _, given = word.strip().partition(", ")
    return Grantor(relation=PersonRelation.OTHER,
                   name=PersonName(family=family, given=given.split() if given else []))


def read(text: str) -> tuple[Category, Grantor | None, str] | None:
    """``(category, entrusted_by, text after the heading)`` of a note with a known heading;
    None for a note without one (which is case_notes)."""
    match = _HEADING.match(text)
    if match is None:
        return None
    category = _BY_HEADING.get(match["name"].strip().casefold())
    if category is None:
        return None
    rest = text[match.end():].strip() or text.strip()
    if category is Category.ENTRUSTED:
        who = match["who"]
        if not who:
            return None  # entrusted by nobody named: the entruster's consent cannot be asked
        return category, entruster(who), rest
    return category, None, rest


def content_dict(category: Category, rest: str) -> dict[str, Any]:
    """The content a headed note comes back as: an observation for child protection, else a
    note."""
    if category is Category.CHILD_PROTECTION:
        return {"kind": "child_protection", "text": rest}
    return {"kind": "note", "text": rest}
