"""Shared test fixtures: the real native samples, hypothesis profiles, service markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from casebridge.gateway.demo import sample_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The agencies' interface folder when it sits beside the checkout. Optional: the repository
#: carries copies of the published samples (gateway/demo/samples, checked by tests/test_samples.py).
SHARED_INTERFACES = REPO_ROOT.parent / "shared" / "interfaces"

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SAMPLES = {
    "zuweisung": "jobcenter/zuweisung-001.xml",
    "rueckmeldung": "jobcenter/rueckmeldung-001.xml",
    "fallmitteilung": "sozialamt/fallmitteilung-001.xml",
    "fall": "jugendamt/fall-001.json",
    "referral_bundle": "provider-fhir/referral-bundle-001.json",
    "task_update": "provider-fhir/task-update-001.json",
    "consent_self": "consent-fhir/consent-self-001.json",
    "consent_guardian": "consent-fhir/consent-guardian-001.json",
}


@pytest.fixture
def sample():
    """Load a native sample by short name (see SAMPLES) as bytes."""

    def load(name: str) -> bytes:
        return sample_bytes(SAMPLES[name])

    return load


class CliResult:
    """What one in-process run of the ``casebridge`` command produced."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``casebridge ARGS`` in-process through the real entry point (error mapping included).

    ``stdin`` may be given as bytes for commands reading ``-``.
    """
    import io
    import sys

    from casebridge.gateway.cli import main

    def run(*args: str, stdin: bytes | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["casebridge", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run
