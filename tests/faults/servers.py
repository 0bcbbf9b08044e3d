"""Private RabbitMQ nodes and a private PostgreSQL cluster for the fault suite.

The machine's shared servers (5432, 5672) are used by everything else here and must never be
stopped, so the fault suite starts servers of its own from the same installed binaries, in a
temporary folder, on the ports assigned to it (PostgreSQL 5433/5434 through
:mod:`tests.private_pg`, RabbitMQ 5673-5675 with distribution ports 25673-25675), and stops
them by their own pid or control command -- see /work/shared/private-servers.md. Every start is
paired with a ``destroy`` that the fixtures call in their finalisers, also when a test fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psycopg
from psycopg import sql

from tests import private_pg

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
#: The ports of the fault suite (and only these).
RABBIT_PORTS = tuple(p + private_pg.PORT_OFFSET for p in (5673, 5674, 5675))
#: before private_pg.PrivatePostgres adds the offset
PG_PORTS = (5433, 5434)


def available() -> str | None:
    """Why private servers cannot be started here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to run the servers as the rabbitmq and postgres users"
    tools = (RABBIT_BIN / "rabbitmq-server", private_pg.PG_BIN / "initdb",
             Path("/usr/sbin/runuser"))
    for tool in tools:
        if not tool.exists():
            return f"{tool} is not installed"
    return None


