"""Job centre XML → canonical: ``Zuweisung`` and ``Rueckmeldung`` after XSD validation.

The element readers are also used by :mod:`.write` to check that what it rendered reads back to
the same canonical data (otherwise the data travels in a carrier instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from casebridge.adapters import carrier, statutory
from casebridge.adapters.xml import (
    at,
    bad_value,
    blank,
    children,
    iso_date,
    iso_datetime,
    line,
    text_of,
)
from casebridge.canonical_model import (
    BenefitData,
    Category,
    ContactData,
    HouseholdData,
    HouseholdRole,
    IdentityData,
    MessageType,
    PersonName,
    Purpose,
    ReferralStatus,
    Sex,
    Statement,
    SupportPlan,
    TransferEnvelope,
    agency_identifier_system,
)
from casebridge.errors import MappingError, Problem

NS = "urn:de:jobcenter:schnittstelle:zuweisung:2"
P = "{" + NS + "}"
BERLIN = ZoneInfo("Europe/Berlin")
SYSTEM = "jobcenter"

ZWECK = {
    "ZUW": (Purpose.REFERRAL, MessageType.REFERRAL),
    "FK": (Purpose.CASE_CONFERENCE, MessageType.CASE_CONFERENCE),
    "KP": (Purpose.JOINT_PLANNING, MessageType.PLAN_UPDATE),
    # 2.4: a notification, not a referral: no answer is tracked for it.
    "KS": (Purpose.CHILD_PROTECTION, MessageType.CASE_EXPORT),
}
STATUS = {
    "eingegangen": ReferralStatus.RECEIVED,
    "angenommen": ReferralStatus.ACCEPTED,
    "abgelehnt": ReferralStatus.REJECTED,
    "begonnen": ReferralStatus.IN_PROGRESS,
    "abgebrochen": ReferralStatus.CANCELLED,
    "beendet": ReferralStatus.COMPLETED,
}
HEMMNIS = {
    "gesundheit": Category.HEALTH,
    "sucht": Category.ADDICTION,
    "schulden": Category.DEBTS,
    "wohnen": Category.HOUSING,
    "familie": Category.HOUSEHOLD,
    "sonstige": Category.CASE_NOTES,
}
SEX = {"w": Sex.FEMALE, "m": Sex.MALE, "d": Sex.DIVERSE, "x": Sex.UNKNOWN}
KONTAKT = {"telefon": "phone", "email": "email", "fax": "fax", "sonstige": "other"}
ROLLE = {
    "kind": HouseholdRole.CHILD,
    "partner": HouseholdRole.PARTNER,
    "partnerin": HouseholdRole.PARTNER,
    "mutter": HouseholdRole.MOTHER,
    "vater": HouseholdRole.FATHER,
    "elternteil": HouseholdRole.PARENT,
    "geschwister": HouseholdRole.SIBLING,
    "vormund": HouseholdRole.LEGAL_GUARDIAN,
}
#: Profil elements that hold one statement each, and their category and label.
PROFIL = {
    "Schulabschluss": Category.EDUCATION,
    "Berufsabschluss": Category.EDUCATION,
    "LetzteTaetigkeit": Category.EMPLOYMENT,
}
#: The Absender's team is not client data, but it must not be lost: a case_notes statement.
SACHBEARBEITUNG = "Absender/@sachbearbeitung"


@dataclass(frozen=True)
class Context:
    """What the readers need besides the element: the file name and whose ids these are."""

    source: str
    id_agency: str  # the job centre whose Kundennummer/BG-Nummer the message carries


# The readers build plain dicts and lists; the envelope is validated once, at the end, by
# TransferEnvelope.model_validate. Building each sub-model on its own costs a validator call
# per model and validated every Part twice (once alone, once inside the envelope).
Json = dict[str, Any]

# Tags in Clark notation, built once: each lookup is then a plain string comparison.
_T = {
    name: P + name
    for name in (
        "Kopf NachrichtenID BezugNachrichtenID ErstelltAm Absender Empfaenger Zweck Kunde "
        "Kundennummer BGNummer Person Vorname Familienname Geburtsname Geburtsdatum Geschlecht "
        "Anschrift Strasse Hausnummer PLZ Ort Kontakt Bedarfsgemeinschaft Mitglied Leistung Art "
        "BewilligtBis Profil Kooperationsplan Ziel Schritt Vermerk Status Datum Teilziel "
        "Konferenz Rechtsgrundlage Begruendung Gefaehrdungshinweis"
    ).split()
}
_ADDRESS_KEYS = {
    P + "Strasse": "street",
    P + "Hausnummer": "house_number",
    P + "PLZ": "postal_code",
    P + "Ort": "city",
}
# The readers compare tags with these module globals: a dict lookup per comparison (``_T[...]``)
# cost more than the comparison itself.
(
    _KOPF, _NACHRICHTEN_ID, _BEZUG, _ERSTELLT_AM, _ABSENDER, _EMPFAENGER, _ZWECK, _KUNDE,
    _VORNAME, _FAMILIENNAME, _GEBURTSNAME, _GEBURTSDATUM, _GESCHLECHT, _MITGLIED, _ART,
    _BEWILLIGT_BIS, _ZIEL, _SCHRITT, _VERMERK, _BG, _LEISTUNG, _PROFIL, _PLAN, _STATUS, _DATUM,
) = (
    P + name
    for name in (
        "Kopf NachrichtenID BezugNachrichtenID ErstelltAm Absender Empfaenger Zweck Kunde Vorname "
        "Familienname Geburtsname Geburtsdatum Geschlecht Mitglied Art BewilligtBis Ziel Schritt "
        "Vermerk Bedarfsgemeinschaft Leistung Profil Kooperationsplan Status Datum"
    ).split()
)
_PERSON_TAGS = frozenset({_VORNAME, _FAMILIENNAME, _GEBURTSNAME, _GEBURTSDATUM, _GESCHLECHT})
_KONTAKT, _ANSCHRIFT, _PERSON = _T["Kontakt"], _T["Anschrift"], _T["Person"]
_TEILZIEL, _HINWEIS = _T["Teilziel"], _T["Gefaehrdungshinweis"]
#: Kopf elements of 2.4 that follow Zweck, each at most once.
_KOPF_24 = {_T[name]: name for name in ("Konferenz", "Rechtsgrundlage", "Begruendung")}
_KUNDENNUMMER = _T["Kundennummer"]
_NUMBER_KINDS = {_KUNDENNUMMER: "kundennummer", _T["BGNummer"]: "bg-nummer"}
#: Profil children: tag → (local name, part id prefix, source path prefix).
_PROFIL_TAGS = {
    P + name: (name, name.lower(), f"/Zuweisung/Profil/{name}[")
    for name in ("Schulabschluss", "Berufsabschluss", "LetzteTaetigkeit", "Vermittlungshemmnis")
}
_CASE_NOTES = Category.CASE_NOTES
_EMPLOYMENT = Category.EMPLOYMENT
_IDENTITY, _CONTACT, _HOUSEHOLD = Category.IDENTITY, Category.CONTACT, Category.HOUSEHOLD
_BENEFITS, _SUPPORT_PLAN = Category.BENEFITS, Category.SUPPORT_PLAN
_CHILD_PROTECTION = Category.CHILD_PROTECTION
_OTHER_ROLE = HouseholdRole.OTHER


def local(el: etree._Element) -> str:
    """The element's name without namespace."""
    tag = el.tag
    return tag[len(P) :] if isinstance(tag, str) and tag.startswith(P) else str(tag)


