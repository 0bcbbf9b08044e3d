"""JSON round trips of the envelope, and agreement with its published JSON Schema."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import given

from casebridge.canonical_model import TransferEnvelope, validate_json
from casebridge.canonical_model.schema import example_envelope, schema_documents
from tests.strategies import envelopes

ENVELOPE_SCHEMA = schema_documents()["envelope.schema.json"]
VALIDATOR = jsonschema.Draft202012Validator(ENVELOPE_SCHEMA)


@given(envelopes())
def test_envelope_json_round_trip_is_lossless(envelope: TransferEnvelope) -> None:
    again = validate_json(TransferEnvelope, envelope.model_dump_json())
    assert again == envelope
    assert again.model_dump_json() == envelope.model_dump_json()


@given(envelopes())
def test_serialised_envelopes_satisfy_the_published_schema(envelope: TransferEnvelope) -> None:
    VALIDATOR.validate(json.loads(envelope.model_dump_json()))


def test_example_envelope_satisfies_the_published_schema() -> None:
    envelope = example_envelope()
    VALIDATOR.validate(json.loads(envelope.model_dump_json()))
    assert envelope.categories == {"identity", "contact", "addiction", "support_plan",
                                   "case_notes"}


@given(envelopes())
def test_minimisation_keeps_exactly_the_wanted_categories(envelope: TransferEnvelope) -> None:
    keep = {p.category for p in envelope.parts[::2]}
    slim = envelope.only_categories(keep)
    assert slim.categories == keep
    assert {p.id for p in slim.parts} == {p.id for p in envelope.parts if p.category in keep}
    assert set(slim.reason_part_ids) <= {p.id for p in slim.parts}
