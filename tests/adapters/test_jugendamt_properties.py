"""Property tests: canonical → jugendamt-fallakte/3 → canonical loses nothing."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given

from casebridge.adapters.jugendamt import JugendamtAdapter
from casebridge.adapters.jugendamt.validate import schema
from casebridge.canonical_model import IdentityData, TransferEnvelope
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


def _without_source(envelope: TransferEnvelope) -> dict[str, object]:
    return {p.id: p.model_copy(update={"source": None}) for p in envelope.parts}


@given(envelopes(max_parts=10))
def test_any_source_system_is_carried_recoverably(envelope: TransferEnvelope) -> None:
    first = next((p for p in envelope.parts if isinstance(p.content, IdentityData)), None)
    if first is None or first.content.name is None:  # type: ignore[union-attr]
        try:
            ADAPTER.render(envelope)
        except RenderError:
            return
        raise AssertionError("rendered an export without the child's name")
    rendered = ADAPTER.render(envelope)
    VALIDATOR.validate(json.loads(rendered))
    [back] = ADAPTER.parse(rendered)
    assert _without_source(back) == _without_source(envelope)
    assert back.model_copy(update={"parts": [], "source_system": None}) == envelope.model_copy(
        update={"parts": [], "source_system": None})
