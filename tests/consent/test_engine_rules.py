"""The consent rules of domain.md, one test (or a few) per rule, plus the issue's hard cases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from casebridge.canonical_model import Category, StatutoryClaim
from casebridge.consent.decision import Decision
from casebridge.consent.engine import (
    REASON_PRECEDENCE,
    ClientFacts,
    ConsentState,
    age_on,
    decide,
    release,
    same_person,
)
from casebridge.consent.fhir import parse_consents
from casebridge.consent.policy import TransferPolicy
from tests.consent.consent_factories import (
    AT,
    CHILD_BIRTH,
    JA,
    JC,
    SA,
    SB,
    consent,
    envelope,
    fates,
    grantor,
    part,
    t,
)

ADULT = ClientFacts("client-1")
CHILD = ClientFacts("client-2", birth_date=CHILD_BIRTH)


def one(env, *states, client=ADULT, at=AT, **kw) -> Decision:
    """The decision for the single recipient of ``env``."""
    wrapped = [s if isinstance(s, ConsentState) else ConsentState(s) for s in states]
    result = decide(env, client=client, consents=wrapped, at=at, **kw)
    assert len(result.decisions) == 1
    return result.decisions[0]


# --- rule 1: default deny -----------------------------------------------------------------------


def test_rule_1_no_consent_on_record_releases_nothing():
    d = one(envelope(["identity", "contact", "housing"]))
    assert d.outcome == "block"
    assert d.released == []
    assert fates(d) == {"identity": "no_consent", "contact": "no_consent", "housing": "no_consent"}


def test_rule_1_unknown_client_is_blocked_not_guessed():
    d = one(envelope(["identity", "contact"]), consent(categories=None), client=None)
    assert d.outcome == "block"
    assert fates(d) == {"identity": "unknown_client", "contact": "unknown_client"}
    assert d.consents == []


def test_rule_1_message_without_personal_data_passes_but_unknown_client_still_blocks():
    assert one(envelope([]), client=ADULT).outcome == "permit"
    assert one(envelope([]), client=None).outcome == "block"


# --- rule 2 and 3: what a consent names, and one consent must cover everything ----------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"disclosers": [SA]}, "sender_not_covered"),
        ({"recipients": [SA]}, "recipient_not_covered"),
        ({"purposes": ["case_conference"]}, "purpose_not_covered"),
        ({"categories": ["identity"]}, "category_not_covered"),
        ({"valid_from": t("2026-12-01T00:00:00")}, "not_yet_valid"),
        ({"valid_until": t("2026-11-19T00:00:00")}, "expired"),
    ],
)
def test_rule_2_every_element_a_consent_names_is_checked(change, reason):
    d = one(envelope(["contact"]), consent(**{"categories": ["identity", "contact"], **change}))
    assert fates(d) == {"contact": reason}


def test_rule_3_one_consent_covering_everything_releases():
    d = one(envelope(["identity", "contact"]), consent("c-1"))
    assert d.outcome == "permit"
    assert sorted(d.released) == [Category.CONTACT, Category.IDENTITY]
    assert d.consents == ["c-1"]
    assert d.legal_basis is None


def test_rule_3_two_consents_do_not_combine_across_recipients_or_purposes():
    # A covers health for the social office, B covers the addiction service but not health;
    # C covers health towards the addiction service but for a different purpose.
    a = consent("a", recipients=[SA], categories=["identity", "health"])
    b = consent("b", recipients=[SB], categories=["identity"])
    c = consent("c", recipients=[SB], purposes=["case_conference"], categories=["health"])
    d = one(envelope(["identity", "health"]), a, b, c)
    assert fates(d) == {"identity": "released", "health": "special_category_not_named"}
    assert d.consents == ["b"]


def test_rule_3_consents_do_not_combine_sender_of_one_with_recipient_of_other():
    a = consent("a", disclosers=[JC], recipients=[SA], categories=["contact"])
    b = consent("b", disclosers=[JA], recipients=[SB], categories=["contact"])
    d = one(envelope(["contact"], sender=JC, recipients=[SB]), a, b)
    # b fails on the sender, a on the recipient: the recipient is nearer to the data.
    assert fates(d) == {"contact": "recipient_not_covered"}


def test_rule_3_decisions_are_per_recipient():
    c = consent(recipients=[SB], categories=["identity", "contact"])
    result = decide(
        envelope(["identity", "contact"], recipients=[SB, SA]),
        client=ADULT, consents=[ConsentState(c)], at=AT,
    )
    by = {d.recipient: d for d in result.decisions}
    assert by[SB].outcome == "permit"
    assert by[SA].outcome == "block"
    assert set(fates(by[SA]).values()) == {"recipient_not_covered"}


def test_hard_case_consent_to_the_job_centre_does_not_cover_the_social_office():
    c = consent(disclosers=[JA], recipients=[JC], purposes=["case_conference"], categories=None)
    env = envelope(["identity", "household"], sender=JA, recipients=[SA], purpose="case_conference")
    d = one(env, c)
    assert d.outcome == "block"
    assert set(fates(d).values()) == {"recipient_not_covered"}


# --- rule 4: special categories must be named ---------------------------------------------------


def test_rule_4_all_ordinary_consent_does_not_cover_health():
    d = one(envelope(["identity", "health", "addiction", "criminal", "housing"]),
            consent(categories=None))
    assert fates(d) == {
        "identity": "released",
        "housing": "released",
        "health": "special_category_not_named",
        "addiction": "special_category_not_named",
        "criminal": "special_category_not_named",
    }
    assert d.outcome == "partial"


def test_rule_4_all_ordinary_consent_does_not_cover_entrusted():
    d = one(envelope(["identity"], parts=[part("entrusted", entrusted_by=grantor("self"))]),
            consent(categories=None))
    assert fates(d) == {"identity": "released", "entrusted": "category_not_covered"}


def test_rule_4_named_special_category_passes():
    d = one(envelope(["identity", "addiction"]), consent(categories=["identity", "addiction"]))
    assert d.outcome == "permit"


def test_rule_4_special_not_named_beats_purpose_not_covered():
    # domain.md's example: a consent for this purpose exists but does not name health.
    this_purpose = consent("a", categories=["identity"])
    other_purpose = consent("b", purposes=["joint_planning"], categories=["health"])
    d = one(envelope(["identity", "health"]), this_purpose, other_purpose)
    assert fates(d)["health"] == "special_category_not_named"


def test_hard_case_all_ordinary_categories_does_not_release_health_or_addiction():
    d = one(envelope(["health", "addiction"]), consent(categories=None))
    assert d.outcome == "block"
    assert fates(d) == {
        "health": "special_category_not_named", "addiction": "special_category_not_named"
    }


# --- rule 5: entrusted data needs the entruster's consent ---------------------------------------


def _child_env(entruster):
    return envelope(
        ["identity", "education"], sender=JA, recipients=[JC], purpose="case_conference",
        parts=[part("entrusted", entrusted_by=entruster)],
    )


def _ja_consent(cid, by, cats=("identity", "education", "entrusted"), **kw):
    return consent(cid, disclosers=[JA], recipients=[JC], purposes=["case_conference"],
                   categories=list(cats), given_by=by, birth_date=CHILD_BIRTH, **kw)


def test_rule_5_guardians_consent_does_not_release_a_note_the_child_entrusted():
    mother = _ja_consent("m", grantor("mother"))
    d = one(_child_env(grantor("self")), mother, client=CHILD)
    assert fates(d) == {
        "identity": "released", "education": "released", "entrusted": "entruster_not_consented"
    }


def test_rule_5_childs_own_consent_plus_guardians_releases_what_the_child_entrusted():
    mother = _ja_consent("m", grantor("mother"))
    child = _ja_consent("k", grantor("self"), cats=["entrusted"])
    d = one(_child_env(grantor("self")), mother, child, client=CHILD)
    assert d.outcome == "permit"
    assert d.consents == ["k", "m"]


def test_rule_5_childs_own_consent_alone_needs_the_guardian_for_a_minor():
    child = _ja_consent("k", grantor("self"), cats=["entrusted"])
    d = one(_child_env(grantor("self")), child, client=CHILD)
    # identity/education: only a self-consent that does not name them → category_not_covered;
    # entrusted: the child consented but the guardian's consent is missing.
    assert fates(d)["entrusted"] == "guardian_required"


def test_rule_5_guardian_must_name_entrusted_too():
    mother = _ja_consent("m", grantor("mother"), cats=["identity", "education"])
    child = _ja_consent("k", grantor("self"), cats=["entrusted"])
    d = one(_child_env(grantor("self")), mother, child, client=CHILD)
    # the child consented; the guardian's consent exists but does not name entrusted
    assert fates(d)["entrusted"] == "category_not_covered"


def test_rule_5_guardians_consent_without_entrusted_still_lacks_the_entruster():
    mother = _ja_consent("m", grantor("mother"), cats=["identity", "education"])
    d = one(_child_env(grantor("self")), mother, client=CHILD)
    assert fates(d)["entrusted"] == "entruster_not_consented"


def test_rule_5_entrusters_own_consent_without_entrusted_is_category_not_covered():
    child = _ja_consent("k", grantor("self"), cats=["education"])
    mother = _ja_consent("m", grantor("mother"))
    d = one(_child_env(grantor("self")), child, mother, client=CHILD)
    assert fates(d)["entrusted"] == "category_not_covered"


def test_rule_5_note_entrusted_by_the_mother_needs_her_consent_naming_entrusted():
    env = _child_env(grantor("mother"))
    assert fates(one(env, _ja_consent("m", grantor("mother")), client=CHILD))["entrusted"] == (
        "released"
    )
    father = _ja_consent("f", grantor("father", "Yılmaz, Murat"))
    assert fates(one(env, father, client=CHILD))["entrusted"] == "entruster_not_consented"


def test_rule_5_entruster_who_is_not_a_parent_is_matched_by_name():
    aunt = grantor("other", "Demir, Fatma")
    env = envelope(["identity"], parts=[part("entrusted", entrusted_by=aunt)])
    right = consent("aunt", categories=["entrusted"], given_by=grantor("other", "DEMIR, Fatma"))
    wrong = consent("x", categories=["entrusted"], given_by=grantor("other", "Demir, Ayla"))
    client = consent("self", categories=["identity", "entrusted"])
    assert fates(one(env, client, right))["entrusted"] == "released"
    assert fates(one(env, client, wrong))["entrusted"] == "entruster_not_consented"
    # nobody's consent replaces the entruster's — not even the adult client's own
    assert fates(one(env, client))["entrusted"] == "entruster_not_consented"


def test_rule_5_entrusted_by_two_people_passes_only_if_both_consented():
    env = envelope(["identity"], parts=[
        part("entrusted", "e1", entrusted_by=grantor("self")),
        part("entrusted", "e2", entrusted_by=grantor("other", "Demir, Fatma")),
    ])
    client = consent("self", categories=["identity", "entrusted"])
    aunt = consent("aunt", categories=["entrusted"], given_by=grantor("other", "Demir, Fatma"))
    assert fates(one(env, client))["entrusted"] == "entruster_not_consented"
    d = one(env, client, aunt)
    assert fates(d)["entrusted"] == "released"
    assert d.consents == ["aunt", "self"]


def test_same_person_matches_relation_and_names_of_others():
    assert same_person(grantor("mother", "A, B"), grantor("mother", "C, D"))
    assert not same_person(grantor("mother"), grantor("father"))
    assert not same_person(grantor("parent"), grantor("mother"))
    assert same_person(grantor("other", "Müller, Jörg"), grantor("other", "Mueller, Joerg"))


# --- rule 6: withdrawal takes effect at once ----------------------------------------------------


def test_rule_6_withdrawal_at_10_blocks_10_00_01_but_not_09_59():
    c = ConsentState(consent(categories=None), withdrawn_at=t("2026-11-20T10:00:00"))
    env = envelope(["identity", "contact"])
    before = one(env, c, at=t("2026-11-20T09:59:00"))
    assert before.outcome == "permit"
    after = one(env, c, at=t("2026-11-20T10:00:01"))
    assert after.outcome == "block"
    assert set(fates(after).values()) == {"withdrawn"}
    assert one(env, c, at=t("2026-11-20T10:00:00")).outcome == "block"


def test_rule_6_withdrawal_compares_instants_across_offsets():
    c = ConsentState(consent(categories=None), withdrawn_at=t("2026-11-20T09:00:00+00:00"))
    # 09:59:59+01:00 is 08:59:59 UTC: before the withdrawal
    assert one(envelope(), c, at=t("2026-11-20T09:59:59+01:00")).outcome == "permit"
    assert one(envelope(), c, at=t("2026-11-20T10:00:00+01:00")).outcome == "block"


def test_rule_6_withdrawn_reason_only_for_what_the_consent_covered():
    c = ConsentState(consent(categories=["identity", "contact"]), withdrawn_at=t("2026-11-19"))
    d = one(envelope(["identity", "contact", "case_notes"]), c)
    assert fates(d) == {
        "identity": "withdrawn", "contact": "withdrawn", "case_notes": "category_not_covered"
    }


def test_hard_case_valid_until_yesterday_releases_nothing_today():
    yesterday = AT - timedelta(days=1)
    d = one(envelope(["identity", "contact"]), consent(valid_until=yesterday))
    assert d.outcome == "block"
    assert set(fates(d).values()) == {"expired"}


def test_rule_6_validity_bounds_are_inclusive():
    c = consent(valid_from=t("2026-11-20T09:00:00"), valid_until=t("2026-11-20T10:00:00"))
    assert one(envelope(), c, at=t("2026-11-20T09:00:00")).outcome == "permit"
    assert one(envelope(), c, at=t("2026-11-20T10:00:00")).outcome == "permit"
    assert set(fates(one(envelope(), c, at=t("2026-11-20T08:59:59"))).values()) == {
        "not_yet_valid"
    }


def test_rule_6_valid_from_defaults_to_when_it_was_given():
    c = consent(given_at=t("2026-11-20T12:00:00"))
    assert set(fates(one(envelope(), c, at=t("2026-11-20T11:00:00"))).values()) == {
        "not_yet_valid"
    }


@pytest.mark.parametrize(
    ("status", "reason"),
    [("draft", "not_yet_valid"), ("proposed", "not_yet_valid"), ("inactive", "expired"),
     ("rejected", "no_consent")],
)
def test_rule_6_only_active_consents_grant(status, reason):
    d = one(envelope(["identity"]), consent(status=status))
    assert fates(d) == {"identity": reason}


# --- rule 7: minimisation -----------------------------------------------------------------------


def test_rule_7_release_removes_withheld_parts_and_other_recipients():
    env = envelope(["identity", "contact", "case_notes"], recipients=[SB, SA])
    result = decide(env, client=ADULT, consents=[ConsentState(consent())], at=AT)
    to_sb, to_sa = result.decisions
    sent = release(env, to_sb)
    assert sent is not None
    assert sent.recipients == [SB]
    assert {p.category for p in sent.parts} == {Category.IDENTITY, Category.CONTACT}
    assert release(env, to_sa) is None
    # deciding changed nothing
    assert len(env.parts) == 3 and env.recipients == [SB, SA]


def test_rule_7_identity_not_covered_blocks_the_whole_transfer():
    d = one(envelope(["identity", "contact", "health"]), consent(categories=["contact"]))
    assert d.outcome == "block"
    assert d.released == []
    assert fates(d) == {
        "identity": "category_not_covered",  # its own reason, nearest to its data
        "contact": "identity_not_covered",  # would have passed; blocked for identity's sake
        "health": "special_category_not_named",
    }
    assert d.consents == []


def test_rule_7_message_without_identity_part_is_not_blocked_for_identity():
    d = one(envelope(["contact", "health"]), consent(categories=["contact"]))
    assert fates(d) == {"contact": "released", "health": "special_category_not_named"}


def test_rule_7_route_required_category_missing_blocks():
    policy = {SB: TransferPolicy(required_categories=frozenset({Category.ADDICTION}))}
    c = consent(categories=["identity", "contact"])
    absent = one(envelope(["identity", "contact"]), c, policies=policy)
    assert absent.outcome == "block"
    assert set(fates(absent).values()) == {"required_category_missing"}
    withheld = one(envelope(["identity", "contact", "addiction"]), c, policies=policy)
    assert fates(withheld) == {
        "identity": "required_category_missing",
        "contact": "required_category_missing",
        "addiction": "special_category_not_named",
    }
    ok = one(envelope(["identity", "addiction"]), consent(categories=["identity", "addiction"]),
             policies=policy)
    assert ok.outcome == "permit"


def test_rule_7_policy_applies_to_its_recipient_only():
    policy = {SA: TransferPolicy(required_categories=frozenset({Category.HEALTH}))}
    c = consent(recipients=[SB, SA], categories=["identity"])
    result = decide(envelope(["identity"], recipients=[SB, SA]), client=ADULT,
                    consents=[ConsentState(c)], at=AT, policies=policy)
    assert [d.outcome for d in result.decisions] == ["permit", "block"]


# --- rule 8: statutory transfers ----------------------------------------------------------------


CLAIM = StatutoryClaim(legal_basis="sgb-viii-8a", justification="Gewichtige Anhaltspunkte, §8a")


def test_rule_8_statutory_transfer_on_an_admitted_route_is_an_override_for_review():
    env = envelope(["identity", "child_protection", "health"], sender=JA, recipients=[JC],
                   purpose="child_protection", statutory=CLAIM)
    policy = {JC: TransferPolicy(statutory_bases=frozenset({"sgb-viii-8a"}))}
    d = one(env, client=None, policies=policy)
    assert d.outcome == "override"
    assert set(d.released) == {Category.IDENTITY, Category.CHILD_PROTECTION, Category.HEALTH}
    assert d.withheld == []
    assert d.legal_basis == "sgb-viii-8a"
    assert d.review_required is True
    assert d.as_report()["legal_basis"] == "sgb-viii-8a"


def test_rule_8_statutory_claim_the_route_does_not_admit_grants_nothing():
    env = envelope(["identity", "child_protection"], sender=JA, recipients=[JC],
                   purpose="child_protection", statutory=CLAIM)
    other_basis = {JC: TransferPolicy(statutory_bases=frozenset({"sgb-x-69"}))}
    for policies in (None, other_basis):
        d = one(env, client=CHILD, policies=policies)
        assert d.outcome == "block"
        assert not d.review_required and d.legal_basis is None


def test_rule_8_child_protection_purpose_cannot_pass_by_consent():
    c = consent(disclosers=[JA], recipients=[JC], purposes=["case_conference"], categories=None,
                given_by=grantor("mother"))
    env = envelope(["identity", "child_protection"], sender=JA, recipients=[JC],
                   purpose="child_protection")
    d = one(env, c, client=CHILD)
    assert d.outcome == "block"
    assert set(fates(d).values()) == {"purpose_not_covered"}


def test_rule_8_override_still_needs_route_required_categories():
    env = envelope(["identity"], sender=JA, recipients=[JC], purpose="child_protection",
                   statutory=CLAIM)
    policy = {JC: TransferPolicy(statutory_bases=frozenset({"sgb-viii-8a"}),
                                 required_categories=frozenset({Category.CHILD_PROTECTION}))}
    d = one(env, client=CHILD, policies=policy)
    assert fates(d) == {"identity": "required_category_missing"}


# --- rule 9: minors -----------------------------------------------------------------------------


def test_rule_9_minor_self_consent_yields_guardian_required():
    c = _ja_consent("k", grantor("self"), cats=["identity", "education"])
    env = envelope(["identity", "education", "housing"], sender=JA, recipients=[JC],
                   purpose="case_conference")
    d = one(env, c, client=CHILD)
    # who gave it comes before what it lists: the child could not consent to any of it
    assert set(fates(d).values()) == {"guardian_required"}


def test_rule_9_guardian_consent_that_misses_a_category_is_the_nearer_reason():
    child = _ja_consent("k", grantor("self"), cats=["identity", "housing"])
    mother = _ja_consent("m", grantor("mother"), cats=["identity"])
    env = envelope(["identity", "housing"], sender=JA, recipients=[JC],
                   purpose="case_conference")
    assert fates(one(env, child, mother, client=CHILD)) == {
        "identity": "released", "housing": "category_not_covered"
    }


def test_rule_9_guardian_consent_releases_for_a_minor():
    for relation in ("mother", "father", "parent", "legal_guardian"):
        c = _ja_consent("g", grantor(relation), cats=["identity", "education"])
        env = envelope(["identity", "education"], sender=JA, recipients=[JC],
                       purpose="case_conference")
        assert one(env, c, client=CHILD).outcome == "permit", relation


def test_rule_9_age_limit_is_configurable_and_birthday_counts():
    c = _ja_consent("k", grantor("self"), cats=["identity"])
    env = envelope(["identity"], sender=JA, recipients=[JC], purpose="case_conference")
    client = ClientFacts("c", birth_date=date(2011, 11, 20))  # 15 on the day of AT
    assert one(env, c, client=client).outcome == "permit"
    assert one(env, c, client=client, minor_age=16).outcome == "block"
    day_before = ClientFacts("c", birth_date=date(2011, 11, 21))
    assert fates(one(env, c, client=day_before)) == {"identity": "guardian_required"}


def test_rule_9_age_on_uses_the_local_calendar_day():
    # 23:30 UTC on 19 Nov is already 20 Nov in Berlin
    assert age_on(date(2011, 11, 20), t("2026-11-19T23:30:00+00:00")) == 15
    assert age_on(date(2011, 11, 20), t("2026-11-19T22:30:00+00:00")) == 14


def test_rule_9_birth_date_falls_back_to_identity_part_then_consents():
    c = _ja_consent("k", grantor("self"), cats=["identity"])
    env = envelope([], sender=JA, recipients=[JC], purpose="case_conference",
                   parts=[part("identity", birth_date=CHILD_BIRTH)])
    assert fates(one(env, c, client=ClientFacts("c"))) == {"identity": "guardian_required"}
    env2 = envelope(["identity"], sender=JA, recipients=[JC], purpose="case_conference")
    assert fates(one(env2, c, client=ClientFacts("c"))) == {"identity": "guardian_required"}


def test_rule_9_guardian_consent_still_counts_once_the_child_is_older():
    c = _ja_consent("m", grantor("mother"), cats=["identity"])
    env = envelope(["identity"], sender=JA, recipients=[JC], purpose="case_conference")
    teen = ClientFacts("c", birth_date=date(2010, 1, 1))
    assert one(env, c, client=teen).outcome == "permit"


# --- rule 10: decisions carry what the audit trail records, nothing more -------------------------


def test_rule_10_decision_holds_categories_reasons_consents_and_basis_but_no_payload():
    env = envelope(["identity", "contact", "case_notes"])
    d = one(env, consent("c-9"))
    report = d.as_report()
    assert set(report) == {"recipient", "outcome", "released", "withheld", "consents",
                           "legal_basis"}
    assert "Yılmaz" not in d.model_dump_json()
    assert report["consents"] == ["c-9"]


# --- reasons ------------------------------------------------------------------------------------


def test_reason_precedence_table_orders_scope_then_grantor_then_data_then_time():
    names = [str(r) for r in REASON_PRECEDENCE]
    assert names.index("sender_not_covered") < names.index("recipient_not_covered")
    assert names.index("recipient_not_covered") < names.index("purpose_not_covered")
    assert names.index("purpose_not_covered") < names.index("entruster_not_consented")
    assert names.index("guardian_required") < names.index("category_not_covered")
    assert names.index("purpose_not_covered") < names.index("special_category_not_named")
    assert names.index("special_category_not_named") < names.index("expired")


def test_reason_nearest_to_the_data_wins_across_consents():
    wrong_sender = consent("a", disclosers=[SA], categories=None)
    wrong_purpose = consent("b", purposes=["joint_planning"], categories=None)
    expired = consent("c", categories=["contact"], valid_until=t("2026-11-01T12:00:00"))
    env = envelope(["contact"])
    assert fates(one(env, wrong_sender)) == {"contact": "sender_not_covered"}
    assert fates(one(env, wrong_sender, wrong_purpose)) == {"contact": "purpose_not_covered"}
    assert fates(one(env, wrong_sender, wrong_purpose, expired)) == {"contact": "expired"}


def test_expired_consent_that_never_named_health_says_so_for_health():
    c = consent(categories=["identity"], valid_until=t("2026-11-10T00:00:00"))
    assert fates(one(envelope(["identity", "health"]), c)) == {
        "identity": "expired", "health": "special_category_not_named"
    }


def test_every_present_category_gets_exactly_one_fate():
    env = envelope([str(c) for c in Category if c != Category.ENTRUSTED],
                   parts=[part("entrusted", entrusted_by=grantor("self"))])
    d = one(env, consent(categories=None))
    assert set(fates(d)) == {str(c) for c in Category}


def test_naive_decision_time_is_a_programming_error():
    with pytest.raises(ValueError, match="UTC offset"):
        decide(envelope(), client=ADULT, consents=[], at=AT.replace(tzinfo=None))


# --- with the real sample consents --------------------------------------------------------------


def test_sample_self_consent_releases_the_referral_except_case_notes(sample):
    (directive,) = parse_consents(sample("consent_self"))
    env = envelope(["identity", "contact", "addiction", "support_plan", "case_notes"],
                   message_id="JC-DU-2026-000123")
    d = one(env, directive)
    assert d.outcome == "partial"
    assert fates(d)["case_notes"] == "category_not_covered"
    assert d.consents == ["cons-jc-2026-0815"]
    # the same consent does not reach the social office, nor the time after its end
    assert one(envelope(["identity"], recipients=[SA]), directive).outcome == "block"
    assert fates(one(envelope(["identity"]), directive, at=t("2027-05-05T00:00:01+02:00"))) == {
        "identity": "expired"
    }


def test_sample_guardian_consent_covers_the_case_conference_of_the_minor(sample):
    (directive,) = parse_consents(sample("consent_guardian"))
    env = envelope(["identity", "household", "education", "support_plan", "health"],
                   sender=JA, recipients=[JC, SA], purpose="case_conference",
                   parts=[part("entrusted", entrusted_by=grantor("self"))])
    result = decide(env, client=ClientFacts("emre"), consents=[ConsentState(directive)], at=AT)
    for d in result.decisions:
        assert fates(d) == {
            "identity": "released", "household": "released", "education": "released",
            "support_plan": "released", "health": "special_category_not_named",
            "entrusted": "entruster_not_consented",
        }
        assert d.consents == ["cons-ja-2026-0311"]


def test_rule_9_parents_speak_for_a_child_only_until_it_comes_of_age():
    # a 16-year-old may consent herself, and her parents still may too
    teen = ClientFacts("teen", birth_date=date(2010, 6, 1))
    adult = ClientFacts("adult", birth_date=date(1988, 4, 12))
    env = envelope(["identity", "education"], sender=JA, recipients=[JC],
                   purpose="case_conference")
    mother = _ja_consent("m", grantor("mother"), cats=["identity", "education"])
    assert one(env, mother, client=teen).outcome == "permit"
    # a mother's consent does not release an adult child's data; a legal guardian's does
    assert fates(one(env, mother, client=adult)) == {
        "identity": "no_consent", "education": "no_consent"
    }
    guardian = _ja_consent("g", grantor("legal_guardian"), cats=["identity", "education"])
    assert one(env, guardian, client=adult).outcome == "permit"
