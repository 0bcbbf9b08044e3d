"""Canonical → social office XML: one ``Fallmitteilung`` per envelope, in ISO-8859-1.

Each part is written into its native element only when reading that element back gives the same
canonical data; otherwise it becomes a ``Vermerk`` in German prose under its category heading
(:mod:`casebridge.adapters.prose`). ``Person`` always shows the client; what it cannot hold (a
sex, a birth name, a job-centre number …) follows in a note of the same category.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from casebridge.adapters import prose, statutory
from casebridge.adapters.sozialamt.read import (
    ANLASS,
    BEREICH,
    BERLIN,
    NS,
    P,
    plan_data,
    read_akte,
    read_angabe,
    read_person,
)
from casebridge.canonical_model import (
    CaseFileData,
    Category,
    ChildProtectionData,
    ContactData,
    IdentityData,
    MessageType,
    Part,
    Statement,
    SupportPlan,
    SupportPlanData,
    TransferEnvelope,
    agency_identifier_system,
    legal_basis_citation,
)
from casebridge.errors import MappingError, Problem, RenderError

FORMAT = "1.5"
#: Written for a recipient that runs 1.4: no Anlass/Angabe Kinderschutz, Rechtsgrundlage,
#: Begruendung, Ort or Hilfeplan; their data goes into notes (a notification is refused).
FORMAT_14 = "1.4"
FORMATS = (FORMAT_14, FORMAT)
_ANLASS_OF = {purpose: code for code, (purpose, _) in ANLASS.items()}
_BEREICH_OF = {category: code for code, category in BEREICH.items()}


#: What the XSD bounds that canonical values may exceed: ``sa:Kurztext`` (1,000 characters)
#: holds names, case numbers, addresses and places, which the canonical model leaves unbounded;
#: ``sa:Text`` (100,000) holds notes, which add a heading to a canonical text of up to 100,000;
#: ``sa:Nummer`` is at most 100,000 (a plan with a higher goal number is written as a note).
#: The rendered tree is not validated against the XSD at run time (the property tests do that
#: for every message type), so these bounds are checked where a value is written; the XSD's
#: other constraints follow from the canonical model's own (ids, agency ids, codes), and dates
#: are written with four-digit years.
SHORT_MAX = 1000
TEXT_MAX = 100_000
NUMBER_MAX = 100_000
_SHORT_ELEMENTS = frozenset({"Aktenzeichen", "Rechtsgebiet", "Name", "Adresse", "Ort"})


def _too_long(where: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise RenderError(
            f"{where} is longer than the social office format allows",
            problems=[Problem(where, f"{len(value)} characters; the format allows {limit}")],
        )


def sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    """Append ``name`` (in the social office namespace) with text."""
    el = etree.SubElement(parent, P + name)
    if text is not None:
        if len(text) > SHORT_MAX:  # rare: only then is the limit looked up
            _too_long(name, text, SHORT_MAX if name in _SHORT_ELEMENTS else TEXT_MAX)
        el.text = text
    return el


def german(moment: datetime, where: str) -> str:
    """``DD.MM.YYYY HH:MM`` in Europe/Berlin local time (the format's resolution)."""
    try:
        local = moment.astimezone(BERLIN)
    except OverflowError:  # the last hours of year 9999 in UTC are year 10000 in Berlin
        raise RenderError("a time is out of range", problems=[
            Problem(where, "a time at the edge of year 9999 cannot be written")]) from None
    return f"{_date(local)} {local.hour:02d}:{local.minute:02d}"


one_line = prose.one_line


def display_name(identity: IdentityData) -> str | None:
    """ "Family, Given" (", Given" when only given names are known)."""
    name = identity.name
    if name is None:
        return None
    given = " ".join(name.given)
    if not given:
        return name.family
    return f"{name.family or ''}, {given}"


def _hint_fits(part: Part) -> bool:
    """An observation about the client (the child) fits an Angabe in Bereich Kinderschutz."""
    c = part.content
    return (isinstance(c, ChildProtectionData) and part.category == Category.CHILD_PROTECTION
            and c.text is not None and c.child is None and c.endangerment_assessed is None
            and c.assessed_on is None and part.entrusted_by is None)


def _date(value: date) -> str:
    # strftime's %Y writes years before 1000 with fewer than four digits
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def write_plan(parent: etree._Element, plan: SupportPlan) -> etree._Element:
    """Hilfeplan: each goal with its sub-goals, then the measures."""
    el = sub(parent, "Hilfeplan")
    if plan.as_of is not None:
        el.set("stand", _date(plan.as_of))
    for goal in plan.goals:
        nr = None if goal.number is None else str(goal.number)
        z = sub(el, "Ziel", goal.text)
        if nr is not None:
            z.set("nr", nr)
        for text in goal.sub_goals:
            t = sub(el, "Teilziel", text)
            if nr is not None:
                t.set("ziel", nr)
    for m in plan.measures:
        x = sub(el, "Massnahme", m.text)
        if m.responsible is not None:
            _too_long("Massnahme/@verantwortlich", m.responsible, SHORT_MAX)
        for key, value in (("ziel", None if m.goal is None else str(m.goal)),
                           ("verantwortlich", m.responsible),
                           ("bis", _date(m.due) if m.due else None)):
            if value is not None:
                x.set(key, value)
    return el


def _plan_fits(part: Part) -> bool:
    c = part.content
    if not isinstance(c, SupportPlanData) or part.entrusted_by is not None:
        return False
    numbers = [g.number for g in c.plan.goals] + [m.goal for m in c.plan.measures]
    if any(n is not None and n > NUMBER_MAX for n in numbers):
        return False  # sa:Nummer cannot hold it: the plan becomes a [Hilfeplan] note
    try:
        back = SupportPlanData.model_validate(
            plan_data(write_plan(etree.Element(P + "Scratch"), c.plan), "<render>"))
    except (MappingError, RenderError, ValueError):  # RenderError: a value too long for it
        return False
    return back == c


def _statement_fits(part: Part) -> bool:
    c = part.content
    if (not isinstance(c, Statement) or part.category not in _BEREICH_OF
            or part.category == Category.CHILD_PROTECTION):  # that Angabe is an observation
        return False
    el = etree.Element(P + "Angabe", bereich=_BEREICH_OF[part.category])
    el.text = c.text
    category, back = read_angabe(el, "<render>")
    # The label is the source format's heading; the Bereich replaces it.
    return bool(category == part.category and back.model_copy(update={"label": c.label}) == c)


def fallmitteilung(
    envelope: TransferEnvelope, extra_notes: list[str], version: str = FORMAT
) -> etree._Element:
    """The Fallmitteilung element of one envelope in format ``version`` (1.4 or 1.5)."""
    if envelope.message_type == MessageType.STATUS_UPDATE:
        raise RenderError(
            "status updates have no Fallmitteilung",
            problems=[
                Problem(
                    "message_type",
                    "the social office format has no status message (Anlass is "
                    "Zuweisung, Fallkonferenz or Hilfeplanung)",
                )
            ],
        )
    anlass = _ANLASS_OF.get(envelope.purpose)
    if anlass is None:
        raise RenderError(
            f"purpose {envelope.purpose} has no Anlass",
            problems=[
                Problem(
                    "purpose",
                    f"'{envelope.purpose}' has no Anlass in the social office format "
                    "(only referral, case_conference, joint_planning, child_protection)",
                )
            ],
        )
    claim = envelope.statutory
    problem = statutory.claim_problem(
        envelope.purpose, None if claim is None else claim.legal_basis,
        None if claim is None else claim.justification)
    if problem is None:
        problem = statutory.version_refusal(envelope, version, FORMAT, "Fallmitteilung")
    if problem is not None:
        raise RenderError(problem, problems=[Problem("statutory", problem)])
    v15 = version != FORMAT_14
    sender = envelope.sender
    notes: list[str] = []
    identity_part = next(
        (
            p
            for p in envelope.parts
            if isinstance(p.content, IdentityData) and p.entrusted_by is None
        ),
        None,
    )
    contact_part = next(
        (
            p
            for p in envelope.parts
            if isinstance(p.content, ContactData) and p.entrusted_by is None
        ),
        None,
    )
    identity = identity_part.content if identity_part else None
    assert identity is None or isinstance(identity, IdentityData)

    # Akte: the sender's own case file if it reads back exactly, else just the Aktenzeichen.
    akte_values: dict[str, str] | None = None
    case_part = None
    for part in envelope.parts:
        c = part.content
        if isinstance(c, CaseFileData) and c.case_file.agency == sender and case_part is None:
            values = {
                "Aktenzeichen": c.case_file.local_case_id,
                "Rechtsgebiet": c.case_file.legal_basis,
                "Hilfeart": c.case_file.help_type,
            }
            probe = etree.Element(P + "Akte")
            for element, value in values.items():
                if value is not None:
                    sub(probe, element, value)
            _, back = read_akte(probe, sender, "<render>")
            if back == (part.category, c):
                case_part = part
                akte_values = {k: v for k, v in values.items() if v is not None}
    own_akz = agency_identifier_system(sender, "aktenzeichen")
    if akte_values is None and identity is not None:
        number = next((i.value for i in identity.identifiers if i.system == own_akz), None)
        if number is not None:
            akte_values = {"Aktenzeichen": number}

    msg = etree.Element(P + "Fallmitteilung", id=envelope.message_id)
    sub(msg, "Zeitpunkt", german(envelope.created_at, "created_at"))
    sub(msg, "Von", sender)
    for recipient in envelope.recipients:
        sub(msg, "An", recipient)
    sub(msg, "Anlass", anlass)
    if claim is not None:
        sub(msg, "Rechtsgrundlage", legal_basis_citation(claim.legal_basis)).set(
            "schluessel", claim.legal_basis)
        sub(msg, "Begruendung", claim.justification)
    if envelope.conference and envelope.conference.scheduled_at:
        sub(msg, "Termin", german(envelope.conference.scheduled_at, "conference.scheduled_at"))
    place = None
    if envelope.conference and envelope.conference.location:
        if v15:
            sub(msg, "Ort", envelope.conference.location)
        else:
            place = prose.conference(None, envelope.conference.location)
    akte = None
    if akte_values:
        akte = sub(msg, "Akte")
        for element, value in akte_values.items():
            sub(akte, element, value)
    name = display_name(identity) if identity else None
    person = None
    if name is not None:
        person = sub(msg, "Person")
        sub(person, "Name", name)
        if identity and identity.birth_date:
            sub(person, "GebDatum", _date(identity.birth_date))
        if contact_part is not None:
            assert isinstance(contact_part.content, ContactData)
            if contact_part.content.addresses:
                sub(person, "Adresse", one_line(contact_part.content.addresses[0]))
    identifier = read_akte(akte, sender, "<render>")[0] if akte is not None else None
    read_identity, read_contact = read_person(person, identifier, "<render>")
    angaben = []
    plan_part: Part | None = None
    for part in envelope.parts:
        c = part.content
        if part is identity_part:
            if read_identity != c:
                notes.append(prose.note(part))
        elif part is contact_part:
            if read_contact != c:
                notes.append(prose.note(part))
        elif part is case_part:
            continue
        elif part.entrusted_by is None and (_statement_fits(part) or (v15 and _hint_fits(part))):
            angaben.append(part)
        elif v15 and plan_part is None and _plan_fits(part):
            plan_part = part
        elif (
            c.kind == "note"
            and part.category == Category.CASE_NOTES
            and c.written_on is None
            and c.author is None
        ):
            notes.append(prose.plain(c.text))
        else:
            notes.append(prose.note(part))
    if angaben:
        block = sub(msg, "Angaben")
        for part in angaben:
            assert isinstance(part.content, Statement | ChildProtectionData)  # checked above
            el = sub(block, "Angabe", part.content.text)
            el.set("bereich", _BEREICH_OF[part.category])
    if plan_part is not None:
        assert isinstance(plan_part.content, SupportPlanData)
        write_plan(msg, plan_part.content.plan)
    for text in [*notes, *([place] if place else []), *extra_notes]:
        sub(msg, "Vermerk", text)
    return msg


def build(envelope: TransferEnvelope, version: str = FORMAT) -> etree._Element:
    """The Fallmitteilung of ``envelope`` (header data without an element is routing metadata
    and is not written into a note, which is for people; the conference place is for people)."""
    return fallmitteilung(envelope, [], version)


def document(messages: list[etree._Element], version: str = FORMAT) -> etree._Element:
    """The Fallmitteilungen file holding ``messages``, declaring format ``version``."""
    root = etree.Element(P + "Fallmitteilungen", nsmap={None: NS})  # type: ignore[dict-item]
    root.set("format", version)
    root.extend(messages)
    return root
