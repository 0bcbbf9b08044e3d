"""Property tests: canonical → FHIR (JSON and XML) → canonical loses nothing."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task
from hypothesis import given

from casebridge.adapters.provider_fhir import ProviderFhirAdapter
from casebridge.canonical_model import IdentityData, TransferEnvelope
from casebridge.errors import RenderError
from tests.adapters.json_strategies import fhir_referrals, fhir_status_updates
from tests.strategies import envelopes

ADAPTER = ProviderFhirAdapter()


@given(fhir_referrals())
def test_referral_bundles_round_trip_exactly(envelope: TransferEnvelope) -> None:
    as_json = ADAPTER.render_json(envelope)
    Bundle.model_validate_json(as_json)
    assert ADAPTER.parse(as_json) == [envelope]
    assert ADAPTER.parse(ADAPTER.render_xml(envelope)) == [envelope]


@given(fhir_status_updates())
def test_task_status_updates_round_trip_exactly(envelope: TransferEnvelope) -> None:
    as_json = ADAPTER.render_json(envelope)
    Task.model_validate_json(as_json)
    assert ADAPTER.parse(as_json) == [envelope]
    assert ADAPTER.parse(ADAPTER.render_xml(envelope)) == [envelope]


@given(fhir_referrals() | fhir_status_updates())
def test_rendered_json_is_what_fhir_resources_validated(envelope: TransferEnvelope) -> None:
    # render_json writes the built data without a fhir.resources model (nor its serialiser):
    # read back, it must be the very resource fhir.resources validates from the same data.
    as_json = ADAPTER.render_json(envelope)
    model = ADAPTER.resource(envelope)
    assert type(model).model_validate_json(as_json) == model


def _without_source(envelope: TransferEnvelope) -> dict[str, object]:
    return {p.id: p.model_copy(update={"source": None}) for p in envelope.parts}


@given(envelopes(max_parts=10))
def test_any_source_system_is_carried_recoverably(envelope: TransferEnvelope) -> None:
    if not any(isinstance(p.content, IdentityData) for p in envelope.parts):
        try:
            ADAPTER.render(envelope)
        except RenderError:
            return
        raise AssertionError("rendered a referral without a Patient")
    [back] = ADAPTER.parse(ADAPTER.render(envelope))
    assert _without_source(back) == _without_source(envelope)
    assert back.model_copy(update={"parts": [], "source_system": None}) == envelope.model_copy(
        update={"parts": [], "source_system": None})
