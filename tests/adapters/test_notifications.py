"""The interface additions of 2026-12 in every system: statutory notifications (§ 8a SGB VIII,
§ 4 KKG), conference and plan fields; valid and hostile inputs."""

from __future__ import annotations

import json
from datetime import date

import pytest

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Category, ChildProtectionData, Purpose
from casebridge.errors import AdapterError, MappingError, RenderError
from casebridge.gateway.demo import sample_bytes

JC, SA, JA, FHIR = (get_adapter(s) for s in ("jobcenter", "sozialamt", "jugendamt",
                                             "provider-fhir"))
KS_XML = sample_bytes("jobcenter/kinderschutz-001.xml").decode()
KS_FHIR = sample_bytes("provider-fhir/kinderschutz-bundle-001.json").decode()


def _jc(**replace: str) -> bytes:
    text = KS_XML
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


def _lines(exc: pytest.ExceptionInfo[AdapterError]) -> str:
    return "\n".join(exc.value.lines())


# --- job centre 2.4 ----------------------------------------------------------------------------


def test_job_centre_notification_names_basis_justification_and_the_child() -> None:
    [env] = JC.parse(sample_bytes("jobcenter/kinderschutz-001.xml"))
    assert (env.purpose, env.statutory is not None) == (Purpose.CHILD_PROTECTION, True)
    assert env.statutory and env.statutory.legal_basis == "kkg-4"
    assert env.statutory.justification.startswith("Beim Termin am 02.12.2026")
    [hint] = [p for p in env.parts if p.category == Category.CHILD_PROTECTION]
    assert isinstance(hint.content, ChildProtectionData)
    assert hint.content.child is not None and hint.content.child.birth_date == date(2012, 2, 3)
    assert JC.parse(JC.render(env)) == [env]


@pytest.mark.parametrize(("replace", "message"), [
    ({"<jc:Begruendung>": "<jc:Vermerk>", "</jc:Begruendung>": "</jc:Vermerk>"}, None),
    ({'<jc:Rechtsgrundlage schluessel="kkg-4">§ 4 Abs. 3 KKG</jc:Rechtsgrundlage>': ""},
     "needs its legal basis"),
    ({'betrifft="1"': 'betrifft="2"'}, "names member 2, but the Bedarfsgemeinschaft has 1"),
    ({"<jc:Geburtsdatum>2012-02-03</jc:Geburtsdatum>":
      "<jc:Geburtsdatum>2001-02-03</jc:Geburtsdatum>"}, "who is not a minor"),
    ({'schluessel="KS"': 'schluessel="ZUW"'}, "belong to a child-protection notification only"),
    ({"</jc:Begruendung>": "</jc:Begruendung><jc:Begruendung>x</jc:Begruendung>"},
     "may appear once"),
    ({'schluessel="kkg-4"': 'schluessel="KKG 4"'}, None),
])
def test_job_centre_hostile_notifications(replace: dict[str, str], message: str | None) -> None:
    with pytest.raises(AdapterError) as exc:
        JC.parse(_jc(**replace), source="ks.xml")
    text = _lines(exc)
    assert text.startswith("ks.xml:line")
    if message is not None:
        assert message in text
    assert "alkoholisiert" not in text  # problems never quote the message's data


def test_missing_justification_says_so() -> None:
    raw = _jc(**{"<jc:Begruendung>": "<!-- ", "</jc:Begruendung>": " -->"})
    with pytest.raises(MappingError) as exc:
        JC.parse(raw, source="ks.xml")
    assert "needs a written justification" in _lines(exc)


