"""The pure consent engine alone: ``decide`` on a 5-part envelope, in memory, no store.

A client has 1, 10 or 100 consents on record (most for other routes, one covering the route);
the envelope is the canonical example referral (identity, contact, addiction, support plan,
case notes). The baseline is building the same MessageDecisions value without evaluating any
consent, so the ratio shows what the rules themselves cost over the result's construction.
``release`` (the minimised copy) is reported beside it.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

from bench.common import Row, percentiles, rate
from casebridge.canonical_model import ConsentDirective, TransferEnvelope
from casebridge.consent.decision import Decision, MessageDecisions, WithheldCategory
from casebridge.consent.engine import ClientFacts, ConsentState, decide, release

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_EXAMPLE = (
    Path(__file__).resolve().parent.parent / "canonical_model/examples/referral-envelope.json"
)


def _consent(i: int, recipient: str) -> ConsentState:
    directive = ConsentDirective.model_validate({
        "consent_id": f"c-{i}", "status": "active",
        "client_identifiers": [{"system": "urn:casebridge:id:jobcenter-duisburg:kundennummer",
                                "value": "962D123456"}],
        "client_birth_date": date(1988, 4, 12), "grantor": {"relation": "self"},
        "recorded_by": "jobcenter-duisburg", "given_at": datetime(2026, 11, 5, tzinfo=UTC),
        "form": "written",
        "evidence": {"title": "Einwilligung", "content_type": "application/pdf"},
        "disclosers": ["jobcenter-duisburg"], "recipients": [recipient],
        "purposes": ["referral"],
        "categories": ["identity", "contact", "addiction", "support_plan"],
    }, strict=False)
    return ConsentState(directive)


def _baseline(envelope: TransferEnvelope) -> MessageDecisions:
    recipient = envelope.recipients[0]
    return MessageDecisions(message_id=envelope.message_id, decisions=[Decision(
        recipient=recipient, outcome="partial",
        released=["identity", "contact", "addiction", "support_plan"],
        withheld=[WithheldCategory(category="case_notes", reason="category_not_covered")],
        consents=["c-0"],
    )])


def run(quick: bool) -> list[Row]:
    """Decisions per second and p50/p99 latency of the pure engine."""
    envelope = TransferEnvelope.model_validate_json(_EXAMPLE.read_bytes(), strict=False)
    recipient = envelope.recipients[0]
    client = ClientFacts("client-1", birth_date=date(1988, 4, 12))
    n = 500 if quick else 5000
    base_rate = rate(lambda: _baseline(envelope), n)
    rows = []
    for size in (1, 10, 100):
        states = [_consent(0, recipient)] + [_consent(i, f"other-{i}") for i in range(1, size)]

        def once(states: list[ConsentState] = states) -> MessageDecisions:
            return decide(envelope, client=client, consents=states, at=AT)

        assert once().decisions[0].outcome == "partial"
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            once()
            samples.append(time.perf_counter() - start)
        p50, p99 = percentiles(samples)
        rows.append(Row("consent_engine", f"decide/s, {size} consents", rate(once, n),
                        "MessageDecisions construction/s", base_rate))
        rows.append(Row("consent_engine", f"p50 ms, {size} consents", p50))
        rows.append(Row("consent_engine", f"p99 ms, {size} consents", p99, target="< 2"))
    decision = decide(envelope, client=client, consents=[_consent(0, recipient)],
                      at=AT).decisions[0]
    rows.append(Row("consent_engine", "release/s", rate(lambda: release(envelope, decision), n),
                    "MessageDecisions construction/s", base_rate))
    return rows
