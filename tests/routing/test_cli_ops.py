"""``casebridge worker|status|dlq|demo`` through the real entry point, on the embedded broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from casebridge.consent.store import ConsentStore
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.routes import demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.standin import StandIn
from casebridge.settings import get_settings


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Settings pointing at a temp data dir and a route table with local stand-ins."""
    stand_ins = {a: StandIn(a) for a in ("jobcenter-duisburg", "sozialamt-duisburg")}
    data = yaml.safe_load(demo_route_table_text())
    data["retry"] = {"max_attempts": 2, "initial_backoff": 0.01, "max_backoff": 0.02,
                     "jitter": 0}
    for agency in data["agencies"]:
        if agency["id"] in stand_ins:
            agency["delivery"] = {"mode": "push", "url": stand_ins[agency["id"]].url}
    table = tmp_path / "routes.yaml"
    table.write_text(yaml.safe_dump(data))
    for key in list(os.environ):
        if key.startswith("CASEBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEBRIDGE_ROUTE_TABLE", str(table))
    get_settings.cache_clear()
    routing = Routing.from_settings()
    store = ConsentStore(routing.db)
    store.import_fhir(sample_bytes("consent-fhir/consent-guardian-001.json"), source="g")
    yield routing, stand_ins
    routing.close()
    for s in stand_ins.values():
        s.close()
    get_settings.cache_clear()


def test_worker_delivers_and_status_reports(env, run_cli):
    routing, stand_ins = env
    routing.router().submit(sample_bytes("jugendamt/fall-001.json"), system="jugendamt")
    result = run_cli("worker", "--idle-exit", "0.5")
    assert result.exit_code == 0, result.stderr
    assert "delivered: 2" in result.stdout
    assert [len(s.received) for s in stand_ins.values()] == [1, 1]
    assert run_cli("status", "--overdue").stdout.split("\n")[:2] == [
        "no overdue referrals", "no overdue measures"]
    missing = run_cli("status", "NOPE-1")
    assert missing.exit_code == 4 and "not known" in missing.stderr
    assert run_cli("status").exit_code == 2


