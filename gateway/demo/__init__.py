"""Demo data: copies of the agencies' published native samples and consents.

The repository carries them (``samples/``, with the SHA-256 manifest ``samples/SHA256SUMS`` of the
published originals) and ships them as package data, so ``casebridge demo`` and the tests need
nothing beside the checkout; tests/test_samples.py checks the copies against the manifest, and
against the interface folder (``../shared/interfaces``) when it is present.
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable


def samples() -> Traversable:
    """The samples folder (``jobcenter/``, ``sozialamt/``, ``jugendamt/``, ``provider-fhir/``,
    ``consent-fhir/``)."""
    return importlib.resources.files("casebridge.gateway.demo").joinpath("samples")


def sample_bytes(relative: str) -> bytes:
    """The bytes of one sample, e.g. ``sample_bytes("jobcenter/zuweisung-001.xml")``."""
    return samples().joinpath(relative).read_bytes()
