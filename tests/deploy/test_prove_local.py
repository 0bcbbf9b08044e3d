"""The production topology proven by a run (deploy/prove_local.py) on this machine's servers."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from types import ModuleType

import pytest

from tests.deploy.conftest import DEPLOY

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture(scope="module")
def prove() -> ModuleType:
    if not shutil.which("rabbitmqctl"):
        pytest.fail("rabbitmqctl is needed to create the proof's broker user and vhost")
    spec = importlib.util.spec_from_file_location("prove_local", DEPLOY / "prove_local.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["prove_local"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_gateways_and_workers_carry_the_demo_traffic_in_production_mode(prove) -> None:
    with prove.topology(gateways=2, workers=2) as top:
        proof = prove.run(top)
        names = (top.vhost, top.database)
    assert proof.problems == []
    assert proof.posted == len(prove.TRAFFIC)
    assert proof.queued >= 3 and proof.not_sent >= 1  # the blocked social-office transfer
    assert proof.delivered_push + proof.delivered_outbox == proof.queued
    assert proof.delivered_outbox >= 1  # the pull agency fetched through the gateway
    assert proof.duplicates == 0
    assert proof.referral_status not in ("", "requested")
    assert set(proof.queue_types.values()) == {"quorum"}
    assert proof.audit_verify.startswith("audit chain ok")
    _assert_removed(*names)


def _assert_removed(vhost: str, database: str) -> None:
    import subprocess

    import psycopg

    vhosts = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert vhost not in vhosts
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    assert found is None
