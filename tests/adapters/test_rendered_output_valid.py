"""Every rendered message of every adapter is valid in its format: the guarantee run time skips.

The adapters do not validate what they render (a validated envelope in, output built from it;
see docs/adapters.md, "Rendering is not validated again"). These property tests carry that
guarantee instead: every message type (referral, case conference, plan update, case export,
status update, and the 2026-12 child-protection notification with its legal basis,
observations, conference place and plan sub-goals) is rendered by every adapter in every
interface version it writes, and what comes out is validated with the format's own definition:

- jobcenter (2.3, 2.4): ``jobcenter.xsd``; sozialamt (1.4, 1.5): ``sozialamt.xsd`` (lxml/libxml2);
- jugendamt: ``fallakte-3.schema.json`` with ``jsonschema`` (Draft 2020-12, the reference
  implementation) and with ``jsonschema-rs`` checking formats (what casebridge's reader uses);
- provider-fhir: fhir.resources' FHIR R4 models (``fhir.resources.R4B``: Bundle, Task, and
  through them every entry resource) for JSON, and the XML form read back by the same models.

The schemas are the copies shipped in the package: ../shared/interfaces holds samples only (no
XSD or JSON Schema of its own). A render may refuse (``RenderError``) where the documented rules
say so, or where a value exceeds a bound of the format (the explicit checks that replace run-time
validation); it must never produce output its format rejects. The envelopes include hostile
values too: names longer than a format's bounds, offsets the formats do not take, years before
1000, plan numbers beyond a format's maximum, texts at the canonical limit.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.adapters.jobcenter import SCHEMA as JC_XSD
from casebridge.adapters.jugendamt.validate import schema as jugendamt_schema
from casebridge.adapters.provider_fhir import ProviderFhirAdapter
from casebridge.adapters.sozialamt import SCHEMA as SA_XSD
from casebridge.canonical_model import (
    Address,
    Category,
    ChildProtectionData,
    ConferenceInfo,
    ContactData,
    ContactPoint,
    Goal,
    HouseholdData,
    HouseholdMember,
    Identifier,
    IdentityData,
    Measure,
    MessageType,
    Note,
    Part,
    Person,
    PersonName,
    Purpose,
    StatusInfo,
    StatutoryClaim,
    SupportPlan,
    SupportPlanData,
    TransferEnvelope,
)
from casebridge.canonical_model.types import TEXT_MAX
from casebridge.errors import RenderError
from tests.strategies import addresses, agency_ids, dates, message_ids, parts, text

# --- the formats' own definitions ------------------------------------------------------------

_XSD = {path: etree.XMLSchema(etree.parse(str(path))) for path in (JC_XSD, SA_XSD)}
_JSON_SCHEMA = jsonschema.Draft202012Validator(jugendamt_schema())
_JSON_SCHEMA_RS = jsonschema_rs.validator_for(jugendamt_schema(), validate_formats=True)
_FHIR = {"Bundle": Bundle, "Task": Task}


def _valid_xml(path: Any, out: bytes) -> None:
    schema = _XSD[path]
    assert schema.validate(etree.fromstring(out)), [e.message for e in schema.error_log]


def _valid_jugendamt(out: bytes) -> None:
    doc = json.loads(out)
    _JSON_SCHEMA.validate(doc)
    assert _JSON_SCHEMA_RS.is_valid(doc), [str(e) for e in _JSON_SCHEMA_RS.iter_errors(doc)]


def _valid_fhir_json(out: bytes) -> None:
    kind = json.loads(out)["resourceType"]
    _FHIR[kind].model_validate_json(out)


def _valid_fhir_xml(out: bytes) -> None:
    kind = etree.QName(etree.fromstring(out)).localname
    _FHIR[kind].model_validate_xml(out)


FHIR_XML = ProviderFhirAdapter(output="xml")
#: (system, interface version, renderer, validator): every version every adapter writes.
TARGETS = [
    ("jobcenter", "2.3", lambda e: get_adapter("jobcenter").render_version(e, "2.3"),
     lambda out: _valid_xml(JC_XSD, out)),
    ("jobcenter", "2.4", lambda e: get_adapter("jobcenter").render_version(e, "2.4"),
     lambda out: _valid_xml(JC_XSD, out)),
    ("sozialamt", "1.4", lambda e: get_adapter("sozialamt").render_version(e, "1.4"),
     lambda out: _valid_xml(SA_XSD, out)),
    ("sozialamt", "1.5", lambda e: get_adapter("sozialamt").render_version(e, "1.5"),
     lambda out: _valid_xml(SA_XSD, out)),
    ("jugendamt", None, lambda e: get_adapter("jugendamt").render_version(e, None),
     _valid_jugendamt),
    ("provider-fhir", "json", lambda e: get_adapter("provider-fhir").render_version(e, None),
     _valid_fhir_json),
    ("provider-fhir", "xml", FHIR_XML.render, _valid_fhir_xml),
]
_IDS = [f"{t[0]}-{t[1]}" for t in TARGETS]

# --- envelopes of every message type ------------------------------------------------------------

BASES = ["sgb-viii-8a", "sgb-viii-8a-4", "kkg-4", "kkg-4-3"]
#: (purpose, message type) of every envelope shape the adapters render, status updates aside.
SHAPES = [
    (Purpose.REFERRAL, MessageType.REFERRAL),
    (Purpose.CASE_CONFERENCE, MessageType.CASE_CONFERENCE),
    (Purpose.JOINT_PLANNING, MessageType.PLAN_UPDATE),
    (Purpose.REFERRAL, MessageType.CASE_EXPORT),
    (Purpose.CHILD_PROTECTION, MessageType.CASE_EXPORT),
]
ORDINARY_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]),
)
#: Offsets the canonical model takes and the formats do not (beyond ±14:00, seconds).
ODD_OFFSETS = st.sampled_from([
    timezone(timedelta(hours=15)), timezone(-timedelta(hours=23, minutes=59)),
    timezone(timedelta(hours=1, seconds=30)), timezone(timedelta(minutes=5, microseconds=7)),
])
EDGE_MOMENTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1),
                            timezones=ODD_OFFSETS | st.just(UTC))
EDGE_DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
#: Values at and beyond the bounds a format sets (500 / 1,000 characters, 100,000).
long_name = st.integers(480, 1100).map(lambda n: "Ä" * n)
full_text = st.just("x" * TEXT_MAX)


def _name(draw: st.DrawFn, edge: bool) -> PersonName:
    family = draw(long_name | text) if edge else draw(text)
    return PersonName(family=family, given=draw(st.lists(text, max_size=2)))


@st.composite
def notification_parts(draw: st.DrawFn, born: date, edge: bool) -> list[Part]:
    """The 2026-12 additions: observations (about the client or a child of the household), a
    plan with sub-goals, an assessment."""
    out: list[Part] = []
    child = Person(name=_name(draw, edge), birth_date=born)
    if draw(st.booleans()):
        out.append(Part(id="hh", category=Category.HOUSEHOLD, content=HouseholdData(members=[
            HouseholdMember(role="child", person=child),
            HouseholdMember(role="mother", role_label=draw(st.none() | st.just("Mutter")),
                            has_custody=True, person=Person(name=_name(draw, edge)))])))
        about: Person | None = child if draw(st.booleans()) else None
    else:
        about = None
    for i in range(draw(st.integers(0, 3))):
        out.append(Part(id=f"obs{i}", category=Category.CHILD_PROTECTION,
                        content=ChildProtectionData(
                            text=draw(text | full_text) if edge else draw(text),
                            child=about)))
    if draw(st.booleans()):
        out.append(Part(id="assess", category=Category.CHILD_PROTECTION,
                        content=ChildProtectionData(endangerment_assessed=draw(st.booleans()),
                                                    assessed_on=draw(st.none() | dates))))
    if draw(st.booleans()):
        numbers = st.integers(1, 20) | st.integers(99_990, 10**25) if edge else st.integers(1, 20)
        out.append(Part(id="plan", category=Category.SUPPORT_PLAN, content=SupportPlanData(
            plan=SupportPlan(
                as_of=draw(st.none() | (EDGE_DATES if edge else dates)),
                goals=draw(st.lists(st.builds(Goal, number=st.none() | numbers, text=text,
                                              sub_goals=st.lists(text, max_size=3)),
                                    max_size=3)),
                measures=draw(st.lists(st.builds(
                    Measure, goal=st.none() | numbers, text=text,
                    responsible=st.none() | (long_name if edge else text),
                    due=st.none() | dates), max_size=3))))))
    return out


@st.composite
def messages(draw: st.DrawFn, edge: bool = False) -> TransferEnvelope:
    """An envelope of any shape but a status update, about a named client (a minor, or an adult
    with a child in the household), with parts of every category."""
    sender = draw(agency_ids)
    recipients = draw(st.lists(agency_ids.filter(lambda a: a != sender), min_size=1,
                               max_size=3, unique=True))
    purpose, mtype = draw(st.sampled_from(SHAPES))
    created = draw(EDGE_MOMENTS if edge else ORDINARY_MOMENTS)
    on = created.date()
    minor = date(max(on.year - draw(st.integers(1, 16)), 1), 6, 1)
    born = date(max(on.year - 40, 1), 1, 1) if draw(st.integers(0, 3)) == 3 else minor
    identity = Part(id="client", category=Category.IDENTITY, content=IdentityData(
        identifiers=[Identifier(system=f"urn:casebridge:id:{sender}:kundennummer",
                                value=draw(long_name) if edge and draw(st.booleans())
                                else "962D123456")],
        name=_name(draw, edge),
        birth_date=draw(EDGE_DATES) if edge and draw(st.booleans()) else born))
    body = [draw(parts(f"p{i}")) for i in range(draw(st.integers(0, 4)))]
    extra = draw(notification_parts(born=minor, edge=edge))
    statutory = None
    if purpose is Purpose.CHILD_PROTECTION:
        statutory = StatutoryClaim(legal_basis=draw(st.sampled_from(BASES)),
                                   justification=draw(text | full_text) if edge else draw(text))
    conference = None
    if purpose is Purpose.CASE_CONFERENCE or draw(st.booleans()):
        conference = ConferenceInfo(
            scheduled_at=draw(st.none() | (EDGE_MOMENTS if edge else ORDINARY_MOMENTS)),
            location=draw(st.none() | (long_name | text if edge else text)))
    return TransferEnvelope(
        message_id=draw(message_ids), correlation_id=draw(st.none() | message_ids),
        message_type=mtype, sender=sender, recipients=recipients, purpose=purpose,
        created_at=created, service=draw(st.none() | text), conference=conference,
        statutory=statutory, parts=[identity, *extra, *body],
    )


@st.composite
def status_updates(draw: st.DrawFn, edge: bool = False) -> TransferEnvelope:
    """A provider's status update on a referral (to the job centre that made it)."""
    sender, recipient = draw(st.lists(agency_ids, min_size=2, max_size=2, unique=True))
    body: list[Part] = []
    if draw(st.booleans()):
        value = draw(long_name) if edge and draw(st.booleans()) else "962D123456"
        body.append(Part(id="identity", category=Category.IDENTITY, content=IdentityData(
            identifiers=[Identifier(system=f"urn:casebridge:id:{recipient}:kundennummer",
                                    value=value)])))
    for i in range(draw(st.integers(0, 3))):
        body.append(Part(id=f"n{i}", category=Category.CASE_NOTES,
                         content=Note(text=draw(text | full_text) if edge else draw(text))))
    body += [draw(parts(f"p{i}")) for i in range(draw(st.integers(0, 3)))]
    status = draw(st.sampled_from(["received", "accepted", "rejected", "in_progress",
                                   "completed", "cancelled", "failed"]))
    return TransferEnvelope(
        message_id=draw(message_ids), correlation_id=draw(message_ids),
        message_type=MessageType.STATUS_UPDATE, sender=sender, recipients=[recipient],
        purpose=draw(st.sampled_from([Purpose.SERVICE_DELIVERY, Purpose.REFERRAL])),
        created_at=draw(EDGE_MOMENTS if edge else ORDINARY_MOMENTS),
        status=StatusInfo(status=status, effective_on=draw(st.none() | dates)), parts=body)


