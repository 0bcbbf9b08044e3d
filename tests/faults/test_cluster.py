"""Item 7: a three-node RabbitMQ cluster on this machine loses nothing when the node leading the
agency's quorum queue is killed mid-stream; gateways and workers move to the other nodes through
the failover URL list (``amqp://…node1;amqp://…node2;amqp://…node3``)."""

from __future__ import annotations

import pytest

from tests.faults.conftest import FULL, record
from tests.faults.stack import case_exports, in_background, ledger, wait_until

pytestmark = [pytest.mark.timeout(900 if FULL else 420)]

N = 200 if FULL else 24
QUEUE = "casebridge.agency.jobcenter-duisburg"


def test_cluster_leader_killed_mid_stream(stack_on_cluster, cluster) -> None:
    stack = stack_on_cluster()
    assert stack.broker_url.count(";") == 2  # every node, as production configures it
    stack.recipient_delay(0.05)
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    posted: list = []
    sender = in_background(lambda: posted.extend(
        stack.post_all(case_exports(N), threads=3, seconds=300)))
    # mid-stream: some messages through, the rest still to come
    wait_until(lambda: len(stack.records()) >= N // 3, 120, "nothing was delivered")
    leader = cluster.queue_leader(stack.vhost, QUEUE)
    # the clients sit on the leader (the first URL of their failover list): the kill cuts them off
    assert leader.port in cluster.connection_ports(stack.vhost)
    leader.kill()
    sender.join(timeout=360)
    assert not sender.is_alive()
    stack.settle({(p.message_id, r) for p in posted for r in p.queued}, seconds=240)
    new_leader = cluster.queue_leader(stack.vhost, QUEUE)
    assert new_leader is not leader and new_leader.running()
    led = ledger(stack, "cluster: queue leader node killed", posted)
    record(led)
    led.assert_nothing_lost()
    assert all(stack.alive(n) for n in ("gateway-1", "gateway-2", "worker-1", "worker-2"))
    assert sum(cluster.queue_counts(stack.vhost).values()) == 0
    # ... and they reconnected to the other nodes
    ports = cluster.connection_ports(stack.vhost)
    assert ports and leader.port not in ports, ports
