"""Canonical → job centre XML: ``Rueckmeldung`` for status updates, ``Zuweisung`` otherwise.

Each part is written into its native element only when reading that element back gives the same
canonical data; otherwise it becomes a ``Vermerk`` in German prose under its category heading
(:mod:`casebridge.adapters.prose`). Identity and contact always get their native view in
``Kunde``; what that view cannot hold follows in a note of the same category.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from casebridge.adapters import moments, prose, statutory
from casebridge.adapters.jobcenter.read import (
    HEMMNIS,
    KONTAKT,
    NS,
    SACHBEARBEITUNG,
    SEX,
    STATUS,
    ZWECK,
    Context,
    P,
    hint_data,
    read_benefit,
    read_contact,
    read_household,
    read_identity,
    read_plan,
    read_statement,
)
from casebridge.canonical_model import (
    Address,
    BenefitData,
    Category,
    ChildProtectionData,
    ContactData,
    HouseholdData,
    Identifier,
    IdentityData,
    MessageType,
    Part,
    PersonName,
    ReferralStatus,
    Statement,
    SupportPlan,
    TransferEnvelope,
    agency_identifier_system,
    legal_basis_citation,
)
from casebridge.errors import MappingError, Problem, RenderError

VERSION = "2.4"
#: Written for a recipient that runs 2.3: no Konferenz, KS, Rechtsgrundlage, Begruendung,
#: Gefaehrdungshinweis or Teilziel; their data goes into notes (a KS message is refused).
VERSION_23 = "2.3"
VERSIONS = (VERSION_23, VERSION)
_ZWECK_OF = {purpose: code for code, (purpose, _) in ZWECK.items()}
_STATUS_OF = {status: code for code, status in STATUS.items()}
# The format has no "failed"; "abgebrochen" is closest and a header carrier keeps "failed".
_STATUS_OF[ReferralStatus.FAILED] = "abgebrochen"
_HEMMNIS_OF = {category: code for code, category in HEMMNIS.items()}
_SEX_OF = {sex: code for code, sex in SEX.items()}
_KONTAKT_OF = {system: art for art, system in KONTAKT.items()}
_ROLLE_OF = {
    "child": "Kind",
    "partner": "Partner",
    "mother": "Mutter",
    "father": "Vater",
    "parent": "Elternteil",
    "sibling": "Geschwister",
    "legal_guardian": "Vormund",
    "other": "Sonstige",
}
# "Musterstraße 12a, 47053 Duisburg": how agencies write an address on one line.
_ONE_LINE_ADDRESS = re.compile(
    r"^(?P<street>.+?)\s+(?P<no>\d+\s?[a-zA-Z]?(?:\s?[-/]\s?\d+\s?[a-zA-Z]?)?),\s*"
    r"(?P<plz>\d{5})\s+(?P<city>.+)$"
)


#: What the XSD bounds that canonical values may exceed: ``jc:Name`` (1,000 characters) holds
#: names, numbers and places, which the canonical model leaves unbounded; ``jc:Text`` (100,000)
#: holds notes, which add a heading to a canonical text of up to 100,000. The rendered tree is
#: not validated against the XSD at run time (the property tests do that for every message
#: type), so these lengths are checked where a value is written; every other constraint of the
#: XSD follows from the canonical model's own (ids, agency ids, dates, codes).
NAME_MAX = 1000
TEXT_MAX = 100_000
_NAME_ELEMENTS = frozenset({"Vorname", "Familienname", "Geburtsname", "Kundennummer", "BGNummer",
                            "Strasse", "Hausnummer", "PLZ", "Ort", "Kontakt"})
_NAME_ATTRIBUTES = frozenset({"rolle", "sachbearbeitung", "ort", "verantwortlich"})


def _too_long(name: str, attribute: str | None, value: str) -> None:
    short = attribute in _NAME_ATTRIBUTES if attribute else name in _NAME_ELEMENTS
    limit = NAME_MAX if short else TEXT_MAX
    if len(value) > limit:
        where = f"{name}/@{attribute}" if attribute else name
        raise RenderError(
            f"{where} is longer than the job centre format allows",
            problems=[Problem(where, f"{len(value)} characters; the format allows {limit}")],
        )


def sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str | None) -> Any:
    """Append ``name`` (in the job centre namespace) with text and the attributes not None."""
    el = etree.SubElement(parent, P + name)
    if text is not None:
        if len(text) > NAME_MAX:  # rare: only then is the limit looked up
            _too_long(name, None, text)
        el.text = text
    for key, value in attrs.items():
        if value is not None:
            if len(value) > NAME_MAX:
                _too_long(name, key, value)
            el.set(key, value)
    return el


def _scratch() -> etree._Element:
    return etree.Element(P + "Scratch", nsmap={"jc": NS})


def _pick(identity: IdentityData, kind: str, agencies: list[str]) -> str | None:
    systems = [agency_identifier_system(a, kind) for a in agencies]
    for system in systems:
        for ident in identity.identifiers:
            if ident.system == system:
                return ident.value
    return next((i.value for i in identity.identifiers if i.system.endswith(f":{kind}")), None)


def write_name(parent: etree._Element, name: PersonName | None, *, birth: bool = True) -> None:
    """Vorname, Familienname (and Geburtsname) as written."""
    if name is None:
        return
    if name.given:
        sub(parent, "Vorname", " ".join(name.given))
    if name.family:
        sub(parent, "Familienname", name.family)
    if birth and name.birth_name:
        sub(parent, "Geburtsname", name.birth_name)


def write_identity(kunde: etree._Element, identity: IdentityData, agencies: list[str]) -> None:
    """Kundennummer, BGNummer and Person from an identity part (ids of ``agencies`` first)."""
    for kind, element in (("kundennummer", "Kundennummer"), ("bg-nummer", "BGNummer")):
        value = _pick(identity, kind, agencies)
        if value is not None:
            sub(kunde, element, value)
    if identity.name or identity.birth_date or identity.sex:
        person = sub(kunde, "Person")
        write_name(person, identity.name)
        if identity.birth_date:
            sub(person, "Geburtsdatum", identity.birth_date.isoformat())
        if identity.sex:
            sub(person, "Geschlecht", _SEX_OF[identity.sex])


def _address_fields(address: Address) -> dict[str, str | None]:
    fields = {
        "Strasse": address.street,
        "Hausnummer": address.house_number,
        "PLZ": address.postal_code,
        "Ort": address.city,
    }
    if any(fields.values()):
        return fields
    line = address.text or ", ".join(address.lines)
    match = _ONE_LINE_ADDRESS.match(line)
    if match:
        return {
            "Strasse": match["street"],
            "Hausnummer": match["no"],
            "PLZ": match["plz"],
            "Ort": match["city"],
        }
    return {"Strasse": line, "Hausnummer": None, "PLZ": None, "Ort": None}


def write_contact(kunde: etree._Element, contact: ContactData) -> None:
    """Anschrift and Kontakt from a contact part."""
    for address in contact.addresses:
        anschrift = sub(kunde, "Anschrift")
        for name, value in _address_fields(address).items():
            if value:
                sub(anschrift, name, value)
    for point in contact.telecom:
        sub(kunde, "Kontakt", point.value, art=_KONTAKT_OF.get(point.system, "sonstige"))


def write_household(parent: etree._Element, household: HouseholdData) -> etree._Element:
    """Bedarfsgemeinschaft with one Mitglied per member."""
    bg = sub(parent, "Bedarfsgemeinschaft")
    for member in household.members:
        m = sub(bg, "Mitglied", rolle=member.role_label or _ROLLE_OF[member.role])
        write_name(m, member.person.name, birth=False)
        if member.person.birth_date:
            sub(m, "Geburtsdatum", member.person.birth_date.isoformat())
    return bg


def write_benefit(parent: etree._Element, benefit: BenefitData) -> etree._Element:
    """One Leistung."""
    el = sub(parent, "Leistung")
    sub(el, "Art", benefit.benefit_type)
    if benefit.granted_until:
        sub(el, "BewilligtBis", benefit.granted_until.isoformat())
    return el


def write_plan(parent: etree._Element, plan: SupportPlan) -> etree._Element:
    """Kooperationsplan: goals, then steps."""
    el = sub(parent, "Kooperationsplan", erstelltAm=plan.as_of.isoformat() if plan.as_of else None)
    for goal in plan.goals:
        nr = None if goal.number is None else str(goal.number)
        sub(el, "Ziel", goal.text, nr=nr)
        for text in goal.sub_goals:
            sub(el, "Teilziel", text, ziel=nr)
    for m in plan.measures:
        sub(
            el,
            "Schritt",
            m.text,
            ziel=None if m.goal is None else str(m.goal),
            verantwortlich=m.responsible,
            bis=m.due.isoformat() if m.due else None,
        )
    return el


def _without_label(statement: Any) -> Any:
    return (
        statement.model_copy(update={"label": None})
        if isinstance(statement, Statement)
        else statement
    )


class _Layout:
    """Where each part of an envelope goes: native slots in format order, then notes."""

    def __init__(
        self, envelope: TransferEnvelope, ctx: Context, agencies: list[str], version: str
    ) -> None:
        self.ctx = ctx
        self.v24 = version != VERSION_23
        self.agencies = agencies
        self.identity: IdentityData | None = None
        self.contact: ContactData | None = None
        self.team: str | None = None
        self.household: HouseholdData | None = None
        self.benefits: list[BenefitData] = []
        self.profil: dict[str, list[tuple[Category, Statement]]] = {
            "Schulabschluss": [],
            "Berufsabschluss": [],
            "LetzteTaetigkeit": [],
            "Vermittlungshemmnis": [],
        }
        self.plan: SupportPlan | None = None
        self.notes: list[str] = []
        self.hints: list[tuple[int | None, str]] = []  # (betrifft, text)
        pending: list[Part] = []
        for part in envelope.parts:
            if isinstance(part.content, ChildProtectionData) and part.entrusted_by is None:
                pending.append(part)  # placed once the household is known
            else:
                self._place(part)
        for part in pending:
            if not (self.v24 and self._hint(part)):
                self.notes.append(prose.note(part))

    def _hint(self, part: Part) -> bool:
        """A Gefaehrdungshinweis, if the part is an observation about the client or a member."""
        c = part.content
        assert isinstance(c, ChildProtectionData)
        if c.text is None or c.endangerment_assessed is not None or c.assessed_on is not None:
            return False
        members = [] if self.household is None else [m.person for m in self.household.members]
        position = None
        if c.child is not None:
            position = next((n for n, m in enumerate(members, start=1) if m == c.child), None)
            if position is None:
                return False
        el = sub(_scratch(), "Gefaehrdungshinweis", c.text,
                 betrifft=None if position is None else str(position))
        try:
            back = hint_data(
                el, [{"person": m.model_dump()} for m in members], None, "<render>")
        except ValueError:
            return False
        if ChildProtectionData.model_validate(back) != c:
            return False
        self.hints.append((position, c.text))
        return True

    def _exact(
        self, build: Callable[[etree._Element], Any], read: Callable[[Any], Any], want: Any
    ) -> bool:
        try:
            return bool(read(build(_scratch())) == want)
        except (MappingError, RenderError):
            # sub-goals of one of several unnumbered goals, a value longer than its element
            # allows: the part is written as a note instead
            return False

    def _place(self, part: Part) -> None:
        placed = False
        if part.entrusted_by is None:
            placed = self._native(part)
        if not placed:
            self.notes.append(prose.note(part))

    def _native(self, part: Part) -> bool:
        c, cat, ctx = part.content, part.category, self.ctx
        if isinstance(c, IdentityData) and self.identity is None:
            self.identity = c
            kunde = _scratch()
            write_identity(kunde, c, self.agencies)
            if read_identity(kunde, ctx) != c:
                self.notes.append(prose.note(part))
            return True
        if isinstance(c, ContactData) and self.contact is None:
            self.contact = c
            kunde = _scratch()
            write_contact(kunde, c)
            if read_contact(kunde, ctx) != c:
                self.notes.append(prose.note(part))
            return True
        if (
            isinstance(c, HouseholdData)
            and self.household is None
            and self._exact(lambda s: write_household(s, c), lambda el: read_household(el, ctx), c)
        ):
            self.household = c
            return True
        if isinstance(c, BenefitData) and self._exact(
            lambda s: write_benefit(s, c), lambda el: read_benefit(el, ctx), c
        ):
            self.benefits.append(c)
            return True
        if (
            c.kind == "support_plan"
            and self.plan is None
            and (self.v24 or not any(g.sub_goals for g in c.plan.goals))
            and self._exact(lambda s: write_plan(s, c.plan), lambda el: read_plan(el, ctx), c.plan)
        ):
            self.plan = c.plan
            return True
        if (
            c.kind == "note"
            and cat == Category.CASE_NOTES
            and c.written_on is None
            and c.author is None
        ):
            self.notes.append(prose.plain(c.text))
            return True
        if not isinstance(c, Statement):
            return False
        if (
            cat == Category.CASE_NOTES
            and c.label == SACHBEARBEITUNG
            and self.team is None
            and c.period_start is None
            and c.period_end is None
        ):
            self.team = c.text
            return True
        return self._statement(cat, c)

    def _statement(self, cat: Category, c: Statement) -> bool:
        if c.label in ("Schulabschluss", "Berufsabschluss", "LetzteTaetigkeit"):
            name = c.label
            if name != "LetzteTaetigkeit" and self.profil[name]:
                return False
            attrs = (
                {"von": c.period_start, "bis": c.period_end} if name == "LetzteTaetigkeit" else {}
            )
        elif cat in _HEMMNIS_OF:
            name, attrs = "Vermittlungshemmnis", {"kategorie": _HEMMNIS_OF[cat]}
        else:
            return False
        el = sub(_scratch(), name, c.text, **attrs)
        read_cat, read_back = read_statement(el, self.ctx)
        if read_cat != cat or _without_label(read_back) != _without_label(c):
            return False
        self.profil[name].append((cat, c))
        return True


def _zuweisung(
    envelope: TransferEnvelope, extra_notes: list[str], version: str
) -> etree._Element:
    code = _ZWECK_OF.get(envelope.purpose)
    if code is None:
        raise RenderError(
            f"purpose {envelope.purpose} has no Zweck code",
            problems=[
                Problem(
                    "purpose",
                    f"'{envelope.purpose}' has no Zweck code in the job centre format "
                    "(only referral, case_conference, joint_planning, child_protection)",
                )
            ],
        )
    claim = envelope.statutory
    problem = statutory.claim_problem(
        envelope.purpose,
        None if claim is None else claim.legal_basis,
        None if claim is None else claim.justification,
    )
    if problem is None:
        problem = statutory.version_refusal(envelope, version, VERSION, "Zuweisung")
    if problem is not None:
        raise RenderError(problem, problems=[Problem("statutory", problem)])
    ctx = Context("<render>", envelope.sender)
    layout = _Layout(envelope, ctx, [envelope.sender, *envelope.recipients], version)
    root = etree.Element(P + "Zuweisung", nsmap={"jc": NS})
    root.set("version", version)
    kopf = sub(root, "Kopf")
    sub(kopf, "NachrichtenID", envelope.message_id)
    if envelope.correlation_id:
        sub(kopf, "BezugNachrichtenID", envelope.correlation_id)
    sub(kopf, "ErstelltAm", moments.iso(envelope.created_at, "created_at"))
    sub(kopf, "Absender", dienststelle=envelope.sender, sachbearbeitung=layout.team)
    for recipient in envelope.recipients:
        sub(kopf, "Empfaenger", dienststelle=recipient)
    sub(kopf, "Zweck", envelope.service, schluessel=code)
    conference = envelope.conference
    if layout.v24 and conference is not None and (
            conference.scheduled_at or conference.location
    ):
        sub(kopf, "Konferenz",
            termin=moments.iso(conference.scheduled_at, "conference.scheduled_at")
            if conference.scheduled_at else None,
            ort=conference.location)
    if claim is not None:
        sub(kopf, "Rechtsgrundlage", legal_basis_citation(claim.legal_basis),
            schluessel=claim.legal_basis)
        sub(kopf, "Begruendung", claim.justification)
    kunde = sub(root, "Kunde")
    if layout.identity:
        write_identity(kunde, layout.identity, layout.agencies)
    if layout.contact:
        write_contact(kunde, layout.contact)
    if layout.household:
        write_household(root, layout.household)
    for position, text in layout.hints:
        sub(root, "Gefaehrdungshinweis", text,
            betrifft=None if position is None else str(position))
    for benefit in layout.benefits:
        write_benefit(root, benefit)
    if any(layout.profil.values()):
        profil = sub(root, "Profil")
        for name, items in layout.profil.items():
            for category, statement in items:
                if name == "LetzteTaetigkeit":
                    sub(
                        profil,
                        name,
                        statement.text,
                        von=statement.period_start,
                        bis=statement.period_end,
                    )
                elif name == "Vermittlungshemmnis":
                    sub(profil, name, statement.text, kategorie=_HEMMNIS_OF[category])
                else:
                    sub(profil, name, statement.text)
    if layout.plan:
        write_plan(root, layout.plan)
    said = None
    if not layout.v24 and conference is not None:
        said = prose.conference(conference.scheduled_at, conference.location)
    for note in [*layout.notes, *([said] if said else []), *extra_notes]:
        sub(root, "Vermerk", note)
    return root


def _rueckmeldung(
    envelope: TransferEnvelope, extra_notes: list[str], version: str
) -> etree._Element:
    assert envelope.status is not None and envelope.correlation_id is not None  # model invariant
    if len(envelope.recipients) != 1:
        raise RenderError(
            "a Rueckmeldung has one Empfaenger",
            problems=[
                Problem(
                    "recipients",
                    "a Rueckmeldung names exactly one Empfaenger; render one per recipient",
                )
            ],
        )
    code = _STATUS_OF.get(envelope.status.status)
    if code is None:
        raise RenderError(
            "status has no Rueckmeldung code",
            problems=[
                Problem("status.status", f"'{envelope.status.status}' has no Rueckmeldung status")
            ],
        )
    recipient = envelope.recipients[0]
    ctx = Context("<render>", recipient)
    root = etree.Element(P + "Rueckmeldung", nsmap={"jc": NS})
    root.set("version", version)
    kopf = sub(root, "Kopf")
    sub(kopf, "NachrichtenID", envelope.message_id)
    sub(kopf, "BezugNachrichtenID", envelope.correlation_id)
    sub(kopf, "ErstelltAm", moments.iso(envelope.created_at, "created_at"))
    sub(kopf, "Absender", dienststelle=envelope.sender)
    sub(kopf, "Empfaenger", dienststelle=recipient)
    notes: list[str] = []
    number_written = False
    for part in envelope.parts:
        c = part.content
        if isinstance(c, IdentityData) and not number_written and part.entrusted_by is None:
            number = _pick(c, "kundennummer", [recipient, envelope.sender])
            if number is not None:
                sub(root, "Kundennummer", number)
                number_written = True
                exact = IdentityData(
                    identifiers=[
                        Identifier(
                            system=agency_identifier_system(ctx.id_agency, "kundennummer"),
                            value=number,
                        )
                    ]
                )
                if exact != c:
                    notes.append(prose.note(part))
                continue
        if (
            c.kind == "note"
            and part.category == Category.CASE_NOTES
            and c.written_on is None
            and c.author is None
        ):
            notes.append(prose.plain(c.text))
        else:
            notes.append(prose.note(part))
    sub(root, "Status", code)
    if envelope.status.effective_on:
        sub(root, "Datum", envelope.status.effective_on.isoformat())
    for note in [*notes, *extra_notes]:
        sub(root, "Vermerk", note)
    return root


def build(envelope: TransferEnvelope, version: str = VERSION) -> etree._Element:
    """The native tree of ``envelope`` in interface ``version`` (2.3 or 2.4).

    Header data the format has no element for (a message type other than its Zweck's, a
    ``failed`` status, seconds of a time) is routing metadata about the message, not data
    about a person; it is not written into a note, which is for people.
    """
    if envelope.message_type == MessageType.STATUS_UPDATE:
        return _rueckmeldung(envelope, [], version)
    return _zuweisung(envelope, [], version)
