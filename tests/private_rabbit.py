"""A private RabbitMQ node that a test may stop and start (never the shared one on 5672).

One :class:`tests.faults.servers.RabbitNode` (the fault suite's node: its own folder owned by
``rabbitmq``, a loopback listener, no plugins, its own name, ports and Erlang cookie), started by
the fixture that owns it and stopped, with its folder removed, whatever the test did.
"""

from __future__ import annotations

import secrets
import shutil

import pytest

from tests.faults.servers import RabbitNode, available, workspace
from tests.private_pg import PORT_OFFSET


class PrivateRabbit:
    """One node on ``port`` (distribution port ``dist_port``); :meth:`stop` / :meth:`start`."""

    def __init__(self, port: int, dist_port: int) -> None:
        reason = available()
        if reason is not None:
            pytest.skip(reason)
        port, dist_port = port + PORT_OFFSET, dist_port + PORT_OFFSET
        self.port = port
        self.root = workspace(f"cb-rmq{port}-")
        self.node = RabbitNode(self.root, f"cbt{port}_{secrets.token_hex(3)}", port, dist_port,
                               secrets.token_hex(16))
        self.url = f"amqp://guest:guest@127.0.0.1:{port}//"
        try:
            self.node.prepare()
            self.start()
        except BaseException:
            self.close()  # the fixture never sees this object: clean up here
            raise

    def start(self) -> None:
        """Start the node and wait until it serves AMQP."""
        self.node.start()

    def stop(self) -> None:
        """Stop the whole node (the broker is gone for its clients)."""
        self.node.stop()

    def close(self) -> None:
        """Stop (or kill) the node and remove its folder (the finaliser)."""
        self.node.destroy()
        shutil.rmtree(self.root, ignore_errors=True)