def _child(el: etree._Element, name: str) -> etree._Element | None:
    # iterchildren with a tag filter runs in C; find() would parse a path expression each time.
    return next(el.iterchildren(P + name), None)


def _opt_text(el: etree._Element | None, ctx: Context) -> str | None:
    return None if el is None else text_of(el, ctx.source)


def split_given(value: str | None) -> list[str]:
    """Given names as a list (several given names are separated by blanks)."""
    return value.split() if value else []


def _name_data(
    el: etree._Element, given: str | None, family: str | None, born: str | None, ctx: Context
) -> Json | None:
    if not given and family is None:
        if born is not None:
            raise MappingError(
                f"{ctx.source}: name",
                problems=[
                    Problem(
                        at(ctx.source, line(el)), "a Geburtsname needs a Vorname or Familienname"
                    )
                ],
            )
        return None
    return {"family": family, "given": split_given(given), "birth_name": born}


def _person_data(el: etree._Element, ctx: Context, *, birth_name: bool = True) -> Json:
    """Vorname/Familienname/Geburtsname/Geburtsdatum/Geschlecht of a Person or Mitglied."""
    source = ctx.source
    given = family = born = None
    birth = sex = None
    for child in children(el):
        tag = child.tag
        if tag not in _PERSON_TAGS or (tag == _GEBURTSNAME and not birth_name):
            continue
        value = (child.text or "").strip()  # text_of, inline: this runs for every name part
        if not value:
            raise blank(child, source)
        if tag == _VORNAME:
            given = value
        elif tag == _FAMILIENNAME:
            family = value
        elif tag == _GEBURTSDATUM:
            birth = iso_date(value, child, source)
        elif tag == _GESCHLECHT:
            sex = SEX[value]
        else:
            born = value
    return {"name": _name_data(el, given, family, born, ctx), "birth_date": birth, "sex": sex}


