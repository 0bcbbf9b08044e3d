"""The samples shipped in the package are the agencies' published samples, unchanged.

The repository carries its own copies (``gateway/demo/samples``) and a SHA-256 manifest of the
published originals (``SHA256SUMS`` beside them), so these checks run on a clone alone. When the
interface folder is beside the checkout (``../shared/interfaces``), the published files are
compared with the same manifest too, which catches a vendor republishing a sample.
"""

from __future__ import annotations

import hashlib
from importlib.resources.abc import Traversable

import pytest

from casebridge.gateway.demo import sample_bytes, samples
from tests.conftest import REPO_ROOT, SAMPLES, SHARED_INTERFACES

MANIFEST = REPO_ROOT / "gateway" / "demo" / "samples" / "SHA256SUMS"


def manifest() -> dict[str, str]:
    """Relative path → SHA-256 (hex), read from the ``sha256sum`` format of SHA256SUMS."""
    entries: dict[str, str] = {}
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, relative = line.partition("  ")
        assert len(digest) == 64 and relative, f"malformed manifest line: {line!r}"
        entries[relative] = digest
    return entries


def shipped_files(folder: Traversable, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for entry in folder.iterdir():
        if entry.is_dir():
            found |= shipped_files(entry, f"{prefix}{entry.name}/")
        elif entry.name != "SHA256SUMS":
            found.add(f"{prefix}{entry.name}")
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_shipped_sample_is_in_the_manifest_and_back() -> None:
    assert shipped_files(samples()) == set(manifest())


def test_the_samples_the_tests_use_are_published_ones() -> None:
    assert set(SAMPLES.values()) <= set(manifest())
    # the 2026-12 additions are carried even before every adapter reads them
    assert {"jobcenter/kinderschutz-001.xml", "provider-fhir/kinderschutz-bundle-001.json"} <= set(
        manifest()
    )


@pytest.mark.parametrize("relative", sorted(manifest()))
def test_shipped_sample_matches_the_published_one(relative: str) -> None:
    expected = manifest()[relative]
    assert sha256(sample_bytes(relative)) == expected, f"{relative} differs from the manifest"
    published = SHARED_INTERFACES / relative
    if SHARED_INTERFACES.is_dir():
        # the interface folder is optional; when it is there it must agree with the manifest
        assert published.is_file(), f"{relative} is no longer published in {SHARED_INTERFACES}"
        assert sha256(published.read_bytes()) == expected, f"{relative} was republished"
