"""``casebridge routes check [FILE]``: validation and the printed table of routes."""

from __future__ import annotations

import pytest

from casebridge.routing.routes import load_route_table
from casebridge.settings import get_settings
from tests.conftest import REPO_ROOT

DEPLOYED = REPO_ROOT / "deploy" / "config" / "routes.yaml"


@pytest.fixture
def no_route_table(monkeypatch):
    monkeypatch.delenv("CASEBRIDGE_ROUTE_TABLE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_check_prints_agencies_and_every_route(run_cli) -> None:
    result = run_cli("routes", "check", str(DEPLOYED))
    assert result.exit_code == 0, result.stderr
    table = load_route_table(DEPLOYED)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"{DEPLOYED}: valid, {len(table.config.agencies)} agencies, "
                        f"{len(table.config.routes)} routes")
    for agency in table.config.agencies:
        assert any(line.split()[:3] == [agency.id, str(agency.kind), agency.system]
                   for line in lines), agency.id
    header = next(line for line in lines if line.startswith("#  "))
    for column in ("senders", "purposes", "recipients", "statutory bases", "response days"):
        assert column in header
    rows = lines[lines.index(header) + 1:]
    assert len(rows) == len(table.config.routes)
    child_protection = next(r for r in rows if "child_protection" in r)
    assert "sgb-viii-8a, kkg-4" in child_protection and child_protection.endswith(" 3")


def test_check_without_file_uses_the_configured_table(run_cli, monkeypatch, no_route_table):
    missing = run_cli("routes", "check")
    assert missing.exit_code == 3 and "CASEBRIDGE_ROUTE_TABLE" in missing.stderr
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(DEPLOYED))
    get_settings.cache_clear()
    configured = run_cli("routes", "check")
    assert configured.exit_code == 0 and configured.stdout.startswith(f"{DEPLOYED}: valid")


def test_check_reports_an_invalid_table_by_field(run_cli, tmp_path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text(DEPLOYED.read_text().replace("system: sozialamt", "system: sozialmat", 1))
    result = run_cli("routes", "check", str(bad))
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith(
        f"casebridge: {bad}: agencies.1.system: no installed adapter provides system 'sozialmat'")
    assert "Traceback" not in result.stderr