def read_name(el: etree._Element, ctx: Context, *, birth_name: bool = True) -> PersonName | None:
    """Vorname/Familienname/Geburtsname as written."""
    data = _person_data(el, ctx, birth_name=birth_name)["name"]
    return None if data is None else PersonName.model_validate(data)


def kunde_data(kunde: etree._Element, ctx: Context) -> tuple[Json | None, Json | None]:
    """Kunde → (identity content, contact content) as dicts, in one pass over its children:
    Kundennummer, BGNummer and Person make the identity; Anschrift and Kontakt the contact."""
    source = ctx.source
    identifiers = []
    addresses = []
    telecom = []
    person: Json | None = None
    for child in children(kunde):
        tag = child.tag
        if tag == _KONTAKT:
            system = KONTAKT[child.get("art", "")]
            telecom.append({"system": system, "value": text_of(child, source)})
        elif tag == _ANSCHRIFT:
            fields = {}
            for c in children(child):
                key = _ADDRESS_KEYS.get(c.tag)
                if key is not None:
                    value = (c.text or "").strip()
                    if not value:
                        raise blank(c, source)
                    fields[key] = value
            if not fields:
                raise MappingError(
                    f"{source}: empty address",
                    problems=[Problem(at(source, line(child)), "element 'Anschrift' is empty")],
                )
            addresses.append(fields)
        elif tag == _PERSON:
            if person is None:
                person = _person_data(child, ctx)
        elif (kind := _NUMBER_KINDS.get(tag)) is not None:
            identifiers.append(
                {
                    "system": agency_identifier_system(ctx.id_agency, kind),
                    "value": text_of(child, source),
                }
            )
    contact = (
        {"kind": "contact", "addresses": addresses, "telecom": telecom}
        if addresses or telecom
        else None
    )
    if person is None:
        identity = {"kind": "identity", "identifiers": identifiers} if identifiers else None
    elif identifiers or any(v is not None for v in person.values()):
        identity = {"kind": "identity", "identifiers": identifiers, **person}
    else:
        identity = None
    return identity, contact


def read_identity(kunde: etree._Element, ctx: Context) -> IdentityData | None:
    """Kundennummer, BGNummer and Person → the identity part's content."""
    data = kunde_data(kunde, ctx)[0]
    return None if data is None else IdentityData.model_validate(data)


def read_contact(kunde: etree._Element, ctx: Context) -> ContactData | None:
    """Anschrift and Kontakt → the contact part's content."""
    data = kunde_data(kunde, ctx)[1]
    return None if data is None else ContactData.model_validate(data)


def household_data(bg: etree._Element, ctx: Context) -> Json:
    """Bedarfsgemeinschaft → household members (role as written kept in role_label)."""
    members = []
    for m in children(bg):
        if m.tag != _MITGLIED:
            continue
        label = (m.get("rolle") or "").strip()
        if not label:
            raise bad_value(m, ctx.source, "the role is empty", "rolle")
        person = _person_data(m, ctx, birth_name=False)
        members.append(
            {
                "role": ROLLE.get(label.casefold(), _OTHER_ROLE),
                "role_label": label,
                "person": {"name": person["name"], "birth_date": person["birth_date"]},
            }
        )
    return {"kind": "household", "members": members}


def read_household(bg: etree._Element, ctx: Context) -> HouseholdData:
    """Bedarfsgemeinschaft → household members (role as written kept in role_label)."""
    return HouseholdData.model_validate(household_data(bg, ctx))


