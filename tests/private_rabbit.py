"""A private RabbitMQ node that a test may stop and start (never the shared one on 5672).

Set up as ``/work/shared/private-servers.md`` describes: its own folder owned by ``rabbitmq``
with a config (loopback listener, guest allowed), no plugins, its own node name, ports and
Erlang cookie; run as the ``rabbitmq`` user and controlled with ``rabbitmqctl -n``. The fixture
that starts it stops it and removes its folder whatever the test did.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.private_pg import PORT_OFFSET

SBIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRabbit:
    """One node on ``port`` (distribution port ``dist_port``); :meth:`stop` / :meth:`start`."""

    def __init__(self, port: int, dist_port: int) -> None:
        if not (SBIN / "rabbitmq-server").exists() or shutil.which("runuser") is None:
            pytest.skip("RabbitMQ server binaries are not installed")
        port, dist_port = port + PORT_OFFSET, dist_port + PORT_OFFSET
        self.port = port
        self.name = f"cbt{port}_{secrets.token_hex(3)}@localhost"
        self.folder = Path(tempfile.mkdtemp(prefix=f"cb-rmq{port}-"))
        (self.folder / "home").mkdir()
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users.guest = true\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        cookie = self.folder / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.folder)], check=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(self.folder / "home"), "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{port}//"
        self.running = False
        try:
            self.start()
        except BaseException:
            self.close()  # the fixture never sees this object: clean up here
            raise

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        env_args = [f"{k}={v}" for k, v in self.env.items()]
        subprocess.run(["runuser", "-u", "rabbitmq", "--", "env", *env_args, *cmd],
                       check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        """Start the node and wait until it serves AMQP."""
        self.running = True
        self._run(str(SBIN / "rabbitmq-server"), "-detached")
        # ``wait`` first waits for the pid file (the VM may not be up yet), then for the app
        self._run(str(SBIN / "rabbitmqctl"), "-n", self.name, "wait",
                  str(self.folder / "pid"), "--timeout", "90")

    def stop(self) -> None:
        """Stop the whole node (the broker is gone for its clients)."""
        self._run(str(SBIN / "rabbitmqctl"), "-n", self.name, "stop")
        self.running = False

    def close(self) -> None:
        """Stop if running and remove the folder (the finaliser)."""
        if self.running:
            try:
                self.stop()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
            # the node's own pid (written by it): never another process
            pid_file = self.folder / "pid"
            pid = pid_file.read_text().strip() if pid_file.exists() else ""
            if pid.isdigit():
                subprocess.run(["kill", "-9", pid], check=False, capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)
