"""Each recipient gets the newest interface version it declares (interface README, 2026-12).

The older versions' schemas are derived from the shipped XSDs by deleting what the newer version
added (the elements and codes the XSD comments mark as 2.4 / 1.5), so a 2.3 or 1.4 document is
checked against what a recipient on that version validates with, not against the union.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.adapters.base import Adapter
from casebridge.adapters.jobcenter import SCHEMA as JC_XSD
from casebridge.adapters.sozialamt import SCHEMA as SA_XSD
from casebridge.canonical_model import AgencyKind, Category, Purpose, TransferEnvelope
from casebridge.errors import RenderError
from casebridge.gateway.demo import sample_bytes

XS = "{http://www.w3.org/2001/XMLSchema}"
JC, SA, JA = (get_adapter(s) for s in ("jobcenter", "sozialamt", "jugendamt"))
#: What 2.4 / 1.5 added: element names and enumeration codes.
ADDED_24 = {"Konferenz", "Rechtsgrundlage", "Begruendung", "Teilziel", "Gefaehrdungshinweis", "KS"}
ADDED_15 = {"Rechtsgrundlage", "Begruendung", "Ort", "Hilfeplan", "Kinderschutz"}


def older_schema(path: Path, added: set[str]) -> etree.XMLSchema:
    """The XSD at ``path`` without the elements and codes of the newer version."""
    tree = etree.parse(str(path))
    for el in list(tree.iter(XS + "element", XS + "enumeration")):
        if el.get("name") in added or el.get("value") in added:
            el.getparent().remove(el)
    for choice in list(tree.iter(XS + "choice")):
        if len(choice) == 0 or all(not isinstance(c.tag, str) for c in choice):
            choice.getparent().remove(choice)
    return etree.XMLSchema(tree)


JC_23 = older_schema(JC_XSD, ADDED_24)
SA_14 = older_schema(SA_XSD, ADDED_15)


def _youth_office_plan(recipient: str, *, notification: bool = False) -> TransferEnvelope:
    """The youth office's case with a plan with sub-goals, a conference, an observation."""
    doc = json.loads(sample_bytes("jugendamt/fall-001.json"))
    doc["empfaenger"] = [recipient]
    doc["konferenz"] = {"termin": "2026-12-03T09:30:00+01:00", "ort": "Jugendamt, Raum 4"}
    doc["fall"]["kinderschutz"]["hinweise"] = [{"datum": "2026-12-01", "text": "Beobachtung."}]
    if notification:
        doc["zweck"] = "kinderschutz"
        doc["rechtsgrundlage"] = {"code": "sgb-viii-8a-4", "begruendung": "Schutzauftrag."}
    [env] = JA.parse(json.dumps(doc).encode())
    return env


def _categories(env: TransferEnvelope) -> Counter[Category]:
    return Counter(p.category for p in env.parts)


def _added_in(doc: bytes, added: set[str]) -> set[str]:
    root = etree.fromstring(doc)
    names = {etree.QName(el).localname for el in root.iter() if isinstance(el.tag, str)}
    codes = {v for el in root.iter() for v in [el.text, *el.attrib.values()] if v}
    return (names | codes) & added


def test_the_derived_older_schemas_refuse_the_newer_elements() -> None:
    ks = etree.fromstring(sample_bytes("jobcenter/kinderschutz-001.xml"))
    assert etree.XMLSchema(etree.parse(str(JC_XSD))).validate(ks)
    assert not JC_23.validate(ks)
    assert JC_23.validate(etree.fromstring(sample_bytes("jobcenter/zuweisung-001.xml")))
    assert SA_14.validate(etree.fromstring(sample_bytes("sozialamt/fallmitteilung-001.xml")))


