"""A fifth agency system plugs in without editing casebridge.

``tests/example_adapter`` is a separate distribution (own pyproject.toml) registering its adapter
in the ``casebridge.adapters`` entry-point group. It is pip-installed into the running test
environment, a referral is routed through it end to end (gate, broker, worker, rendering, push)
and a status update comes back through its parser; afterwards it is uninstalled again.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import yaml

from casebridge.adapters import get_adapter, registry
from casebridge.canonical_model import CLIENT_ID_SYSTEM
from casebridge.consent.registry import ClientRegistry
from casebridge.errors import ConfigError, ModelValidationError, ParseError, RenderError
from casebridge.gateway.cli.demo import scenario_bytes
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.routes import demo_route_table_text, parse_route_table
from casebridge.routing.runtime import Routing
from tests.conftest import REPO_ROOT
from tests.routing.conftest import PUSH_URLS

DISTRIBUTION = "casebridge-example-adapter"
BUILT_INS = ["jobcenter", "jugendamt", "provider-fhir", "sozialamt"]
PROVIDER = "suchtberatung-diakonie-du"
PROVIDER_URL = "http://suchtberatung.test/inbox"


def pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def forget_plugin() -> None:
    importlib.invalidate_caches()
    registry.reload()
    for name in [m for m in sys.modules if m.startswith("casebridge_example_adapter")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Build from a copy, so the build leaves no egg-info or build/ folder in the repository.
    source = tmp_path_factory.mktemp("plugin") / "example_adapter"
    shutil.copytree(REPO_ROOT / "tests" / "example_adapter", source)
    pip("install", "--no-deps", "--no-build-isolation", str(source))
    forget_plugin()
    try:
        yield "beratung"
    finally:
        pip("uninstall", "-y", DISTRIBUTION)
        forget_plugin()
    # gone again: a table still naming it fails at load, listing what is installed now
    with pytest.raises(ConfigError, match="installed systems: " + ", ".join(BUILT_INS) + r"\)"):
        parse_route_table(route_table_with("beratung"), source="r.yaml", fmt="yaml")


def route_table_with(system: str) -> str:
    """The demo route table with the addiction counselling service running ``system``."""
    data = yaml.safe_load(demo_route_table_text())
    for agency in data["agencies"]:
        if agency["id"] in PUSH_URLS:
            agency["delivery"] = {"mode": "push", "url": PUSH_URLS[agency["id"]]}
        if agency["id"] == PROVIDER:
            agency.update(system=system, delivery={"mode": "push", "url": PROVIDER_URL})
    return yaml.safe_dump(data)


def test_installed_plugin_is_found_beside_the_built_ins(plugin: str) -> None:
    assert registry.systems() == sorted([*BUILT_INS, plugin])
    adapter = get_adapter(plugin, max_bytes=1234)
    assert (type(adapter).__module__, adapter.system, adapter.max_bytes) == (
        "casebridge_example_adapter", plugin, 1234)


def test_referral_routes_through_the_plugin_end_to_end(
    plugin: str, db, consents, recipients
) -> None:
    table = parse_route_table(route_table_with(plugin), source="routes.yaml", fmt="yaml")
    routing = Routing(routes=table, db=db, url="memory://", prefix=f"t{uuid.uuid4().hex[:10]}")
    try:
        [accepted] = routing.router().submit(
            sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter")
        assert [(r.recipient, r.queued) for r in accepted.recipients] == [(PROVIDER, True)]
        worker = routing.worker(push=recipients.client())
        worker.run(idle_timeout=0.3)
        worker.close()
        assert worker.counts == {"delivered": 1}
        [request] = recipients.requests
        assert str(request.url) == PROVIDER_URL
        assert request.headers["content-type"].startswith("application/vnd.beratung-fall+json")
        [received] = get_adapter(plugin).parse(request.content, source="delivered")
        assert received.message_id == "JC-DU-2026-000123"
        # only what the client consented to reached the plugin's system
        assert {p.category for p in received.parts} <= {
            "identity", "contact", "addiction", "support_plan"}
        assert "addiction" in {p.category for p in received.parts}
        assert b"Mietschulden" not in request.content

        # ... and the counselling service answers in its own format: parsed by the plugin,
        # rendered for the job centre by the built-in adapter (as in the demo: the client
        # consented to the report back, and her provider id is linked by a case worker)
        consents.import_fhir(scenario_bytes("consent-report-back-001.json"), source="scenario")
        clients = ClientRegistry(db)
        client = clients.find("urn:casebridge:id:jobcenter-duisburg:kundennummer", "962D123456")
        assert client is not None
        clients.link(client, CLIENT_ID_SYSTEM, "c-7f3e9a", by="test")
        [task] = get_adapter("provider-fhir").parse(
            sample_bytes("provider-fhir/task-update-001.json"))
        answer = get_adapter(plugin).render(task.model_copy(update={"source_system": plugin}))
        [back] = routing.router().submit(answer, system=plugin)
        assert [r.queued for r in back.recipients] == [True]
        recipients.requests.clear()
        worker = routing.worker(push=recipients.client())
        worker.run(idle_timeout=0.3)
        worker.close()
        [request] = recipients.requests
        assert str(request.url) == PUSH_URLS["jobcenter-duisburg"]
        [status] = get_adapter("jobcenter").parse(request.content)
        assert status.status is not None and status.status.status == "in_progress"
        assert status.correlation_id == "JC-DU-2026-000123"
    finally:
        routing.close()


def test_plugin_errors_name_positions_and_refuse_what_it_cannot_hold(plugin: str) -> None:
    adapter = get_adapter(plugin)
    with pytest.raises(ParseError) as info:
        adapter.parse(b'{"format": "beratung-fall/1", "geheim": "x"}', source="b.json")
    assert info.value.lines() == ["b.json:/geheim: unknown field"]
    with pytest.raises(ModelValidationError) as invalid:
        adapter.parse(b'{"format": "beratung-fall/1", "nachricht": "B-1"}', source="b.json")
    assert all(line.startswith("b.json:") for line in invalid.value.lines())
    [referral] = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))
    conference = referral.model_copy(update={"statutory": None, "conference": {"location": "x"}})
    with pytest.raises(RenderError, match="no field for conference"):
        adapter.render(conference)


def test_route_table_naming_a_missing_system_lists_the_installed_ones(plugin: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_route_table(route_table_with("beratungsstelle"), source="r.yaml", fmt="yaml")
    [line] = info.value.lines()
    assert "no installed adapter provides system 'beratungsstelle'" in line
    assert f"installed systems: {', '.join(sorted([*BUILT_INS, plugin]))}" in line