def benefit_data(el: etree._Element, ctx: Context) -> Json:
    """Leistung → benefit type and the date it is granted until."""
    benefit_type = until = None
    for child in children(el):
        tag = child.tag
        if tag == _ART:
            benefit_type = text_of(child, ctx.source)
        elif tag == _BEWILLIGT_BIS:
            until = iso_date(text_of(child, ctx.source), child, ctx.source)
    assert benefit_type is not None  # required by the XSD
    return {"kind": "benefit", "benefit_type": benefit_type, "granted_until": until}


def read_benefit(el: etree._Element, ctx: Context) -> BenefitData:
    """Leistung → benefit type and the date it is granted until."""
    return BenefitData.model_validate(benefit_data(el, ctx))


def read_period(el: etree._Element, attribute: str, ctx: Context) -> str | None:
    """A partial date attribute (YYYY, YYYY-MM, YYYY-MM-DD), checked for a real month/day."""
    value = el.get(attribute)
    if value is None:
        return None
    parts = value.split("-")
    try:
        if len(parts) == 3:
            iso_date(value, el, ctx.source, attribute)
        elif len(parts) == 2 and not 1 <= int(parts[1]) <= 12:
            raise ValueError
    except ValueError:
        raise bad_value(el, ctx.source, "not a valid month", attribute) from None
    return value


def statement_data(el: etree._Element, name: str, ctx: Context) -> tuple[Category, Json]:
    """A Profil element or Vermittlungshemmnis → (category, statement dict labelled as in the
    source)."""
    text = text_of(el, ctx.source)
    if name == "Vermittlungshemmnis":
        code = el.get("kategorie", "")
        category = HEMMNIS.get(code)
        if category is None:
            raise bad_value(el, ctx.source, "unknown category", "kategorie")
        return category, {"kind": "statement", "label": code, "text": text}
    if name == "LetzteTaetigkeit":
        return _EMPLOYMENT, {
            "kind": "statement",
            "label": name,
            "text": text,
            "period_start": read_period(el, "von", ctx),
            "period_end": read_period(el, "bis", ctx),
        }
    return PROFIL[name], {"kind": "statement", "label": name, "text": text}


def read_statement(el: etree._Element, ctx: Context) -> tuple[Category, Statement]:
    """A Profil element or Vermittlungshemmnis → (category, statement labelled as in the source)."""
    category, data = statement_data(el, local(el), ctx)
    return category, Statement.model_validate(data)


def plan_data(el: etree._Element, ctx: Context) -> Json:
    """Kooperationsplan → goals and measures (a SupportPlan dict)."""
    created = el.get("erstelltAm")
    goals: list[Json] = []
    measures = []
    source = ctx.source
    sub_goals: list[tuple[etree._Element, int | None, str]] = []
    for child in children(el):
        tag = child.tag
        if tag != _ZIEL and tag != _SCHRITT and tag != _TEILZIEL:
            continue
        text = (child.text or "").strip()
        if not text:
            raise blank(child, source)
        if tag == _ZIEL:
            nr = child.get("nr")  # the XSD guarantees a positive integer
            goals.append({"number": None if nr is None else int(nr), "text": text,
                          "sub_goals": []})
        elif tag == _TEILZIEL:
            goal = child.get("ziel")
            sub_goals.append((child, None if goal is None else int(goal), text))
        else:
            goal, due = child.get("ziel"), child.get("bis")
            measures.append(
                {
                    "goal": None if goal is None else int(goal),
                    "text": text,
                    "responsible": (child.get("verantwortlich") or "").strip() or None,
                    "due": None if due is None else iso_date(due, child, source, "bis"),
                }
            )
    for child, number, text in sub_goals:
        _goal_for(child, number, goals, source)["sub_goals"].append(text)
    return {
        "as_of": None if created is None else iso_date(created, el, source, "erstelltAm"),
        "goals": goals,
        "measures": measures,
    }


def _goal_for(el: etree._Element, number: int | None, goals: list[Json], source: str) -> Json:
    """The goal a Teilziel belongs to: the one numbered @ziel, or the only goal of the plan."""
    if number is None:
        if len(goals) == 1:
            return goals[0]
        raise bad_value(el, source, "names no goal and the plan has not exactly one", "ziel")
    for goal in goals:
        if goal["number"] == number:
            return goal
    raise bad_value(el, source, "names a goal the plan does not have", "ziel")


