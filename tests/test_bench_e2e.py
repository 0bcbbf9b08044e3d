"""The end-to-end benchmark's short form (``python -m bench.run --only e2e --quick``) as a test.

It runs the production topology on the machine's RabbitMQ and PostgreSQL (a fresh vhost and
database, removed afterwards): every referral answered 202 is delivered exactly once, every row
has its same-run baseline, and one inbound request costs no more SQL statements, commits and pool
checkouts than measured when issue 15 was done (a regression guard, not a speed target).
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is not installed")
def test_the_e2e_benchmark_smoke_delivers_everything_once() -> None:
    from bench import bench_e2e

    rows = {(r.metric, r.baseline_name): r for r in bench_e2e.run(quick=True)}
    e2e = [r for (metric, _), r in rows.items() if metric.startswith("referrals/s")]
    assert len(e2e) == 2  # against both raw baselines, 1+1 processes
    for row in e2e:
        assert row.value > 0 and row.baseline and row.baseline > 0
    assert not e2e[0].note.startswith("NOT ALL"), e2e[0].note
    assert "'202': 60" in e2e[0].note
    cpu = rows[("gateway server CPU ms/request", "bare FastAPI 202")]
    assert cpu.value > 0 and cpu.baseline and cpu.baseline > 0
    per_request = {metric.removeprefix("per inbound request: "): r.value
                   for (metric, _), r in rows.items() if metric.startswith("per inbound")}
    # issue 15 measured 8 statements, 2 commits, 3 checkouts (12, 3 and 6 before it)
    assert per_request["statements"] <= 8
    assert per_request["commits"] <= 2
    assert per_request["pool checkouts"] <= 3
