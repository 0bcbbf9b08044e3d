"""The fault suite on a private PostgreSQL and a private RabbitMQ node (see tests/faults/stack.py).

Every scenario posts through the gateways as the youth office would, injects its fault while
messages flow, waits (bounded) until every queued message reached an end, and asserts: answered
202 = delivered (by message id) + blocked as decided; no message pushed twice with a 2xx; DLQ
empty unless the scenario ends in a permanent failure; ``audit verify`` passes and the audit
entries match the decisions.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FULL, record
from tests.faults.stack import case_exports, in_background, ledger

pytestmark = [pytest.mark.timeout(900 if FULL else 300)]

N = 200 if FULL else 16


def test_worker_sigkill_repeated(stack_on_node) -> None:
    stack = stack_on_node()
    kills = 8 if FULL else 3
    threads = 2
    stack.recipient_delay(0.05)  # a push takes a while, so kills land mid-push too
    stack.start_worker("worker-1", threads=threads)
    stack.start_worker("worker-2", threads=threads)
    posted: list = []
    sender = in_background(lambda: posted.extend(stack.post_all(case_exports(N))))
    for _ in range(kills):
        time.sleep(1.0)
        stack.kill("worker-1")
        stack.start_worker("worker-1")
    sender.join(timeout=300)
    assert not sender.is_alive()
    stack.settle({(p.message_id, r) for p in posted for r in p.queued}, seconds=180)
    led = ledger(stack, f"worker SIGKILL x{kills}", posted)
    record(led)
    # A worker killed after the recipient accepted a push but before it recorded the delivery
    # pushes that message again on redelivery -- at most one per delivery thread and kill; the
    # recipient recognises it by its Idempotency-Key.
    led.assert_nothing_lost(duplicates_allowed=kills * threads)