@pytest.mark.parametrize(("version", "valid_23"), [("2.3", True), ("2.4", False), (None, False)])
def test_job_centre_writes_the_version_the_recipient_runs(
    version: str | None, valid_23: bool
) -> None:
    env = _youth_office_plan("jobcenter-duisburg")
    doc = JC.render_version(env, version)
    root = etree.fromstring(doc)
    assert root.get("version") == (version or "2.4")
    assert etree.XMLSchema(etree.parse(str(JC_XSD))).validate(root)
    assert JC_23.validate(root) is valid_23
    [back] = JC.parse(doc)
    if version == "2.3":
        assert _added_in(doc, ADDED_24) == set()
        notes = [el.text for el in root.iter("{*}Vermerk")]
        assert any(n.startswith("[Kinderschutz] ") for n in notes), notes
        assert any(n.startswith("[Hilfeplan] ") for n in notes), notes
        assert "Fallkonferenz am 03.12.2026 um 09:30 Uhr in Jugendamt, Raum 4." in notes
        assert not any("{" in n for n in notes)  # prose for people, no machine syntax
    else:
        assert {"Konferenz", "Teilziel"} <= _added_in(doc, ADDED_24)
        assert back.conference == env.conference
    # Nothing loses its category, whichever version carried it.
    assert set(_categories(env)) <= set(_categories(back))
    assert Category.CHILD_PROTECTION in _categories(back)


@pytest.mark.parametrize(("version", "valid_14"), [("1.4", True), ("1.5", False)])
def test_social_office_writes_the_version_the_recipient_runs(version: str, valid_14: bool) -> None:
    env = _youth_office_plan("sozialamt-duisburg")
    doc = SA.render_version(env, version)
    root = etree.fromstring(doc)
    assert root.get("format") == version
    assert etree.XMLSchema(etree.parse(str(SA_XSD))).validate(root)
    assert SA_14.validate(root) is valid_14
    [back] = SA.parse(doc)
    if version == "1.4":
        assert _added_in(doc, ADDED_15) == set()
        notes = [el.text for el in root.iter("{*}Vermerk")]
        assert any(n.startswith("[Kinderschutz] ") for n in notes), notes
        assert any(n.startswith("[Hilfeplan] ") for n in notes), notes
        assert "Fallkonferenz in Jugendamt, Raum 4." in notes
    else:
        assert {"Ort", "Hilfeplan"} <= _added_in(doc, ADDED_15)
    assert back.conference is not None and back.conference.scheduled_at == (
        env.conference and env.conference.scheduled_at)
    assert set(_categories(env)) <= set(_categories(back))


@pytest.mark.parametrize(("system", "old", "new"), [("jobcenter", "2.3", "2.4"),
                                                     ("sozialamt", "1.4", "1.5")])
def test_a_notification_is_refused_for_a_version_that_cannot_carry_it(
    system: str, old: str, new: str
) -> None:
    adapter = get_adapter(system)
    env = _youth_office_plan("jobcenter-duisburg", notification=True)
    assert env.purpose is Purpose.CHILD_PROTECTION
    assert type(adapter).version_refusal(env, new) is None
    why = type(adapter).version_refusal(env, old)
    interface = "Zuweisung" if system == "jobcenter" else "Fallmitteilung"
    assert why is not None
    assert f"runs {interface} {old}, which cannot carry a child-protection notification" in why
    with pytest.raises(RenderError, match="cannot carry a child-protection notification"):
        adapter.render_version(env, old)  # never silently written as an ordinary message
    assert adapter.render_version(env, new)
    assert type(adapter).version_refusal(_youth_office_plan("x-y"), old) is None


def test_an_adapter_written_before_versions_renders_as_before() -> None:
    """The plugin contract is unchanged: an adapter with only ``render`` declares no versions
    and is rendered with ``render`` (tests/routing/test_plugin_adapter.py routes through one)."""

    class OneVersion(Adapter):
        system: ClassVar[str] = "one-version"
        agency_kind: ClassVar[AgencyKind] = AgencyKind.PROVIDER
        media_types: ClassVar[tuple[str, ...]] = ("text/plain",)

        def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
            raise NotImplementedError

        def render(self, envelope: TransferEnvelope) -> bytes:
            return envelope.message_id.encode()

    env = _youth_office_plan("jobcenter-duisburg", notification=True)
    assert OneVersion.interface_versions == ()
    assert OneVersion.version_refusal(env, "1") is None
    assert OneVersion().render_version(env, None) == env.message_id.encode()
