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

from casebridge.adapters import carrier
from casebridge.adapters.xml import at, bad_value, iso_date, iso_datetime, line, text_of
from casebridge.canonical_model import (
    Address,
    BenefitData,
    Category,
    ContactData,
    ContactPoint,
    Goal,
    HouseholdData,
    HouseholdMember,
    HouseholdRole,
    Identifier,
    IdentityData,
    Measure,
    MessageType,
    Person,
    PersonName,
    Purpose,
    ReferralStatus,
    Sex,
    Statement,
    StatusInfo,
    SupportPlan,
    SupportPlanData,
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


def read_name(el: etree._Element, ctx: Context, *, birth_name: bool = True) -> PersonName | None:
    """Vorname/Familienname/Geburtsname as written."""
    given = split_given(_opt_text(_child(el, "Vorname"), ctx))
    family = _opt_text(_child(el, "Familienname"), ctx)
    born = _opt_text(_child(el, "Geburtsname"), ctx) if birth_name else None
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
    return PersonName(family=family, given=given, birth_name=born)


def _date_child(el: etree._Element, name: str, ctx: Context) -> Any:
    child = _child(el, name)
    return None if child is None else iso_date(text_of(child, ctx.source), child, ctx.source)


def read_identity(kunde: etree._Element, ctx: Context) -> IdentityData | None:
    """Kundennummer, BGNummer and Person → the identity part's content."""
    identifiers = []
    for element, kind in (("Kundennummer", "kundennummer"), ("BGNummer", "bg-nummer")):
        child = _child(kunde, element)
        if child is not None:
            identifiers.append(
                Identifier(
                    system=agency_identifier_system(ctx.id_agency, kind),
                    value=text_of(child, ctx.source),
                )
            )
    person = _child(kunde, "Person")
    name: PersonName | None = None
    birth: date | None = None
    sex: Sex | None = None
    if person is not None:
        name = read_name(person, ctx)
        birth = _date_child(person, "Geburtsdatum", ctx)
        code = _child(person, "Geschlecht")
        sex = None if code is None else SEX[text_of(code, ctx.source)]
    if not identifiers and name is None and birth is None and sex is None:
        return None
    return IdentityData(identifiers=identifiers, name=name, birth_date=birth, sex=sex)


def read_contact(kunde: etree._Element, ctx: Context) -> ContactData | None:
    """Anschrift and Kontakt → the contact part's content."""
    addresses = []
    telecom = []
    for child in kunde.iterchildren(P + "Anschrift", P + "Kontakt"):
        if child.tag == P + "Kontakt":
            telecom.append(
                ContactPoint(system=KONTAKT[child.get("art", "")], value=text_of(child, ctx.source))
            )
            continue
        fields = {
            key: _opt_text(_child(child, name), ctx)
            for key, name in (
                ("street", "Strasse"),
                ("house_number", "Hausnummer"),
                ("postal_code", "PLZ"),
                ("city", "Ort"),
            )
        }
        if not any(fields.values()):
            raise MappingError(
                f"{ctx.source}: empty address",
                problems=[Problem(at(ctx.source, line(child)), "element 'Anschrift' is empty")],
            )
        addresses.append(Address(**fields))
    if not addresses and not telecom:
        return None
    return ContactData(addresses=addresses, telecom=telecom)


def read_household(bg: etree._Element, ctx: Context) -> HouseholdData:
    """Bedarfsgemeinschaft → household members (role as written kept in role_label)."""
    members = []
    for m in bg.iterchildren(P + "Mitglied"):
        label = (m.get("rolle") or "").strip()
        if not label:
            raise bad_value(m, ctx.source, "the role is empty", "rolle")
        name = read_name(m, ctx, birth_name=False)
        birth = _date_child(m, "Geburtsdatum", ctx)
        members.append(
            HouseholdMember(
                role=ROLLE.get(label.casefold(), HouseholdRole.OTHER),
                role_label=label,
                person=Person(name=name, birth_date=birth),
            )
        )
    return HouseholdData(members=members)


def read_benefit(el: etree._Element, ctx: Context) -> BenefitData:
    """Leistung → benefit type and the date it is granted until."""
    art = _child(el, "Art")
    assert art is not None  # required by the XSD
    return BenefitData(
        benefit_type=text_of(art, ctx.source), granted_until=_date_child(el, "BewilligtBis", ctx)
    )


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


def read_statement(el: etree._Element, ctx: Context) -> tuple[Category, Statement]:
    """A Profil element or Vermittlungshemmnis → (category, statement labelled as in the source)."""
    name = local(el)
    text = text_of(el, ctx.source)
    if name == "Vermittlungshemmnis":
        code = el.get("kategorie", "")
        if code not in HEMMNIS:
            raise bad_value(el, ctx.source, "unknown category", "kategorie")
        return HEMMNIS[code], Statement(label=code, text=text)
    if name == "LetzteTaetigkeit":
        return Category.EMPLOYMENT, Statement(
            label=name,
            text=text,
            period_start=read_period(el, "von", ctx),
            period_end=read_period(el, "bis", ctx),
        )
    return PROFIL[name], Statement(label=name, text=text)


def _positive(el: etree._Element, attribute: str) -> int | None:
    value = el.get(attribute)
    return None if value is None else int(value)  # the XSD guarantees a positive integer


def read_plan(el: etree._Element, ctx: Context) -> SupportPlan:
    """Kooperationsplan → goals and measures."""
    created = el.get("erstelltAm")
    goals = []
    measures = []
    for child in el.iterchildren(P + "Ziel", P + "Schritt"):
        text = text_of(child, ctx.source)
        if child.tag == P + "Ziel":
            goals.append(Goal(number=_positive(child, "nr"), text=text))
        else:
            due = child.get("bis")
            measures.append(
                Measure(
                    goal=_positive(child, "ziel"),
                    text=text,
                    responsible=(child.get("verantwortlich") or "").strip() or None,
                    due=None if due is None else iso_date(due, child, ctx.source, "bis"),
                )
            )
    return SupportPlan(
        as_of=None if created is None else iso_date(created, el, ctx.source, "erstelltAm"),
        goals=goals,
        measures=measures,
    )


def _kopf(root: etree._Element, ctx: Context) -> tuple[etree._Element, dict[str, Any]]:
    kopf = _child(root, "Kopf")
    assert kopf is not None
    fields: dict[str, Any] = {"source_system": SYSTEM}
    for child in kopf:
        name = local(child)
        if name == "NachrichtenID":
            fields["message_id"] = text_of(child, ctx.source)
        elif name == "BezugNachrichtenID":
            fields["correlation_id"] = text_of(child, ctx.source)
        elif name == "ErstelltAm":
            fields["created_at"] = iso_datetime(
                text_of(child, ctx.source), child, ctx.source, BERLIN
            )
        elif name == "Absender":
            fields["sender"] = child.get("dienststelle")
        elif name == "Empfaenger":
            fields.setdefault("recipients", []).append(child.get("dienststelle"))
    return kopf, fields


def read_zuweisung(root: etree._Element, source: str) -> TransferEnvelope:
    """A validated Zuweisung → one referral / conference / planning envelope."""
    kopf = _child(root, "Kopf")
    assert kopf is not None
    absender = _child(kopf, "Absender")
    assert absender is not None
    ctx = Context(source, absender.get("dienststelle", ""))
    _, fields = _kopf(root, ctx)
    zweck = _child(kopf, "Zweck")
    assert zweck is not None
    code = zweck.get("schluessel", "")
    if code not in ZWECK:
        raise bad_value(zweck, source, "unknown purpose code", "schluessel")
    fields["purpose"], fields["message_type"] = ZWECK[code]
    fields["service"] = (zweck.text or "").strip() or None
    parts = carrier.PartCollector(source)
    team = (absender.get("sachbearbeitung") or "").strip()
    if team:
        parts.add(
            "sachbearbeitung",
            Category.CASE_NOTES,
            Statement(label=SACHBEARBEITUNG, text=team),
            "/Zuweisung/Kopf/Absender/@sachbearbeitung",
        )
    counters: dict[str, int] = {}
    for el in root.iterchildren():
        name = local(el)
        n = counters[name] = counters.get(name, 0) + 1
        if name == "Kunde":
            identity = read_identity(el, ctx)
            if identity is not None:
                parts.add("identity", Category.IDENTITY, identity, "/Zuweisung/Kunde", view=True)
            contact = read_contact(el, ctx)
            if contact is not None:
                parts.add("contact", Category.CONTACT, contact, "/Zuweisung/Kunde", view=True)
        elif name == "Bedarfsgemeinschaft":
            parts.add(
                "household",
                Category.HOUSEHOLD,
                read_household(el, ctx),
                "/Zuweisung/Bedarfsgemeinschaft",
            )
        elif name == "Leistung":
            parts.add(
                f"benefit-{n}",
                Category.BENEFITS,
                read_benefit(el, ctx),
                f"/Zuweisung/Leistung[{n}]",
            )
        elif name == "Profil":
            inner: dict[str, int] = {}
            for item in el.iterchildren():
                iname = local(item)
                k = inner[iname] = inner.get(iname, 0) + 1
                category, statement = read_statement(item, ctx)
                parts.add(
                    f"{iname.lower()}-{k}", category, statement, f"/Zuweisung/Profil/{iname}[{k}]"
                )
        elif name == "Kooperationsplan":
            parts.add(
                "plan",
                Category.SUPPORT_PLAN,
                SupportPlanData(plan=read_plan(el, ctx)),
                "/Zuweisung/Kooperationsplan",
            )
        elif name == "Vermerk":
            parts.note(el, n, "/Zuweisung/Vermerk")
    fields["parts"] = parts.parts
    return carrier.build_envelope(fields, parts.header, at(source, line(root)))


def read_rueckmeldung(root: etree._Element, source: str) -> TransferEnvelope:
    """A validated Rueckmeldung → a status_update envelope answering the referral it names.

    The Kundennummer is the receiving job centre's number (it answers that centre's referral),
    so its identifier system names the Empfaenger, not the sending provider.
    """
    kopf = _child(root, "Kopf")
    assert kopf is not None
    empfaenger = _child(kopf, "Empfaenger")
    assert empfaenger is not None
    ctx = Context(source, empfaenger.get("dienststelle", ""))
    _, fields = _kopf(root, ctx)
    fields["purpose"] = Purpose.SERVICE_DELIVERY
    fields["message_type"] = MessageType.STATUS_UPDATE
    parts = carrier.PartCollector(source)
    status_el = _child(root, "Status")
    assert status_el is not None
    code = text_of(status_el, source)
    if code not in STATUS:
        raise bad_value(status_el, source, "unknown status")
    fields["status"] = StatusInfo(
        status=STATUS[code], native_status=code, effective_on=_date_child(root, "Datum", ctx)
    )
    number = _child(root, "Kundennummer")
    if number is not None:
        parts.add(
            "identity",
            Category.IDENTITY,
            IdentityData(
                identifiers=[
                    Identifier(
                        system=agency_identifier_system(ctx.id_agency, "kundennummer"),
                        value=text_of(number, source),
                    )
                ]
            ),
            "/Rueckmeldung/Kundennummer",
            view=True,
        )
    for n, el in enumerate(root.iterchildren(P + "Vermerk"), start=1):
        parts.note(el, n, "/Rueckmeldung/Vermerk")
    fields["parts"] = parts.parts
    return carrier.build_envelope(fields, parts.header, at(source, line(root)))
