"""Properties of route matching over random route tables: first match, nothing widened."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from casebridge.canonical_model import AgencyKind, MessageType, Purpose
from casebridge.errors import NoRoute
from casebridge.routing.routes import RouteTable, RouteTableConfig
from tests.strategies import envelopes

AGENCIES = {
    "jobcenter-duisburg": ("jobcenter", "jobcenter"),
    "sozialamt-duisburg": ("social_office", "sozialamt"),
    "jugendamt-duisburg": ("youth_office", "jugendamt"),
    "suchtberatung-diakonie-du": ("provider", "provider-fhir"),
}
SELECTORS = sorted(AGENCIES) + [k.value for k in AgencyKind]

routes = st.lists(
    st.fixed_dictionaries({
        "sender": st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3, unique=True),
        "purposes": st.lists(st.sampled_from([p.value for p in Purpose]), min_size=1,
                             max_size=3, unique=True),
        "recipients": st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3, unique=True),
        "message_types": st.none() | st.lists(st.sampled_from([m.value for m in MessageType]),
                                              min_size=1, max_size=2, unique=True),
        "response_days": st.integers(min_value=1, max_value=30),
    }),
    max_size=6,
)


def table(route_list: list[dict]) -> RouteTable:
    agencies = [{"id": a, "kind": k, "system": s, "delivery": {"mode": "pull"}}
                for a, (k, s) in AGENCIES.items()]
    return RouteTable(RouteTableConfig.model_validate(
        {"agencies": agencies, "routes": route_list}))


def selects(selectors: list[str], agency: str) -> bool:
    return agency in selectors or AGENCIES[agency][0] in selectors


def admits(route: dict, sender: str, recipient: str, purpose: str, mtype: str) -> bool:
    return (selects(route["sender"], sender) and purpose in route["purposes"]
            and selects(route["recipients"], recipient)
            and (route["message_types"] is None or mtype in route["message_types"]))


@given(routes, envelopes(max_parts=1),
       st.sampled_from(sorted(AGENCIES)),
       st.lists(st.sampled_from(sorted(AGENCIES)), min_size=1, max_size=3, unique=True))
def test_check_admits_exactly_what_a_first_matching_route_admits(route_list, env, sender, to):
    to = [r for r in to if r != sender] or [a for a in AGENCIES if a != sender][:1]
    env = env.model_copy(update={"sender": sender, "recipients": to})
    purpose, mtype = str(env.purpose), str(env.message_type)
    t = table(route_list)
    first = {r: next((i for i, route in enumerate(route_list)
                      if admits(route, sender, r, purpose, mtype)), None) for r in to}
    if any(i is None for i in first.values()):
        try:
            t.check(env)
        except NoRoute:
            return
        raise AssertionError("a recipient without a route was admitted")
    hits = t.check(env)
    assert set(hits) == set(to)
    for recipient, hit in hits.items():
        assert hit.route_index == first[recipient]
        assert hit.response_days == route_list[hit.route_index]["response_days"]
        assert hit.policy.statutory_bases == frozenset()  # nothing configured, nothing admitted


@given(envelopes(max_parts=1))
def test_unknown_agencies_are_never_routed(env):
    t = table([{"sender": SELECTORS, "purposes": [p.value for p in Purpose],
                "recipients": SELECTORS, "message_types": None, "response_days": 10}])
    known = env.sender in AGENCIES and all(r in AGENCIES for r in env.recipients)
    if not known:
        try:
            t.check(env)
        except NoRoute:
            return
        raise AssertionError("an agency outside the table was routed")