def read_plan(el: etree._Element, ctx: Context) -> SupportPlan:
    """Kooperationsplan → goals and measures."""
    return SupportPlan.model_validate(plan_data(el, ctx))


def _kopf(kopf: etree._Element, source: str) -> tuple[Json, dict[str, etree._Element]]:
    """The header fields and the Absender, first Empfaenger and Zweck elements."""
    recipients: list[str | None] = []
    fields: Json = {"source_system": SYSTEM, "recipients": recipients}
    found: dict[str, etree._Element] = {}
    for child in children(kopf):
        tag = child.tag
        if tag == _EMPFAENGER:
            recipients.append(child.get("dienststelle"))
            found.setdefault("Empfaenger", child)
        elif tag == _ABSENDER:
            fields["sender"] = child.get("dienststelle")
            found["Absender"] = child
        elif tag == _ZWECK:
            found["Zweck"] = child
        elif tag in _KOPF_24:
            name = _KOPF_24[tag]
            if name in found:
                raise bad_value(child, source, "may appear once in Kopf")
            found[name] = child
        elif tag == _NACHRICHTEN_ID:
            fields["message_id"] = text_of(child, source)
        elif tag == _BEZUG:
            fields["correlation_id"] = text_of(child, source)
        elif tag == _ERSTELLT_AM:
            fields["created_at"] = iso_datetime(text_of(child, source), child, source, BERLIN)
    return fields, found


def _kopf_of(root: etree._Element) -> etree._Element:
    # The XSD puts Kopf first; looking at the first child avoids an iterator with a tag filter.
    kopf = root[0] if len(root) else None
    if kopf is None or kopf.tag != _KOPF:
        kopf = _child(root, "Kopf")
    assert kopf is not None
    return kopf


def read_zuweisung(root: etree._Element, source: str) -> TransferEnvelope:
    """A validated Zuweisung → one referral / conference / planning envelope."""
    fields, found = _kopf(_kopf_of(root), source)
    absender, zweck = found["Absender"], found["Zweck"]  # required by the XSD
    ctx = Context(source, absender.get("dienststelle", ""))
    code = zweck.get("schluessel", "")
    if code not in ZWECK:
        raise bad_value(zweck, source, "unknown purpose code", "schluessel")
    fields["purpose"], fields["message_type"] = ZWECK[code]
    fields["service"] = (zweck.text or "").strip() or None
    _kopf_24(fields, found, root, source)
    parts = carrier.PartCollector(source)
    add = parts.add
    team = (absender.get("sachbearbeitung") or "").strip()
    if team:
        add(
            "sachbearbeitung",
            _CASE_NOTES,
            {"kind": "statement", "label": SACHBEARBEITUNG, "text": team},
            "/Zuweisung/Kopf/Absender/@sachbearbeitung",
        )
    benefits = notes = 0
    members: list[Json] = []
    hints: list[etree._Element] = []
    for el in children(root):
        tag = el.tag
        if tag == _HINWEIS:
            hints.append(el)
        elif tag == _PROFIL:
            counts: dict[str, int] = {}
            for item in children(el):
                known = _PROFIL_TAGS.get(item.tag)
                if known is None:  # not in a validated message
                    iname = local(item)
                    known = (iname, iname.lower(), f"/Zuweisung/Profil/{iname}[")
                iname, prefix, path = known
                k = counts[iname] = counts.get(iname, 0) + 1
                category, statement = statement_data(item, iname, ctx)
                add(f"{prefix}-{k}", category, statement, f"{path}{k}]")
        elif tag == _VERMERK:
            notes += 1
            parts.note(el, notes, "/Zuweisung/Vermerk")
        elif tag == _KUNDE:
            identity, contact = kunde_data(el, ctx)
            if identity is not None:
                add("identity", _IDENTITY, identity, "/Zuweisung/Kunde", view=True)
            if contact is not None:
                add("contact", _CONTACT, contact, "/Zuweisung/Kunde", view=True)
        elif tag == _LEISTUNG:
            benefits += 1
            add(
                f"benefit-{benefits}",
                _BENEFITS,
                benefit_data(el, ctx),
                f"/Zuweisung/Leistung[{benefits}]",
            )
        elif tag == _PLAN:
            add(
                "plan",
                _SUPPORT_PLAN,
                {"kind": "support_plan", "plan": plan_data(el, ctx)},
                "/Zuweisung/Kooperationsplan",
            )
        elif tag == _BG:
            household = household_data(el, ctx)
            members = household["members"]
            add("household", _HOUSEHOLD, household, "/Zuweisung/Bedarfsgemeinschaft")
    on = fields["created_at"].date() if "created_at" in fields else None
    for k, el in enumerate(hints, start=1):
        add(f"gefaehrdung-{k}", _CHILD_PROTECTION, hint_data(el, members, on, source),
            f"/Zuweisung/Gefaehrdungshinweis[{k}]")
    fields["parts"] = parts.parts
    return carrier.build_envelope(fields, parts.header, at(source, line(root)))


