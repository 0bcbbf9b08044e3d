"""The route table: validation with clear errors, first-match routes, NoRoute at the door."""

from __future__ import annotations

import pytest

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Category, MessageType, Purpose
from casebridge.errors import ConfigError, NoRoute
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.routes import (
    PullDelivery,
    PushDelivery,
    demo_route_table,
    demo_route_table_text,
    load_route_table,
    parse_route_table,
)

MINIMAL = """
agencies:
  - {id: jobcenter-duisburg, kind: jobcenter, system: jobcenter,
     delivery: {mode: push, url: "https://jc.example/in"}}
  - {id: sozialamt-duisburg, kind: social_office, system: sozialamt, delivery: {mode: pull}}
routes:
  - {sender: social_office, purposes: [case_conference], recipients: [jobcenter-duisburg],
     required_categories: [identity], response_days: 5}
"""


def test_demo_table_loads_with_every_agency_and_delivery_mode():
    table = demo_route_table()
    assert isinstance(table.agency("suchtberatung-diakonie-du").delivery, PullDelivery)
    assert isinstance(table.agency("jobcenter-duisburg").delivery, PushDelivery)


def test_demo_urls_can_be_replaced():
    table = demo_route_table({"suchtberatung-diakonie-du": "http://127.0.0.1:9/x"})
    delivery = table.agency("suchtberatung-diakonie-du").delivery
    assert isinstance(delivery, PushDelivery) and delivery.url == "http://127.0.0.1:9/x"


def test_route_gives_policy_and_response_days():
    table = parse_route_table(MINIMAL, source="r.yaml", fmt="yaml")
    hit = table.route_for("sozialamt-duisburg", "jobcenter-duisburg", Purpose.CASE_CONFERENCE,
                          MessageType.CASE_CONFERENCE)
    assert hit is not None
    assert hit.policy.required_categories == frozenset({Category.IDENTITY})
    assert hit.policy.statutory_bases == frozenset()
    assert hit.response_days == 5
    assert table.route_for("sozialamt-duisburg", "jobcenter-duisburg", Purpose.REFERRAL,
                           MessageType.REFERRAL) is None


def test_first_matching_route_wins():
    text = MINIMAL + """
  - {sender: sozialamt-duisburg, purposes: [case_conference], recipients: [jobcenter],
     response_days: 20}
"""
    table = parse_route_table(text, source="r.yaml", fmt="yaml")
    hit = table.route_for("sozialamt-duisburg", "jobcenter-duisburg", Purpose.CASE_CONFERENCE,
                          MessageType.CASE_CONFERENCE)
    assert hit is not None and hit.route_index == 0 and hit.response_days == 5


def test_sample_messages_are_on_the_demo_routes():
    table = demo_route_table()
    for system, path in [("jobcenter", "jobcenter/zuweisung-001.xml"),
                         ("sozialamt", "sozialamt/fallmitteilung-001.xml"),
                         ("jugendamt", "jugendamt/fall-001.json")]:
        for env in get_adapter(system).parse(sample_bytes(path), source=path):
            assert set(table.check(env)) == set(env.recipients)


def test_message_on_no_route_is_refused_with_reason():
    table = parse_route_table(MINIMAL, source="r.yaml", fmt="yaml")
    env = get_adapter("jugendamt").parse(sample_bytes("jugendamt/fall-001.json"))[0]
    with pytest.raises(NoRoute, match="sender 'jugendamt-duisburg' is not in the route table"):
        table.check(env)
    env2 = get_adapter("sozialamt").parse(sample_bytes("sozialamt/fallmitteilung-001.xml"))[0]
    with pytest.raises(NoRoute, match="jugendamt-duisburg not in the route table"):
        table.check(env2)


def test_statutory_bases_only_on_the_child_protection_route():
    table = demo_route_table()
    hit = table.route_for("jobcenter-duisburg", "jugendamt-duisburg", Purpose.CHILD_PROTECTION,
                          MessageType.REFERRAL)
    assert hit is not None and "sgb-viii-8a" in hit.policy.statutory_bases
    other = table.route_for("jobcenter-duisburg", "suchtberatung-diakonie-du", Purpose.REFERRAL,
                            MessageType.REFERRAL)
    assert other is not None and other.policy.statutory_bases == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL.replace("system: sozialamt", "system: sozialmat"),
         "agencies.1.system: no installed adapter provides system 'sozialmat' (installed "
         "systems: jobcenter, jugendamt, provider-fhir, sozialamt"),
        (MINIMAL.replace("kind: jobcenter", "kind: jobcentre"), "agencies.0.kind"),
        (MINIMAL.replace('url: "https://jc.example/in"', "url: ftp://x"),
         "agencies.0.delivery.push.url"),
        (MINIMAL.replace("recipients: [jobcenter-duisburg]", "recipients: [nobody]"),
         "routes.0.recipients: 'nobody' is neither an agency id nor a kind"),
        (MINIMAL.replace("purposes: [case_conference]", "purposes: [gossip]"),
         "routes.0.purposes.0"),
        (MINIMAL.replace("response_days: 5", "response_days: 0"), "routes.0.response_days"),
        (MINIMAL + "unexpected: 1\n", "unexpected"),
        ("agencies: [\n", "r.yaml: line"),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_invalid_tables_name_file_and_field(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_route_table(text, source="r.yaml", fmt="yaml")
    assert any(expected in line for line in info.value.lines()), info.value.lines()
    assert all(line.startswith("r.yaml") for line in info.value.lines())


def test_toml_and_file_errors(tmp_path):
    path = tmp_path / "routes.toml"
    path.write_text(
        '[[agencies]]\nid = "jobcenter-duisburg"\nkind = "jobcenter"\nsystem = "jobcenter"\n'
        'delivery = {mode = "pull"}\n'
    )
    table = load_route_table(path)
    assert list(table.agencies) == ["jobcenter-duisburg"]
    with pytest.raises(ConfigError, match="cannot read"):
        load_route_table(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.toml"):
        load_route_table(tmp_path / "routes.json")


def test_demo_table_text_is_documented():
    assert "first match wins" in demo_route_table_text()