# --- when a render may refuse -------------------------------------------------------------------

_NOT_XML = ("\ufffe", "\uffff")


def _may_refuse(system: str, version: str | None, env: TransferEnvelope, xml_text: bool) -> bool:
    """Whether the documented rules (docs/adapters.md) let ``system`` refuse ``env``: a message
    type or purpose the format has no form for, an older version for a notification, text XML
    1.0 cannot hold, the youth office's minor client."""
    notification = env.purpose is Purpose.CHILD_PROTECTION
    if system == "jobcenter":
        return xml_text or (notification and version == "2.3")
    if system == "sozialamt":
        return xml_text or env.message_type is MessageType.STATUS_UPDATE or (
            notification and version == "1.4")
    if system == "jugendamt":
        # refused: status updates; an adult client (fall.kind is always a minor) with no named
        # child in the message, whatever the birth date says
        return env.message_type is MessageType.STATUS_UPDATE or _adult(env)
    # provider-fhir: a notification's Patient is a minor; FHIR XML cannot hold those characters
    return (xml_text and version == "xml") or (notification and _adult(env))


def _adult(env: TransferEnvelope) -> bool:
    identity = next(p.content for p in env.parts if isinstance(p.content, IdentityData))
    born = identity.birth_date
    on = env.created_at.date()
    return born is None or (on.year - born.year - ((on.month, on.day) < (born.month, born.day))
                            >= 18)


