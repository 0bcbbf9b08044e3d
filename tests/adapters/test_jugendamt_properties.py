"""Property tests: canonical → jugendamt-fallakte/3 → canonical loses nothing."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given

from casebridge.adapters.jugendamt import JugendamtAdapter
from casebridge.adapters.jugendamt.validate import schema
from casebridge.canonical_model import TransferEnvelope
from casebridge.errors import RenderError
from tests.adapters.json_strategies import jugendamt_envelopes
from tests.strategies import envelopes

ADAPTER = JugendamtAdapter()
VALIDATOR = jsonschema.Draft202012Validator(schema())


@given(jugendamt_envelopes())
def test_expressible_content_round_trips_exactly(envelope: TransferEnvelope) -> None:
    rendered = ADAPTER.render(envelope)
    VALIDATOR.validate(json.loads(rendered))
    assert ADAPTER.parse(rendered) == [envelope]


@given(jugendamt_envelopes())
def test_expressible_content_uses_native_fields_not_carried_notes(
        envelope: TransferEnvelope) -> None:
    doc = json.loads(ADAPTER.render(envelope))
    assert not any("[casebridge-teil]" in n["text"] for n in doc["fall"].get("notizen", []))


@given(envelopes(max_parts=10))
def test_any_source_system_keeps_every_category(envelope: TransferEnvelope) -> None:
    try:
        rendered = ADAPTER.render(envelope)
    except RenderError as exc:
        # Refused with a reason: no named client, an adult with no child, a purpose or
        # statutory claim the youth office does not take.
        assert exc.message
        return
    doc = json.loads(rendered)
    VALIDATOR.validate(doc)
    assert not any("casebridge" in n["text"] for n in doc["fall"].get("notizen") or [])
    [back] = ADAPTER.parse(rendered)
    assert {p.category for p in envelope.parts} <= {p.category for p in back.parts}
    special = {"health", "addiction", "criminal", "entrusted", "child_protection"}
    assert {p.category for p in back.parts} & special == {
        p.category for p in envelope.parts} & special
