"""The consent gate: resolve, decide, audit one entry per recipient, then release."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from casebridge.canonical_model import Category, Identifier
from casebridge.consent.audit import AuditTrail
from casebridge.consent.gate import ConsentGate
from casebridge.consent.store import ConsentStore
from casebridge.errors import AuditError, InputError
from tests.consent.store_fixtures import *  # noqa: F403
from tests.consent.store_fixtures import AKTENZEICHEN, example_envelope

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RECIPIENT = "suchtberatung-diakonie-du"


@pytest.fixture
def gate(any_db, sample) -> ConsentGate:
    ConsentStore(any_db).import_fhir(sample("consent_self"), source="consent-self-001.json")
    return ConsentGate(any_db, minor_age=15)


def test_check_releases_the_minimised_envelope_after_auditing(gate: ConsentGate) -> None:
    envelope = example_envelope()
    result = gate.check(envelope, at=AT, stage="inbound")
    (decision,) = result.decisions.decisions
    assert decision.outcome == "partial"
    assert {str(c) for c in decision.released} == {"identity", "contact", "addiction",
                                                   "support_plan"}
    assert [(str(w.category), str(w.reason)) for w in decision.withheld] == [
        ("case_notes", "category_not_covered")]
    released = result.released[RECIPIENT]
    assert released.recipients == [RECIPIENT]
    assert Category.CASE_NOTES not in released.categories
    assert Category.CASE_NOTES in envelope.categories  # the input is not changed
    (entry,) = result.audit
    assert result.audit_seqs == (1,)
    assert (entry.stage, entry.recipient, entry.client_id, entry.outcome) == (
        "inbound", RECIPIENT, result.client_id, "partial")
    assert entry.consents == ["cons-jc-2026-0815"]
    assert entry.withheld == [["case_notes", "category_not_covered"]]
    dumped = json.dumps(entry.as_json(), ensure_ascii=False)
    for personal in ("Yılmaz", "Ayşe", "962D123456", "Alkohol", "Musterstraße"):
        assert personal not in dumped  # no names, identifiers or payload in the audit trail
    assert AuditTrail(gate.db).verify().ok


def test_unknown_client_is_blocked_and_audited(gate: ConsentGate) -> None:
    envelope = example_envelope()
    identity = envelope.parts[0]
    stranger = identity.model_copy(update={"content": identity.content.model_copy(
        update={"identifiers": [Identifier(system=AKTENZEICHEN, value="nobody")]})})
    envelope = envelope.model_copy(update={"parts": [stranger, *envelope.parts[1:]]})
    result = gate.check(envelope, at=AT, stage="inbound")
    (decision,) = result.decisions.decisions
    assert decision.outcome == "block" and not decision.released
    assert {str(w.reason) for w in decision.withheld} == {"unknown_client"}
    assert result.released == {} and result.client_id is None
    assert result.audit[0].client_id is None and result.audit[0].outcome == "block"


def test_one_audit_entry_per_recipient_and_only_covered_recipients_receive(gate) -> None:
    envelope = example_envelope(recipients=[RECIPIENT, "sozialamt-duisburg"])
    result = gate.check(envelope, at=AT, stage="inbound")
    outcomes = {d.recipient: str(d.outcome) for d in result.decisions.decisions}
    assert outcomes == {RECIPIENT: "partial", "sozialamt-duisburg": "block"}
    assert set(result.released) == {RECIPIENT}
    assert [e.recipient for e in result.audit] == [RECIPIENT, "sozialamt-duisburg"]


def test_withdrawal_blocks_at_delivery_but_the_earlier_release_stays_audited(gate) -> None:
    envelope = example_envelope()
    inbound = gate.check(envelope, at=AT, stage="inbound")
    assert RECIPIENT in inbound.released
    withdrawn_at = AT + timedelta(hours=1)
    ConsentStore(gate.db).withdraw("cons-jc-2026-0815", at=withdrawn_at, by="desk")
    just_before = gate.check_recipient(envelope, RECIPIENT, at=withdrawn_at - timedelta(seconds=1))
    assert RECIPIENT in just_before.released
    after = gate.check_recipient(envelope, RECIPIENT, at=withdrawn_at + timedelta(seconds=1))
    assert after.released == {}
    reasons = {str(w.category): str(w.reason) for w in after.decisions.decisions[0].withheld}
    assert reasons["identity"] == reasons["addiction"] == "withdrawn"
    assert reasons["case_notes"] == "category_not_covered"  # the reason nearest to the data
    trail = AuditTrail(gate.db)
    assert [e.stage for e in trail.entries()] == ["inbound", "delivery", "delivery"]
    report = trail.report(inbound.client_id)
    assert len(report["disclosures"]) == 2 and len(report["withheld_transfers"]) == 1
    assert report["recipients"][RECIPIENT]["consents"] == ["cons-jc-2026-0815"]
    with pytest.raises(InputError):
        gate.check_recipient(envelope, "jugendamt-duisburg", at=AT)


def test_nothing_is_released_when_the_audit_append_fails(gate: ConsentGate) -> None:
    gate.check(example_envelope(message_id="jobcenter-duisburg:first"), at=AT, stage="inbound")
    with gate.db.connection() as conn:
        # a damaged store: the client's chain has entries but its head is gone
        conn.execute(text("DELETE FROM audit_head"))
    with pytest.raises(AuditError):
        gate.check(example_envelope(), at=AT, stage="inbound")


def test_evaluate_is_a_dry_run(gate: ConsentGate) -> None:
    evaluation = gate.evaluate(example_envelope(), at=AT)
    assert evaluation.decisions.decisions[0].outcome == "partial"
    assert AuditTrail(gate.db).count() == 0
    with pytest.raises(InputError):
        gate.evaluate(example_envelope(), at=datetime(2026, 11, 20))