def _render_and_validate(env: TransferEnvelope, edge: bool) -> list[str]:
    """Render ``env`` for every target; return the targets that refused (validated the rest)."""
    refused = []
    xml_text = any(c in env.model_dump_json() for c in _NOT_XML)
    for (system, version, render, validate), name in zip(TARGETS, _IDS, strict=True):
        try:
            out = render(env)
        except RenderError as exc:
            assert exc.message
            assert edge or _may_refuse(system, version, env, xml_text), (name, exc.lines())
            refused.append(name)
            continue
        validate(out)
    return refused


# --- the properties ------------------------------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(messages())
def test_every_message_type_renders_valid_in_every_format(env: TransferEnvelope) -> None:
    _render_and_validate(env, edge=False)


@SETTINGS
@given(status_updates())
def test_status_updates_render_valid_where_the_format_has_them(env: TransferEnvelope) -> None:
    refused = _render_and_validate(env, edge=False)
    # the job centre's Rueckmeldung and the provider's Task carry status updates
    assert not {"jobcenter-2.3", "jobcenter-2.4", "provider-fhir-json"} & set(refused)


@SETTINGS
@given(messages(edge=True) | status_updates(edge=True))
def test_values_beyond_a_formats_bounds_are_refused_never_rendered_invalid(
        env: TransferEnvelope) -> None:
    _render_and_validate(env, edge=True)


