"""checkov: no insecure setting in the image's build file, the manifests, or committed secrets.

checkov has no Docker Compose framework; compose.yaml is covered by its secrets scan here and by
the semantic rules of test_compose.py.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, K8S, checkov_executable

#: Findings consciously skipped with an in-file annotation, and why (the annotation says it too).
ACCEPTED_SKIPS = {
    # Image digests are unknown before a release build; kustomize `images:` pins them then.
    "CKV_K8S_43": 4,
    # The ingress annotation auth-tls-secret names a Secret object ("casebridge/agency-client-ca").
    "CKV_SECRET_6": 1,
}


def _checkov(*args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [checkov_executable(), "--skip-download", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def _failures(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{check['check_id']} {check['file_path']}:{check['resource']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]


def _skips(reports: list[dict[str, Any]]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for report in reports:
        for check in report.get("results", {}).get("skipped_checks", []):
            counted[check["check_id"]] = counted.get(check["check_id"], 0) + 1
    return counted


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    # checkov ignores -f when -d is given: files and the manifest folder are two runs.
    files = _checkov(
        "-f", str(DEPLOY / "Dockerfile"),
        "-f", str(DEPLOY / "compose.yaml"),
        "-f", str(DEPLOY / "nginx" / "casebridge.conf"),
        "--framework", "dockerfile", "secrets",
    )  # fmt: skip
    return files + _checkov("-d", str(K8S), "--framework", "kubernetes", "secrets")


@pytest.mark.timeout(1200)  # the first run may create checkov's own virtual environment
def test_checkov_finds_no_insecure_setting(reports) -> None:
    assert _failures(reports) == []
    summaries = [(r["check_type"], r["summary"]) for r in reports]
    passed = {kind: s["passed"] for kind, s in summaries}
    assert passed["dockerfile"] > 50 and passed["kubernetes"] > 200  # everything was checked
    assert all(s["parsing_errors"] == 0 for _, s in summaries)


def test_only_the_recorded_findings_are_skipped(reports) -> None:
    assert _skips(reports) == ACCEPTED_SKIPS


def test_checkov_catches_an_insecure_pod(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: casebridge}\n"
        "spec:\n  containers:\n    - name: c\n      image: casebridge:latest\n"
        "      securityContext: {privileged: true}\n"
    )
    report = _checkov("-f", str(bad), "--framework", "kubernetes")
    failed = {f.split()[0] for f in _failures(report)}
    assert {"CKV_K8S_16", "CKV_K8S_14"} <= failed  # privileged container, :latest image