def _kopf_24(
    fields: Json, found: dict[str, etree._Element], root: etree._Element, source: str
) -> None:
    """Konferenz, Rechtsgrundlage and Begruendung (2.4) into the header fields."""
    konferenz = found.get("Konferenz")
    if konferenz is not None:
        termin, ort = konferenz.get("termin"), (konferenz.get("ort") or "").strip() or None
        if termin is None and ort is None:
            raise bad_value(konferenz, source, "needs a termin or an ort")
        fields["conference"] = {
            "scheduled_at": None if termin is None
            else iso_datetime(termin, konferenz, source, BERLIN),
            "location": ort,
        }
    claim = statutory.xml_claim(fields["purpose"], found.get("Rechtsgrundlage"),
                                found.get("Begruendung"), root, source)
    if claim is not None:
        fields["statutory"] = claim


def hint_data(
    el: etree._Element, members: list[Json], on: date | None, source: str
) -> Json:
    """A Gefaehrdungshinweis → child-protection content about the child it names (@betrifft)."""
    content: Json = {"kind": "child_protection", "text": text_of(el, source)}
    betrifft = el.get("betrifft")
    if betrifft is None:
        return content  # about the Kunde
    position = int(betrifft)  # the XSD guarantees a positive integer
    if position > len(members):
        raise bad_value(
            el, source, f"names member {position}, but the Bedarfsgemeinschaft has "
            f"{len(members)}", "betrifft")
    person = members[position - 1]["person"]
    birth = person["birth_date"]
    if birth is not None and on is not None and not statutory.is_minor(birth, on):
        raise bad_value(el, source, f"names member {position}, who is not a minor", "betrifft")
    content["child"] = person
    return content


def read_rueckmeldung(root: etree._Element, source: str) -> TransferEnvelope:
    """A validated Rueckmeldung → a status_update envelope answering the referral it names.

    The Kundennummer is the receiving job centre's number (it answers that centre's referral),
    so its identifier system names the Empfaenger, not the sending provider.
    """
    fields, found = _kopf(_kopf_of(root), source)
    ctx = Context(source, found["Empfaenger"].get("dienststelle", ""))  # required by the XSD
    fields["purpose"] = Purpose.SERVICE_DELIVERY
    fields["message_type"] = MessageType.STATUS_UPDATE
    parts = carrier.PartCollector(source)
    status_el = number = date_el = None
    notes: list[etree._Element] = []
    for el in children(root):
        tag = el.tag
        if tag == _STATUS:
            status_el = el
        elif tag == _KUNDENNUMMER:
            number = el
        elif tag == _DATUM:
            date_el = el
        elif tag == _VERMERK:
            notes.append(el)
    assert status_el is not None
    code = text_of(status_el, source)
    if code not in STATUS:
        raise bad_value(status_el, source, "unknown status")
    fields["status"] = {
        "status": STATUS[code],
        "native_status": code,
        "effective_on": None
        if date_el is None
        else iso_date(text_of(date_el, source), date_el, source),
    }
    if number is not None:
        parts.add(
            "identity",
            Category.IDENTITY,
            {
                "kind": "identity",
                "identifiers": [
                    {
                        "system": agency_identifier_system(ctx.id_agency, "kundennummer"),
                        "value": text_of(number, source),
                    }
                ],
            },
            "/Rueckmeldung/Kundennummer",
            view=True,
        )
    for n, el in enumerate(notes, start=1):
        parts.note(el, n, "/Rueckmeldung/Vermerk")
    fields["parts"] = parts.parts
    return carrier.build_envelope(fields, parts.header, at(source, line(root)))