@pytest.mark.parametrize(("system", "version", "render", "validate"), TARGETS, ids=_IDS)
def test_a_notification_with_every_2026_12_field_renders_valid(
        system: str, version: str | None, render: Any, validate: Any) -> None:
    created = datetime(2026, 12, 3, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    child = Person(name=PersonName(family="Yılmaz", given=["Emre"]), birth_date=date(2015, 4, 2))
    env = TransferEnvelope(
        message_id="JC-KS-1", message_type="case_export", purpose="child_protection",
        sender="jobcenter-duisburg", recipients=["jugendamt-duisburg"], created_at=created,
        statutory=StatutoryClaim(legal_basis="kkg-4", justification="Kind mehrfach allein."),
        conference=ConferenceInfo(scheduled_at=created + timedelta(days=2),
                                  location="Jugendamt, Raum 3"),
        parts=[
            Part(id="client", category="identity", content=IdentityData(
                name=PersonName(family="Yılmaz", given=["Ayşe"]), birth_date=date(1990, 1, 1),
                sex="female")),
            Part(id="hh", category="household", content=HouseholdData(members=[
                HouseholdMember(role="child", person=child)])),
            Part(id="obs", category="child_protection", content=ChildProtectionData(
                text="Kind wirkt verwahrlost.", child=child)),
            Part(id="plan", category="support_plan", content=SupportPlanData(plan=SupportPlan(
                as_of=date(2026, 11, 5),
                goals=[Goal(number=1, text="Regelmäßiger Schulbesuch",
                            sub_goals=["Wecker stellen"])],
                measures=[Measure(goal=1, text="Gespräch mit der Schule",
                                  responsible="Kundin", due=date(2026, 12, 15))]))),
        ])
    try:
        out = render(env)
    except RenderError:
        assert (system, version) in {("jobcenter", "2.3"), ("sozialamt", "1.4")}
        return
    validate(out)


def test_an_offset_the_formats_do_not_take_is_written_as_the_same_instant_in_utc() -> None:
    odd = datetime(2026, 12, 3, 9, 30, tzinfo=timezone(timedelta(hours=15)))
    env = TransferEnvelope(
        message_id="SB-1", correlation_id="JC-1", message_type="status_update",
        purpose="service_delivery", sender="suchtberatung-du", recipients=["jobcenter-du"],
        created_at=odd, status=StatusInfo(status="accepted"))
    for system in ("jobcenter", "provider-fhir"):
        adapter = get_adapter(system)
        out = adapter.render(env)
        assert b"2026-12-02T18:30:00+00:00" in out
        [back] = adapter.parse(out)
        assert back.created_at == odd


# --- the FHIR notification's household: decided without a fhir.resources read-back -----------

def _related_by_read_back(member: HouseholdMember, url: str) -> dict[str, Any] | None:
    """How the previous release decided: build the RelatedPerson, validate it with
    fhir.resources, read it back with the provider reader, compare."""
    from types import SimpleNamespace

    from fhir.resources.R4B.relatedperson import RelatedPerson

    from casebridge.adapters.provider_fhir import elements
    from casebridge.adapters.provider_fhir.elements import Bad
    from casebridge.adapters.provider_fhir.notification import (
        _RELATED,
        _ROLE_CODE,
        RELATIONSHIP,
        ROLE_CODE_SYSTEM,
        _member,
    )

    code = _ROLE_CODE.get(member.role)
    if code is None or member.has_custody is not True or (
            member.role_label not in (None, RELATIONSHIP[code][1])):
        return None
    person = member.person
    data = elements.patient(
        IdentityData(name=person.name, birth_date=person.birth_date, sex=person.sex,
                     identifiers=person.identifiers),
        ContactData(addresses=person.addresses, telecom=person.telecom), ("identity", "contact"))
    res = {"resourceType": "RelatedPerson", **{k: v for k, v in data.items() if k in _RELATED},
           "patient": {"reference": url},
           "relationship": [{"coding": [{"system": ROLE_CODE_SYSTEM, "code": code}]}]}
    try:
        back = _member(RelatedPerson.model_validate(res), "/", url, SimpleNamespace(id=None))
    except (Bad, ValueError):
        return None
    same = HouseholdMember.model_validate(back) == member.model_copy(
        update={"role_label": RELATIONSHIP[code][1]})
    return res if same else None


_contact_points = st.builds(
    ContactPoint,
    system=st.sampled_from(["phone", "email", "fax", "sms", "url", "other"]), value=text)
_members = st.builds(
    HouseholdMember,
    role=st.sampled_from(["mother", "father", "parent", "legal_guardian", "child", "other"]),
    role_label=st.none() | st.sampled_from(["Mutter", "Vater", "Elternteil", "Vormund", "Oma"]),
    has_custody=st.booleans(),
    person=st.builds(
        Person, name=st.none() | st.builds(PersonName, family=st.none() | text,
                                           given=st.lists(text, min_size=1, max_size=3),
                                           birth_name=st.none() | text),
        birth_date=st.none() | dates,
        sex=st.none() | st.sampled_from(["female", "male", "diverse", "unknown"]),
        identifiers=st.lists(st.builds(Identifier, system=st.just("urn:casebridge:client"),
                                       value=text), max_size=2),
        addresses=st.lists(addresses | st.builds(Address,
                                                 lines=st.lists(text, min_size=1, max_size=2),
                                                 text=st.none() | text), max_size=2),
        telecom=st.lists(_contact_points, max_size=2)),
)


@settings(max_examples=200, deadline=None)
@given(_members)
def test_a_household_member_becomes_a_related_person_exactly_when_it_reads_back(
        member: HouseholdMember) -> None:
    from casebridge.adapters.provider_fhir.notification import _related

    url = "urn:uuid:5c1e8f0e-3b9f-4f55-9d1c-6a0b7c2f4e11"
    assert _related(member, url) == _related_by_read_back(member, url)


# --- rendered JSON is written by pydantic-core, byte for byte what json.dumps wrote --------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=8), inner,
                      max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_dump_json_writes_what_json_dumps_wrote(value: Any) -> None:
    from casebridge.adapters.json_input import dump_json

    assert dump_json(value) == json.dumps(value, ensure_ascii=False,
                                          separators=(",", ":")).encode("utf-8")
    assert dump_json(value, indent=2) == json.dumps(value, ensure_ascii=False,
                                                    indent=2).encode("utf-8")


def test_a_lone_surrogate_is_refused_with_a_render_error() -> None:
    from casebridge.adapters.json_input import dump_json

    with pytest.raises(RenderError):
        dump_json({"text": "a\udc80b"})
