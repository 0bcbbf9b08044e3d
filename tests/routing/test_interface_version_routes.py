"""The route table's ``interface_version`` per agency: parsed, checked against what the agency's
adapter writes, used for rendering, and a notification it cannot carry refused at the door."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.errors import ConfigError, StatutoryNotAdmitted
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.preview import render_for
from casebridge.routing.routes import RouteTable, load_route_table, parse_route_table

TABLE = """
agencies:
  - {id: jugendamt-duisburg, kind: youth_office, system: jugendamt, delivery: {mode: pull}}
  - {id: jobcenter-duisburg, kind: jobcenter, system: jobcenter, delivery: {mode: pull},
     interface_version: "JC"}
  - {id: sozialamt-duisburg, kind: social_office, system: sozialamt, delivery: {mode: pull},
     interface_version: "SA"}
routes:
  - {sender: youth_office, purposes: [child_protection, case_conference],
     recipients: [jobcenter, social_office], statutory_bases: [sgb-viii-8a-4]}
"""


def _table(jc: str, sa: str) -> RouteTable:
    return parse_route_table(TABLE.replace('"JC"', jc).replace('"SA"', sa), source="r.yaml",
                             fmt="yaml")


def _from_youth_office(*, notification: bool) -> TransferEnvelope:
    doc = json.loads(sample_bytes("jugendamt/fall-001.json"))
    doc["empfaenger"] = ["jobcenter-duisburg", "sozialamt-duisburg"]
    doc["zweck"] = "fallkonferenz"
    doc["konferenz"] = {"termin": "2026-12-03T09:30:00+01:00", "ort": "Jugendamt"}
    if notification:
        doc["zweck"] = "kinderschutz"
        doc["rechtsgrundlage"] = {"code": "sgb-viii-8a-4", "begruendung": "Schutzauftrag."}
    [env] = get_adapter("jugendamt").parse(json.dumps(doc).encode())
    return env


def test_the_declared_version_is_parsed_and_absent_means_the_newest(tmp_path) -> None:
    table = _table('"2.3"', '"1.4"')
    assert table.agency("jobcenter-duisburg").interface_version == "2.3"
    assert table.agency("sozialamt-duisburg").interface_version == "1.4"
    assert table.agency("jugendamt-duisburg").interface_version is None
    toml = tmp_path / "routes.toml"
    toml.write_text('[[agencies]]\nid = "jobcenter-duisburg"\nkind = "jobcenter"\n'
                    'system = "jobcenter"\ninterface_version = "2.4"\ndelivery = {mode = "pull"}\n')
    assert load_route_table(toml).agency("jobcenter-duisburg").interface_version == "2.4"


@pytest.mark.parametrize(("jc", "expected"), [
    ('"2.2"', "r.yaml: agencies.1.interface_version: '2.2' is not a version of 'jobcenter' "
              "(its adapter writes versions 2.3, 2.4)"),
    ("2.3", 'r.yaml: agencies.1.interface_version: write the version in quotes ("2.3")'),
    ('"zwei"', "r.yaml: agencies.1.interface_version: String should match pattern"),
])
def test_a_bad_version_is_a_clear_load_error(jc: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _table(jc, '"1.5"')
    assert any(line.startswith(expected) for line in info.value.lines()), info.value.lines()


def test_a_system_with_one_version_takes_none() -> None:
    text = TABLE.replace('"JC"', '"2.4"').replace('"SA"', '"1.5"').replace(
        "system: jugendamt, delivery: {mode: pull}",
        'system: jugendamt, delivery: {mode: pull}, interface_version: "3"')
    with pytest.raises(ConfigError, match="agencies.0.interface_version: '3' is not a version of "
                       r"'jugendamt' \(its adapter has one interface version"):
        parse_route_table(text, source="r.yaml", fmt="yaml")


def test_each_recipient_gets_the_version_it_runs() -> None:
    env = _from_youth_office(notification=False)
    for jc, sa in (('"2.3"', '"1.4"'), ('"2.4"', '"1.5"')):
        table = _table(jc, sa)
        assert set(table.check(env)) == {"jobcenter-duisburg", "sozialamt-duisburg"}
        for recipient, attribute, version in (("jobcenter-duisburg", "version", jc),
                                              ("sozialamt-duisburg", "format", sa)):
            native, _ = render_for(table, env.model_copy(update={"recipients": [recipient]}))
            assert etree.fromstring(native).get(attribute) == version.strip('"')


def test_a_notification_to_an_older_version_is_refused_at_the_door() -> None:
    env = _from_youth_office(notification=True)
    assert set(_table('"2.4"', '"1.5"').check(env)) == {"jobcenter-duisburg",
                                                         "sozialamt-duisburg"}
    with pytest.raises(StatutoryNotAdmitted) as info:
        _table('"2.3"', '"1.5"').check(env)
    assert ("jobcenter-duisburg: the recipient runs Zuweisung 2.3, which cannot carry a "
            "child-protection notification") in "\n".join(info.value.lines())
    with pytest.raises(StatutoryNotAdmitted, match=r"Fallmitteilung 1\.4"):
        _table('"2.4"', '"1.4"').check(env)