def _chown(path: Path, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True, timeout=30)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie -- dead, not yet reaped by init -- does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _kill_and_wait(pid: int, timeout: float = 20) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def workspace(prefix: str) -> Path:
    """A temporary folder other users (rabbitmq, postgres) may enter."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


class RabbitNode:
    """One RabbitMQ node of its own: ``name@localhost`` on ``port``/``dist_port``."""

    def __init__(self, root: Path, name: str, port: int, dist_port: int, cookie: str) -> None:
        self.folder = root / name
        self.name = name
        self.node = f"{name}@localhost"
        self.port = port
        self.dist_port = dist_port
        self.cookie = cookie
        self.pid: int | None = None

    def _env(self) -> dict[str, str]:
        f = self.folder
        return {
            "HOME": str(f / "home"), "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"), "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(f / "pid"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }

    def _as_rabbitmq(self, *cmd: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self._env().items()]
        return ["runuser", "-u", "rabbitmq", "--", "env", "-i", *env, *cmd]

    def prepare(self) -> None:
        """The node's folder: configuration without plugins, the cluster's cookie."""
        home = self.folder / "home"
        home.mkdir(parents=True)
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        _chown(self.folder, "rabbitmq")
        cookie.chmod(0o400)

    def start(self, timeout: float = 180) -> None:
        """Start the node detached and wait until it runs its application."""
        self.launch()
        self.await_startup(timeout)

    def launch(self) -> None:
        """Start the node's VM detached (returns before it has booted)."""
        self.pid = None
        subprocess.run(self._as_rabbitmq(str(RABBIT_BIN / "rabbitmq-server"), "-detached"),
                       check=True, capture_output=True, timeout=60)

    def await_startup(self, timeout: float = 180) -> None:
        """Wait until the node runs its application (the VM registers with epmd a moment after
        ``-detached`` returns, and ``await_startup`` fails at once while it has not)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=45)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.pid = int((self.folder / "pid").read_text().strip())

    def ctl(self, *args: str, timeout: float = 90) -> str:
        """``rabbitmqctl -n NODE ARGS`` as the rabbitmq user (the cookie is in its HOME)."""
        result = subprocess.run(
            self._as_rabbitmq(str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args),
            capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: "
                               f"{(result.stderr or result.stdout)[-800:]}")
        return result.stdout

    def _known_pid(self) -> int | None:
        if self.pid is None:
            with suppress(OSError, ValueError):
                self.pid = int((self.folder / "pid").read_text().strip())
        return self.pid

    def running(self) -> bool:
        """Whether the node's Erlang VM is alive."""
        pid = self._known_pid()
        return pid is not None and _pid_alive(pid)

    def stop(self) -> None:
        """A clean stop of the whole node (``rabbitmqctl stop``)."""
        if self.running():
            self.ctl("stop", timeout=120)
            pid = self._known_pid()
            deadline = time.monotonic() + 30
            while pid is not None and _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the node's VM (a crash): its pid, never anything by name."""
        pid = self._known_pid()
        if pid is not None:
            _kill_and_wait(pid)

    def destroy(self) -> None:
        """Finaliser: stop (or kill) the node, remove its folder."""
        with suppress(Exception):
            self.stop()
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRabbit:
    """One or more RabbitMQ nodes clustered together, with a user of the suite's own."""

    def __init__(self, nodes: int = 1) -> None:
        self.root = workspace("cb-faults-rabbit-")
        cookie = secrets.token_hex(20).upper()
        suffix = secrets.token_hex(3)
        self.nodes = [RabbitNode(self.root, f"cbfault{suffix}n{i + 1}", RABBIT_PORTS[i],
                                 RABBIT_PORTS[i] + 20000, cookie) for i in range(nodes)]
        self.user = "casebridge"
        self.password = secrets.token_hex(16)

    def start(self) -> None:
        """Start every node, join the others to the first, add the user."""
        for node in self.nodes:  # booted side by side: each takes tens of seconds on 2 cores
            node.prepare()
            node.launch()
        for node in self.nodes:
            node.await_startup()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
            node.await_startup()
        first.ctl("add_user", self.user, self.password)
        first.ctl("set_user_tags", self.user, "administrator")

    def add_vhost(self, vhost: str) -> None:
        """A virtual host (one per scenario) the suite's user may use."""
        first = self.live_node()
        first.ctl("add_vhost", vhost)
        first.ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def live_node(self) -> RabbitNode:
        """A node that is running now."""
        return next(n for n in self.nodes if n.running())

    def url(self, vhost: str) -> str:
        """The kombu URL: every node, ``;``-separated (failover), as production configures it."""
        return ";".join(f"amqp://{self.user}:{self.password}@127.0.0.1:{n.port}/{vhost}"
                        for n in self.nodes)

    def queue_leader(self, vhost: str, queue: str) -> RabbitNode:
        """The node that leads a quorum queue."""
        out = self.live_node().ctl("list_queues", "-p", vhost, "name", "leader",
                                   "--no-table-headers", "-q")
        for line in out.splitlines():
            name, _, leader = line.partition("\t")
            if name.strip() == queue:
                return next(n for n in self.nodes if n.node == leader.strip())
        raise LookupError(f"queue {queue} not found in {vhost}")

    def connection_ports(self, vhost: str) -> list[int]:
        """The node port of every client connection to ``vhost`` (cluster-wide)."""
        out = self.live_node().ctl("list_connections", "vhost", "port", "--no-table-headers",
                                   "-q")
        return [int(port) for line in out.splitlines()
                for name, _, port in [line.partition("\t")]
                if name.strip() == vhost and port.strip().isdigit()]

    def queue_counts(self, vhost: str) -> dict[str, int]:
        """Messages ready + unacknowledged per queue."""
        out = self.live_node().ctl("list_queues", "-p", vhost, "name", "messages",
                                   "--no-table-headers", "-q")
        counts = {}
        for line in out.splitlines():
            name, _, count = line.partition("\t")
            if count.strip().isdigit():
                counts[name.strip()] = int(count)
        return counts

    def destroy(self) -> None:
        """Finaliser: every node stopped (last joined first), the folder removed."""
        for node in reversed(self.nodes):
            node.destroy()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivatePostgres(private_pg.PrivatePostgres):
    """The shared private-cluster helper (initdb, start, stop, crash), plus what the suite needs:
    a database per scenario and a finaliser that falls back to the postmaster's pid."""

    def __init__(self, port: int = PG_PORTS[0]) -> None:
        super().__init__(port)

    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        with suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        return None

    def admin(self) -> str:
        """libpq conninfo of the superuser."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def create_database(self, name: str, owner: str, password: str) -> str:
        """A role and a database of one scenario; its SQLAlchemy URL."""
        with psycopg.connect(self.admin(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(owner), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)))
        return f"postgresql+psycopg://{owner}:{password}@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        """Finaliser: stop by pg_ctl, else SIGKILL the postmaster's pid; remove the folder."""
        pid = self.pid()
        with suppress(Exception):
            self.close()
        if pid is not None and _pid_alive(pid):
            _kill_and_wait(pid)
        shutil.rmtree(self.folder, ignore_errors=True)