def test_dlq_list_show_replay(env, run_cli):
    routing, stand_ins = env
    for s in stand_ins.values():
        s.mode = "fail"
    routing.router().submit(sample_bytes("jugendamt/fall-001.json"), system="jugendamt")
    assert "dead: 2" in run_cli("worker", "--idle-exit", "0.5").stdout
    listed = json.loads(run_cli("dlq", "list", "--json").stdout)
    assert {d["reason"] for d in listed} == {"retries_exhausted"}
    shown = run_cli("dlq", "show", listed[0]["id"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == listed[0]["id"]
    assert run_cli("dlq", "show", "d-none").exit_code == 4
    assert run_cli("dlq", "replay").exit_code == 2
    for s in stand_ins.values():
        s.mode = "accept"
    replayed = run_cli("dlq", "replay", "--all")
    assert replayed.exit_code == 0 and "2 of 2 requeued" in replayed.stdout
    assert "delivered: 2" in run_cli("worker", "--idle-exit", "0.5").stdout
    assert run_cli("dlq", "list").stdout.strip() == "the dead-letter queue is empty"
    assert sum(len(s.received) for s in stand_ins.values()) == 2


def test_worker_without_route_table_is_a_config_error(tmp_path, monkeypatch, run_cli):
    for key in list(os.environ):
        if key.startswith("CASEBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    result = run_cli("worker", "--idle-exit", "0.1")
    get_settings.cache_clear()
    assert result.exit_code == 3 and "CASEBRIDGE_ROUTE_TABLE" in result.stderr


def test_demo_runs_the_whole_exchange_and_says_how_to_inspect_what_it_kept(tmp_path, monkeypatch):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    environment["TMPDIR"] = str(tmp_path)  # the kept data directory is removed with tmp_path
    proc = subprocess.run([sys.executable, "-m", "casebridge", "demo", "--keep"],
                          capture_output=True, text=True, env=environment, timeout=120,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    inspect_kept_demo_data(out, environment, tmp_path, monkeypatch)
    assert "suchtberatung-diakonie-du received" in out  # pull
    assert "jobcenter-duisburg received" in out and "Rueckmeldung" in out  # push + status back
    assert "BLOCK, NOT SENT" in out
    assert "blocked (withdrawn)" in out and "recipients received 0 copies" in out
    assert "requested -> in_progress" in out
    assert "withheld: entrusted" in out
    assert "jugendamt-duisburg: OVERRIDE, queued" in out and "awaiting review" in out
    assert "audit chain: VERIFIED" in out and "duplicate deliveries: 0" in out
    assert "Traceback" not in proc.stderr


def test_parallel_worker_processes_share_the_queue(env, tmp_path):
    routing, stand_ins = env
    raw = sample_bytes("jugendamt/fall-001.json")
    router = routing.router()
    for i in range(6):
        router.submit(raw.replace(b"2026-11-21T11:30:00", f"2026-11-21T12:00:{i:02d}".encode()),
                      system="jugendamt")
    environment = {k: v for k, v in os.environ.items()}
    proc = subprocess.run([sys.executable, "-m", "casebridge", "worker", "--concurrency", "2",
                           "--idle-exit", "1"], capture_output=True, text=True,
                          env=environment, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(len(s.received) for s in stand_ins.values()) == [6, 6]
    assert sum(s.duplicates() for s in stand_ins.values()) == 0


def test_status_shows_lifecycle_and_overdue_referrals(env, run_cli):
    from datetime import UTC, datetime, timedelta

    from casebridge.adapters import get_adapter
    from casebridge.routing.status import record_referral

    routing, _stand_ins = env
    ConsentStore(routing.db).import_fhir(sample_bytes("consent-fhir/consent-self-001.json"),
                                         source="s")
    routing.router().submit(sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter")
    assert "delivered: 1" in run_cli("worker", "--idle-exit", "0.5").stdout  # pull outbox
    shown = run_cli("status", "JC-DU-2026-000123")
    assert shown.exit_code == 0
    assert "referral JC-DU-2026-000123: requested" in shown.stdout
    assert "to suchtberatung-diakonie-du" in shown.stdout and "OVERDUE" not in shown.stdout
    report = json.loads(run_cli("status", "JC-DU-2026-000123", "--json").stdout)
    assert report["status"] == "requested" and report["response_days"] == 10
    old = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))[0]
    old = old.model_copy(update={"message_id": "JC-DU-2026-000001"})
    with routing.db.session() as session:
        record_referral(session, old, ["suchtberatung-diakonie-du"],
                        at=datetime.now(UTC) - timedelta(days=30), response_days=10)
    overdue = run_cli("status", "--overdue")
    assert "JC-DU-2026-000001" in overdue.stdout and "JC-DU-2026-000123" not in overdue.stdout
    assert "OVERDUE" in run_cli("status", "JC-DU-2026-000001").stdout
    listed = json.loads(run_cli("status", "--overdue", "--json",
                                "--sender", "jobcenter-duisburg").stdout)
    assert [r["referral_id"] for r in listed["referrals"]] == ["JC-DU-2026-000001"]


def inspect_kept_demo_data(out: str, environment: dict[str, str], cwd, monkeypatch) -> None:
    """The settings the demo prints at its end let the ordinary commands read its data."""
    import shlex

    tail = out[out.index("data kept in "):]
    exports = dict(line.strip().removeprefix("export ").split("=", 1)
                   for line in tail.splitlines() if line.strip().startswith("export "))
    assert set(exports) == {"CASEBRIDGE_DATA_DIR", "CASEBRIDGE_ROUTE_TABLE",
                            "CASEBRIDGE_BROKER_PREFIX"}
    env = environment | {k: shlex.split(v)[0] for k, v in exports.items()}
    suggested = [shlex.split(line.split("#")[0]) for line in tail.splitlines()
                 if line.strip().startswith("casebridge ")]

    def run(args: list[str]) -> str:
        proc = subprocess.run([sys.executable, "-m", "casebridge", *args[1:]],
                              capture_output=True, text=True, env=env, timeout=120,
                              check=False, cwd=cwd)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        return proc.stdout + proc.stderr

    outputs = {tuple(args[1:3]): run(args) for args in suggested if args[1] != "serve"}
    # 14 of the consent exchange, 2 of the child-protection notification (inbound, delivery),
    # the consent desk's link of the mother and her report (both audited)
    assert "18 entries verified" in outputs[("audit", "verify")]
    assert ("Jobcenter Duisburg folgende Daten über Sie an Suchtberatung der Diakonie Duisburg "
            "übermittelt: Suchtmittelkonsum") in outputs[("audit", "report")]
    assert "in_progress" in outputs[("status", "JC-DU-2026-000123")]
    # serve: the gateway on those settings is ready (database and broker reachable)
    from fastapi.testclient import TestClient

    from casebridge.db import reset_databases
    from casebridge.gateway.app import create_app
    from casebridge.settings import Settings

    assert ["casebridge", "serve"] in suggested
    for key in exports:
        monkeypatch.setenv(key, env[key])
    try:
        with TestClient(create_app(Settings())) as client:
            assert client.get("/health/ready").status_code == 200
    finally:
        reset_databases()
