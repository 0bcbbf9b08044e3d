"""End to end without I/O: native sample → adapter → engine with the real sample consents."""

from __future__ import annotations

from casebridge.adapters.registry import get_adapter
from casebridge.consent.engine import ClientFacts, ConsentState, decide, release
from casebridge.consent.fhir import parse_consents
from tests.consent.consent_factories import fates, t

CLIENT = ClientFacts("client-ayse")
CHILD = ClientFacts("client-emre")


def _one(sample, system: str, name: str):
    (envelope,) = get_adapter(system).parse(sample(name))
    return envelope


def test_jobcenter_referral_with_the_self_consent_releases_what_it_names(sample):
    env = _one(sample, "jobcenter", "zuweisung")
    states = [ConsentState(d) for d in parse_consents(sample("consent_self"))]
    (d,) = decide(env, client=CLIENT, consents=states, at=t("2026-11-20T09:15:00+01:00")).decisions
    assert d.recipient == "suchtberatung-diakonie-du"
    assert d.outcome == "partial"
    got = fates(d)
    assert {c for c, f in got.items() if f == "released"} == {
        "identity", "contact", "addiction", "support_plan"
    }
    assert got["health"] == "special_category_not_named"
    assert {got[c] for c in got if got[c] != "released" and c != "health"} == {
        "category_not_covered"
    }
    assert d.consents == ["cons-jc-2026-0815"] and d.legal_basis is None
    sent = release(env, d)
    assert sent is not None
    assert {str(c) for c in sent.categories} == {"identity", "contact", "addiction", "support_plan"}
    assert all(pid in {p.id for p in sent.parts} for pid in sent.reason_part_ids)


def test_jobcenter_referral_after_withdrawal_at_ten(sample):
    env = _one(sample, "jobcenter", "zuweisung")
    (directive,) = parse_consents(sample("consent_self"))
    state = ConsentState(directive, withdrawn_at=t("2026-11-20T10:00:00+01:00"))
    (before,) = decide(env, client=CLIENT, consents=[state], at=t("2026-11-20T09:59:00+01:00")
                       ).decisions
    assert before.outcome == "partial"
    (after,) = decide(env, client=CLIENT, consents=[state], at=t("2026-11-20T10:00:01+01:00")
                      ).decisions
    assert after.outcome == "block"
    assert {c for c, f in fates(after).items() if f == "withdrawn"} == {
        "identity", "contact", "addiction", "support_plan"
    }


def test_jobcenter_referral_after_the_consent_ran_out(sample):
    env = _one(sample, "jobcenter", "zuweisung")
    states = [ConsentState(d) for d in parse_consents(sample("consent_self"))]
    (d,) = decide(env, client=CLIENT, consents=states, at=t("2027-05-06T09:00:00+02:00")).decisions
    assert d.outcome == "block"
    assert fates(d)["identity"] == "expired"


def test_youth_office_case_conference_with_the_mothers_consent(sample):
    env = _one(sample, "jugendamt", "fall")
    states = [ConsentState(d) for d in parse_consents(sample("consent_guardian"))]
    result = decide(env, client=CHILD, consents=states, at=t("2026-11-20T10:00:00+01:00"))
    assert [d.recipient for d in result.decisions] == ["jobcenter-duisburg", "sozialamt-duisburg"]
    for d in result.decisions:
        got = fates(d)
        assert d.outcome == "partial"
        assert {c for c, f in got.items() if f == "released"} == {
            "identity", "household", "education", "support_plan"
        }
        # what the child entrusted does not pass on the mother's consent
        assert got["entrusted"] == "entruster_not_consented"
        assert got["child_protection"] == "category_not_covered"
        sent = release(env, d)
        assert sent is not None and "entrusted" not in {str(c) for c in sent.categories}


def test_youth_office_self_consent_of_the_child_needs_the_guardian(sample):
    env = _one(sample, "jugendamt", "fall")
    (mother,) = parse_consents(sample("consent_guardian"))
    child = mother.model_copy(update={"consent_id": "cons-child", "grantor": mother.grantor
                                      .model_copy(update={"relation": "self", "name": None})})
    result = decide(env, client=CHILD, consents=[ConsentState(child)],
                    at=t("2026-11-20T10:00:00+01:00"))
    for d in result.decisions:
        assert d.outcome == "block"
        assert fates(d)["identity"] == "guardian_required"