def test_job_centre_conference_and_sub_goals() -> None:
    raw = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    raw = raw.replace('schluessel="ZUW">', 'schluessel="FK">').replace(
        "</jc:Zweck>",
        '</jc:Zweck><jc:Konferenz termin="2026-12-10T09:30:00+01:00" ort="Rathaus, Raum 3"/>')
    raw = raw.replace('<jc:Ziel nr="2">', '<jc:Teilziel ziel="1">Termin beim Hausarzt</jc:Teilziel>'
                      '<jc:Ziel nr="2">')
    [env] = JC.parse(raw.encode())
    assert env.conference and env.conference.location == "Rathaus, Raum 3"
    plan = next(p.content.plan for p in env.parts if p.content.kind == "support_plan")
    assert plan.goals[0].sub_goals == ["Termin beim Hausarzt"]
    rendered = JC.render(env).decode()
    assert "casebridge-carrier" not in rendered and "<jc:Teilziel" in rendered
    assert JC.parse(rendered.encode()) == [env]
    bad = raw.replace('<jc:Teilziel ziel="1">', '<jc:Teilziel ziel="7">')
    with pytest.raises(MappingError, match="invalid value"):
        JC.parse(bad.encode())


def test_a_claim_on_another_purpose_cannot_be_rendered() -> None:
    [env] = JC.parse(sample_bytes("jobcenter/kinderschutz-001.xml"))
    with pytest.raises(RenderError, match="child-protection notification only"):
        JC.render(env.model_copy(update={"purpose": Purpose.REFERRAL}))
    with pytest.raises(RenderError, match="needs its legal basis"):
        JC.render(env.model_copy(update={"statutory": None}))


# --- social office 1.5 -------------------------------------------------------------------------

SA_KS = """<?xml version="1.0" encoding="ISO-8859-1"?>
<Fallmitteilungen xmlns="urn:de:sozialamt:fallmitteilung:1" format="1.5">
  <Fallmitteilung id="SA-DU-50-2026-0999">
    <Zeitpunkt>04.12.2026 10:02</Zeitpunkt>
    <Von>sozialamt-duisburg</Von>
    <An>jugendamt-duisburg</An>
    <Anlass>Kinderschutz</Anlass>
    <Rechtsgrundlage schluessel="sgb-viii-8a">§ 8a SGB VIII</Rechtsgrundlage>
    <Begruendung>Gewichtige Anhaltspunkte beim Hausbesuch.</Begruendung>
    <Person><Name>Yilmaz, Emre</Name><GebDatum>03.02.2012</GebDatum></Person>
    <Angaben><Angabe bereich="Kinderschutz">Kind nachts allein.</Angabe></Angaben>
    <Hilfeplan stand="15.10.2026"><Ziel nr="1">Schulbesuch</Ziel>
      <Teilziel ziel="1">Fehlzeiten unter 5 Tage</Teilziel>
      <Massnahme ziel="1" verantwortlich="Träger" bis="28.02.2027">Gespräch</Massnahme>
    </Hilfeplan>
  </Fallmitteilung>
</Fallmitteilungen>"""


def test_social_office_notification_and_plan() -> None:
    [env] = SA.parse(SA_KS.encode("latin-1"))
    assert env.statutory and env.statutory.legal_basis == "sgb-viii-8a"
    kinds = {p.category: p.content.kind for p in env.parts}
    assert kinds[Category.CHILD_PROTECTION] == "child_protection"
    plan = next(p.content.plan for p in env.parts if p.content.kind == "support_plan")
    assert plan.goals[0].sub_goals == ["Fehlzeiten unter 5 Tage"]
    assert plan.measures[0].due == date(2027, 2, 28)
    assert SA.parse(SA.render(env)) == [env]


@pytest.mark.parametrize(("old", "new", "message"), [
    ("<Begruendung>Gewichtige Anhaltspunkte beim Hausbesuch.</Begruendung>", "",
     "needs a written justification"),
    ("<Anlass>Kinderschutz</Anlass>", "<Anlass>Zuweisung</Anlass>",
     "child-protection notification only"),
    ('<Teilziel ziel="1">', '<Teilziel ziel="4">', "names no goal"),
    ('bis="28.02.2027"', 'bis="30.02.2027"', "not a valid date"),
])
def test_social_office_hostile_notifications(old: str, new: str, message: str) -> None:
    with pytest.raises(MappingError) as exc:
        SA.parse(SA_KS.replace(old, new).encode("latin-1"), source="sa.xml")
    assert message in _lines(exc)


# --- provider FHIR -----------------------------------------------------------------------------


