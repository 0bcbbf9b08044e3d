"""Demo data: copies of the pilot region's native samples and consents (../shared/interfaces).

Shipped as package data so ``casebridge demo`` works from a normal install;
tests/test_samples.py keeps them identical to the interface folder when it is present.
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
