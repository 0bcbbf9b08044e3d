"""The fault suite on a private PostgreSQL and a private RabbitMQ node (see tests/faults/stack.py).

Every scenario posts through the gateways as the youth office would, injects its fault while
messages flow, waits (bounded) until every queued message reached an end, and asserts: answered
202 = delivered (by message id) + blocked as decided; no message pushed twice with a 2xx; DLQ
empty unless the scenario ends in a permanent failure; ``audit verify`` passes and the audit
entries match the decisions.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.conftest import FULL, record
from tests.faults.stack import (
    GUARDIAN_CONSENT,
    case_exports,
    copy_into_dlq,
    dead_pairs,
    during,
    in_background,
    ledger,
    wait_until,
)

pytestmark = [pytest.mark.timeout(900 if FULL else 300)]

N = 200 if FULL else 16
#: Seconds over which the outage scenarios post their messages.
SPREAD = 60.0 if FULL else 8.0


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


def test_gateway_sigkill_under_concurrent_posting(stack_on_node) -> None:
    stack = stack_on_node()
    kills = 6 if FULL else 2
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    posted: list = []
    sender = in_background(lambda: posted.extend(
        stack.post_all(case_exports(N), threads=6, spread=SPREAD)))
    for _ in range(kills):
        time.sleep(0.8)
        stack.kill("gateway-1")
        time.sleep(0.5)
        stack.start_gateway("gateway-1")
    sender.join(timeout=300)
    assert not sender.is_alive()
    stack.settle({(p.message_id, r) for p in posted for r in p.queued}, seconds=180)
    led = ledger(stack, f"gateway SIGKILL x{kills}", posted)
    record(led)
    assert sum(p.unavailable for p in posted) >= 1, "the kills must hit posts in flight"
    # a post whose gateway died resolves at once on the other gateway: never a 409 lock
    led.assert_nothing_lost(conflicts_allowed=False)


def _outage(stack, fault: str, seconds: float, stop, start, *, before_stop=None) -> None:
    """Messages flow, ``stop`` the server, wait ``seconds``, ``start`` it, check the ledger and
    that both gateways are ready again."""
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    raws = case_exports(N)
    posted = stack.post_all(raws[:2])  # the workers deliver before the fault ...
    stack.wait_delivering()
    sender = in_background(lambda: posted.extend(  # ... and the rest meets it
        stack.post_all(raws[2:], threads=3, seconds=seconds + 240, spread=SPREAD)))
    time.sleep(SPREAD / 4)
    if before_stop is not None:
        before_stop()
    down = time.monotonic()
    stop()
    time.sleep(seconds)
    start()
    up = time.monotonic()
    sender.join(timeout=seconds + 300)
    assert not sender.is_alive()
    stack.settle({(p.message_id, r) for p in posted for r in p.queued}, seconds=240)
    led = ledger(stack, fault, posted)
    record(led)
    assert during(posted, down, up) >= 1, "the outage must meet messages in flight"
    # an infrastructure outage never makes a dead letter
    led.assert_nothing_lost()
    for name in ("gateway-1", "gateway-2"):
        ready = httpx.get(f"{stack.gateway_urls[name]}/health/ready", timeout=10)
        assert ready.status_code == 200, f"{name} after the outage: {ready.text}"


def test_broker_node_stop_and_start_mid_stream(stack_on_node, rabbit) -> None:
    outage = 40 if FULL else 5
    [node] = rabbit.nodes
    _outage(stack_on_node(), f"broker node stopped {outage} s", outage, node.stop, node.start)


@pytest.mark.parametrize("outage", [20, 60] if FULL else [8])
def test_store_stop_and_start_mid_stream(stack_on_node, pg, outage) -> None:
    stack = stack_on_node()
    stack.recipient_delay(0.05)

    def pushes_in_flight() -> None:
        # the crash lands while the recipient is accepting pushes: their deliveries cannot be
        # recorded until the store is back, and they must not be pushed a second time
        stack.recipient_delay(1.0)
        wait_until(lambda: stack.inflight() >= 1, 60, "no push in flight")

    def crash() -> None:
        pg.stop(immediate=True)
        stack.recipient_delay(0.05)

    _outage(stack, f"store stopped {outage} s", outage, crash, pg.start,
            before_stop=pushes_in_flight)


#: With the production retry policy (6 attempts, back-off 0.5 s doubling, jitter) one message
#: uses up its budget in 16-24 s; a few messages keep this scenario short.
N_DEAD = 12 if FULL else 4


def _dead_letter_all(stack) -> tuple[list, set]:
    """Post while the recipient answers 503 until every queued message is a dead letter."""
    stack.recipient_mode("fail")
    stack.start_worker("worker-1", threads=4)
    stack.start_worker("worker-2", threads=4)
    posted = stack.post_all(case_exports(N_DEAD))
    queued = {(p.message_id, r) for p in posted for r in p.queued}
    wait_until(lambda: stack.workers_alive() or dead_pairs(stack) >= queued, 240,
               "not every message was dead-lettered", every=2.0)
    return posted, queued


def _dead_lettered_and_audited(stack, led, pairs: set) -> None:
    entries = {(e.message_id, e.recipient) for e in led.entries if e.kind == "dead_letter"}
    assert pairs <= entries, f"dead letters without an audit entry: {sorted(pairs - entries)[:3]}"
    replays = {(e.message_id, e.recipient) for e in led.entries if e.stage == "replay"}
    assert pairs <= replays, f"replays without an audit entry: {sorted(pairs - replays)[:3]}"


def test_recipient_503_beyond_the_retry_budget_then_replay(stack_on_node) -> None:
    stack = stack_on_node()
    posted, queued = _dead_letter_all(stack)
    letters = stack.dead_letters()
    assert {d["reason"] for d in letters} == {"retries_exhausted"}
    assert len(letters) == len(queued), "one dead-letter row per message"
    stack.recipient_mode("accept")
    stack.cli("dlq", "replay", "--all")
    stack.settle(queued, seconds=120)
    led = ledger(stack, "recipient 503 beyond the retry budget, then replay", posted)
    record(led)
    led.assert_nothing_lost()
    _dead_lettered_and_audited(stack, led, queued)


def test_replay_of_already_delivered_messages(stack_on_node) -> None:
    stack = stack_on_node()
    raws = case_exports(N)
    posted = stack.post_all(raws)  # no worker yet: everything waits in the queues
    agency = "jobcenter-duisburg"
    copied = copy_into_dlq(stack, agency, count=3, copies=2)
    assert len(stack.dead_letters()) == 3, "several copies of one message list as one row"
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    queued = {(p.message_id, r) for p in posted for r in p.queued}
    stack.settle(queued, seconds=180)
    before = len(stack.records())
    stack.cli("dlq", "replay", "--all")
    time.sleep(3)  # a replayed copy would be pushed now
    led = ledger(stack, "replay of already-delivered messages", posted)
    record(led)
    assert len(stack.records()) == before, "a replay of a delivered message pushed it again"
    led.assert_nothing_lost()
    replays = {(e.message_id, e.recipient) for e in led.entries if e.stage == "replay"}
    assert copied <= replays, "a skipped replay is audited"


def test_consent_withdrawn_before_replay(stack_on_node) -> None:
    stack = stack_on_node()
    posted, queued = _dead_letter_all(stack)
    stack.cli("consent", "withdraw", GUARDIAN_CONSENT, "--by", "fault suite")
    stack.recipient_mode("accept")
    stack.cli("dlq", "replay", "--all")
    time.sleep(3)
    led = ledger(stack, "consent withdrawn before replay", posted)
    record(led)
    assert led.delivered == set(), "nothing may reach a recipient after the withdrawal"
    assert led.blocked_delivery == queued
    led.assert_nothing_lost()
    _dead_lettered_and_audited(stack, led, queued)