def test_provider_notification_bundle() -> None:
    [env] = FHIR.parse(KS_FHIR.encode())
    assert (env.sender, env.recipients) == ("suchtberatung-diakonie-du", ["jugendamt-duisburg"])
    assert env.statutory and env.statutory.justification.startswith("Die Mutter berichtete")
    household = next(p.content for p in env.parts if p.content.kind == "household")
    assert [(m.role, m.role_label) for m in household.members] == [("mother", "Mutter")]
    assert [p.category for p in env.parts if p.content.kind == "child_protection"] == [
        Category.CHILD_PROTECTION]


def _fhir(mutate) -> bytes:  # type: ignore[no-untyped-def]
    doc = json.loads(KS_FHIR)
    mutate(doc)
    return json.dumps(doc).encode()


def _comm(doc: dict) -> dict:  # type: ignore[type-arg]
    return doc["entry"][2]["resource"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: _comm(d)["reasonCode"][0].pop("text"), "needs a written justification"),
    (lambda d: _comm(d).pop("reasonCode"), "needs its legal basis and a written justification"),
    (lambda d: _comm(d)["reasonCode"][0]["coding"][0].update(system="urn:other"),
     "only a urn:casebridge:legal-basis code"),
    (lambda d: d["entry"][1]["resource"]["patient"].update(reference="urn:uuid:nowhere"),
     "does not refer to the bundle's Patient"),
    (lambda d: d["entry"][0]["resource"].update(birthDate="1990-01-01"), "must be a minor"),
    (lambda d: _comm(d)["category"][0]["coding"][0].update(code="referral"),
     "child-protection notification only"),
])
def test_provider_hostile_notifications(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MappingError) as exc:
        FHIR.parse(_fhir(mutate), source="ks.json")
    assert message in _lines(exc)


# --- youth office ------------------------------------------------------------------------------


def _fall(**top: object) -> bytes:
    doc = json.loads(sample_bytes("jugendamt/fall-001.json"))
    doc.update(top)
    return json.dumps(doc).encode()


def test_youth_office_notification_and_conference() -> None:
    raw = _fall(zweck="kinderschutz",
                rechtsgrundlage={"code": "sgb-viii-8a-4", "begruendung": "Schutzauftrag."},
                konferenz={"termin": "2026-12-03T09:30:00+01:00", "ort": "Jugendamt"})
    doc = json.loads(raw)
    doc["fall"]["kinderschutz"]["hinweise"] = [{"datum": "2026-12-01", "text": "Beobachtung."}]
    [env] = JA.parse(json.dumps(doc).encode())
    assert env.statutory and env.statutory.legal_basis == "sgb-viii-8a-4"
    assert env.conference and env.conference.location == "Jugendamt"
    hints = [p for p in env.parts if p.id == "hinweis-1"]
    assert hints and hints[0].category == Category.CHILD_PROTECTION
    again = json.loads(JA.render(env))
    assert again["rechtsgrundlage"] == {"code": "sgb-viii-8a-4", "begruendung": "Schutzauftrag."}
    assert again["konferenz"]["ort"] == "Jugendamt"
    assert JA.parse(JA.render(env)) == [env]


def test_youth_office_notification_without_legal_basis_is_refused() -> None:
    with pytest.raises(MappingError) as exc:
        JA.parse(_fall(zweck="kinderschutz"), source="fall.json")
    assert _lines(exc) == ("fall.json:/rechtsgrundlage: a child-protection notification needs "
                           "its legal basis and a written justification (§ 8a SGB VIII, § 4 KKG)")


def test_job_centre_notification_reaches_the_youth_office_in_its_own_format() -> None:
    [env] = JC.parse(sample_bytes("jobcenter/kinderschutz-001.xml"))
    doc = json.loads(JA.render(env))
    assert doc["zweck"] == "kinderschutz" and doc["rechtsgrundlage"]["code"] == "kkg-4"
    assert doc["fall"]["kind"]["vorname"] == "Emre"
    assert doc["fall"]["sorgeberechtigte"][0]["rolle"] == "Mutter"
    [back] = JA.parse(json.dumps(doc).encode())
    assert back.statutory == env.statutory
