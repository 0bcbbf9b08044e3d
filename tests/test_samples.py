"""The demo samples shipped in the package are the agencies' samples, unchanged."""

from __future__ import annotations

import pytest

from casebridge.gateway.demo import sample_bytes
from tests.conftest import SAMPLES, SHARED_INTERFACES


@pytest.mark.parametrize("relative", sorted(SAMPLES.values()))
def test_shipped_sample_is_identical_to_the_interface_folder(relative: str) -> None:
    original = SHARED_INTERFACES / relative
    if not SHARED_INTERFACES.is_dir():
        pytest.skip("../shared/interfaces is not beside this checkout")
    assert sample_bytes(relative) == original.read_bytes()
