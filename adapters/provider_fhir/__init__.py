"""Provider adapter: FHIR R4 referral Bundles and Task status updates, JSON and XML."""

from casebridge.adapters.provider_fhir.adapter import ProviderFhirAdapter

__all__ = ["ProviderFhirAdapter"]
