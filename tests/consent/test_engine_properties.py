"""Hypothesis properties of the consent engine over random consents, envelopes and moments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from casebridge.canonical_model import (
    ORDINARY_CATEGORIES,
    Category,
    ConsentDirective,
    StatutoryClaim,
)
from casebridge.consent.engine import (
    ClientFacts,
    ConsentState,
    age_on,
    decide,
    release,
    same_person,
)
from casebridge.consent.policy import TransferPolicy
from tests.consent.consent_factories import CET, consent, envelope, grantor, part

# A small world, so that random consents often match random messages in most respects and the
# properties are exercised at the rules' edges, not only at "nothing matches".
AGENCIES = ["jobcenter-duisburg", "sozialamt-duisburg", "jugendamt-duisburg"]
CONSENT_PURPOSES = ["referral", "case_conference", "joint_planning"]
PURPOSES = ["referral", "referral", "referral", "case_conference", "child_protection"]
#: The rules' own list of who may consent for a minor (kept apart from the engine's constant).
GUARDIAN_RELATIONS = {"mother", "father", "parent", "legal_guardian"}
BASE = datetime(2026, 11, 20, 10, 0, tzinfo=CET)
BASES = ["sgb-viii-8a", "sgb-x-69"]

moments = st.integers(-72, 72).map(lambda h: BASE + timedelta(hours=h))
#: Decision times: mostly inside the window where the random consents are in force.
decision_moments = st.integers(-24, 24).map(lambda h: BASE + timedelta(hours=h))
grantors = st.sampled_from([
    grantor("self"), grantor("self"), grantor("self"), grantor("mother"), grantor("mother"),
    grantor("father"), grantor("legal_guardian"), grantor("parent"),
    grantor("other", "Demir, Fatma"), grantor("other", "Kaya, Ali"),
])


def _near(draw: st.DrawFn, wanted: list[str], pool: list[str], max_size: int) -> list[str]:
    """A list from ``pool`` that, more often than not, contains something from ``wanted``."""
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_size, unique=True))
    if wanted and draw(st.integers(0, 3)):
        pick = draw(st.sampled_from(wanted))
        chosen = [pick, *[x for x in chosen if x != pick]][:max_size]
    return chosen


@st.composite
def consent_states(draw: st.DrawFn, index: int, env=None) -> ConsentState:
    """A random consent, usually close to ``env`` (its sender, a recipient, its purpose)."""
    given_at = draw(moments)
    valid_from = draw(st.none() | moments)
    start = valid_from or given_at
    later = moments.filter(lambda m: m >= start)
    valid_until = draw(st.sampled_from([None, None, 0]).flatmap(
        lambda k: st.none() if k is None else later))
    categories = draw(st.none() | st.lists(st.sampled_from(list(Category)), min_size=1,
                                           max_size=10, unique=True))
    if categories is not None and env is not None and draw(st.booleans()):
        categories = list(dict.fromkeys([*categories, *env.categories]))
    directive = consent(
        f"c-{index}",
        disclosers=_near(draw, [env.sender] if env else [], AGENCIES, 2),
        recipients=_near(draw, env.recipients if env else [], AGENCIES, 3),
        purposes=_near(draw, [env.purpose] if env and env.purpose != "child_protection" else [],
                       CONSENT_PURPOSES, 2),
        categories=categories,
        given_by=draw(grantors),
        given_at=given_at,
        valid_from=valid_from,
        valid_until=valid_until,
        status=draw(st.sampled_from(["active"] * 6 + ["inactive", "rejected", "draft",
                                                      "proposed"])),
        birth_date=None,
    )
    withdrawn = draw(st.sampled_from([False, False, True]))
    return ConsentState(directive, withdrawn_at=draw(moments) if withdrawn else None)


@st.composite
def cases(draw: st.DrawFn):
    sender = draw(st.sampled_from(AGENCIES))
    recipients = draw(st.lists(st.sampled_from([a for a in AGENCIES if a != sender]),
                               min_size=1, max_size=3, unique=True))
    categories = draw(st.lists(st.sampled_from([c for c in Category if c != Category.ENTRUSTED]),
                               max_size=7, unique=True))
    if draw(st.booleans()):
        categories = [Category.IDENTITY, *[c for c in categories if c != Category.IDENTITY]]
    entrusted = [
        part("entrusted", f"e{i}", entrusted_by=g)
        for i, g in enumerate(draw(st.lists(grantors, max_size=2)))
    ]
    statutory = draw(st.none() | st.sampled_from(BASES).map(
        lambda b: StatutoryClaim(legal_basis=b, justification="Begründung")))
    env = envelope([str(c) for c in categories], sender=sender, recipients=recipients,
                   purpose=draw(st.sampled_from(PURPOSES)), parts=entrusted, statutory=statutory)
    n = draw(st.integers(0, 5) if not draw(st.integers(0, 4)) else st.integers(1, 5))
    states = [draw(consent_states(i, env)) for i in range(n)]
    policies = {
        r: TransferPolicy(
            required_categories=frozenset(draw(st.lists(st.sampled_from(list(Category)),
                                                        max_size=1))),
            statutory_bases=frozenset(draw(st.lists(st.sampled_from(BASES), max_size=1))),
        )
        for r in recipients
        if not draw(st.integers(0, 3))
    }
    birth = draw(st.sampled_from([date(1980, 5, 5), date(2013, 6, 1), date(2011, 11, 20)]))
    # Age is always known, so "adding a consent" cannot change who counts as a minor.
    client = None if not draw(st.integers(0, 7)) else ClientFacts("k", birth_date=birth)
    return env, states, draw(decision_moments), policies, client


# --- an independent, literal reading of the rules ---------------------------------------------


def _in_force(s: ConsentState, at: datetime) -> bool:
    d = s.directive
    return (
        d.status == "active"
        and (s.withdrawn_at is None or at < s.withdrawn_at)
        and d.effective_from <= at
        and (d.valid_until is None or at <= d.valid_until)
    )


def _covers(d: ConsentDirective, env, recipient: str, category: Category) -> bool:
    named = category in (d.categories or [])
    ordinary = d.categories is None and category in ORDINARY_CATEGORIES
    return (
        env.sender in d.disclosers and recipient in d.recipients
        and env.purpose in d.purposes and (named or ordinary)
    )


def _lawful(env, recipient, category, states, at, minor) -> bool:
    live = [s.directive for s in states
            if _in_force(s, at) and _covers(s.directive, env, recipient, category)]
    if category == Category.ENTRUSTED:
        entrusters = [p.entrusted_by for p in env.parts if p.entrusted_by is not None]
        each = all(any(same_person(d.grantor, e) for d in live) for e in entrusters)
        return each and (not minor or any(d.grantor.relation in GUARDIAN_RELATIONS for d in live))
    return any(
        d.grantor.relation in GUARDIAN_RELATIONS or (not minor and d.grantor.relation == "self")
        for d in live
    )


def _released(result) -> dict[str, set[Category]]:
    return {d.recipient: set(d.released) for d in result.decisions}


@given(cases())
def test_nothing_released_outside_an_active_covering_consent_or_statutory_basis(case):
    env, states, at, policies, client = case
    result = decide(env, client=client, consents=states, at=at, policies=policies)
    minor = client is not None and client.birth_date is not None and age_on(
        client.birth_date, at) < 15
    ids = {s.directive.consent_id for s in states}
    for d in result.decisions:
        policy = policies.get(d.recipient, TransferPolicy())
        if d.outcome == "override":
            assert env.statutory is not None
            assert env.statutory.legal_basis in policy.statutory_bases
            assert d.legal_basis == env.statutory.legal_basis and d.review_required
            continue
        assert client is not None or not d.released
        for category in d.released:
            assert _lawful(env, d.recipient, category, states, at, minor), category
        assert set(d.consents) <= ids
        assert bool(d.consents) == bool(d.released)
        if d.released:
            assert Category.IDENTITY not in env.categories or Category.IDENTITY in d.released
            assert policy.required_categories <= set(d.released)


@given(cases())
def test_every_present_category_has_exactly_one_fate_and_outcome_matches(case):
    env, states, at, policies, client = case
    for d in decide(env, client=client, consents=states, at=at, policies=policies).decisions:
        withheld = [w.category for w in d.withheld]
        assert set(d.released) | set(withheld) == set(env.categories)
        assert len(withheld) == len(set(withheld)) and not set(d.released) & set(withheld)
        if d.outcome == "block":
            assert d.released == [] and release(env, d) is None
        elif d.outcome == "permit":
            assert d.withheld == []
        elif d.outcome == "partial":
            assert d.released and d.withheld
        sent = release(env, d)
        if sent is not None:
            assert sent.recipients == [d.recipient]
            assert sent.categories == set(d.released)


@given(cases(), st.data())
def test_withdrawing_a_consent_never_releases_more(case, data):
    env, states, at, policies, client = case
    if not states:
        return
    i = data.draw(st.integers(0, len(states) - 1))
    when = data.draw(moments)
    before = _released(decide(env, client=client, consents=states, at=at, policies=policies))
    withdrawn = [*states]
    old = withdrawn[i].withdrawn_at
    withdrawn[i] = replace(withdrawn[i], withdrawn_at=when if old is None else min(old, when))
    after = _released(decide(env, client=client, consents=withdrawn, at=at, policies=policies))
    for recipient, released in after.items():
        assert released <= before[recipient]


@given(cases(), st.data())
def test_adding_a_consent_never_releases_less(case, data):
    env, states, at, policies, client = case
    extra = data.draw(consent_states(99, env))
    before = _released(decide(env, client=client, consents=states, at=at, policies=policies))
    after = _released(decide(env, client=client, consents=[*states, extra], at=at,
                             policies=policies))
    for recipient, released in before.items():
        assert released <= after[recipient]


@given(cases())
def test_deciding_is_a_pure_function(case):
    env, states, at, policies, client = case
    snapshot = env.model_dump_json()
    first = decide(env, client=client, consents=states, at=at, policies=policies)
    second = decide(env, client=client, consents=list(reversed(states)), at=at, policies=policies)
    assert first == second
    assert env.model_dump_json() == snapshot
