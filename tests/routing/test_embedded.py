"""The embedded broker (leased SQLAlchemy transport on SQLite): nothing lost across a crash."""

from __future__ import annotations

import subprocess
import sys
import time

from kombu import Exchange, Producer, Queue

from casebridge.routing.topology import connect

SCRIPT = """
import os, sys
from kombu import Exchange, Queue
from casebridge.routing.topology import connect
conn = connect(sys.argv[1])
q = Queue("q", Exchange("x", type="topic"), routing_key="k")(conn.default_channel)
q.declare()
for _ in range(int(sys.argv[2])):
    m = q.get(no_ack=False)
    assert m is not None
os._exit(9)  # die without acking and without kombu's shutdown restore, like SIGKILL
"""


def _queue(conn):
    queue = Queue("q", Exchange("x", type="topic"), routing_key="k")(conn.default_channel)
    queue.declare()
    return queue


def _publish(conn, n):
    producer = Producer(conn.default_channel)
    for i in range(n):
        producer.publish(f"m{i}".encode(), exchange="x", routing_key="k",
                         content_type="application/octet-stream", content_encoding="binary",
                         delivery_mode=2, declare=[_queue(conn)])


def test_messages_survive_a_process_restart(tmp_path):
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    conn = connect(url)
    _publish(conn, 5)
    conn.release()
    again = connect(url)
    queue = _queue(again)
    bodies = []
    while (m := queue.get(no_ack=False)) is not None:
        bodies.append(m.body)
        m.ack()
    assert bodies == [f"m{i}".encode() for i in range(5)]
    assert queue.get(no_ack=True) is None  # acked rows are gone
    again.release()


def test_messages_taken_by_a_killed_consumer_come_back_after_the_lease(tmp_path):
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    conn = connect(url)
    _publish(conn, 4)
    conn.release()
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, "3"], timeout=60, check=False)
    assert done.returncode == 9
    recovered = connect(url, lease_seconds=0.5)
    queue = _queue(recovered)
    first = queue.get(no_ack=False)
    assert first is not None and first.body == b"m3"  # the untouched one; three are leased
    first.ack()
    assert queue.get(no_ack=False) is None
    time.sleep(1.1)
    bodies = []
    while (m := queue.get(no_ack=False)) is not None:
        bodies.append(m.body)
        m.ack()
    assert sorted(bodies) == [b"m0", b"m1", b"m2"]
    recovered.release()


def test_requeue_makes_the_same_row_visible_again(tmp_path):
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    conn = connect(url)
    _publish(conn, 1)
    queue = _queue(conn)
    message = queue.get(no_ack=False)
    assert message is not None
    message.requeue()
    again = queue.get(no_ack=False)
    assert again is not None and again.body == b"m0"
    again.ack()
    assert queue.get(no_ack=True) is None
    conn.release()
