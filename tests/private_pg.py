"""A private PostgreSQL cluster that a test may stop, crash and start (never the shared one).

See ``/work/shared/private-servers.md``-style setup: ``initdb`` into a temporary folder owned by
``postgres``, ``pg_ctl`` on a port of the caller's choosing, and stop plus removal in the
fixture's finaliser whatever the test did. Tests that need it skip where the binaries or the
``postgres`` user are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: Added to every private server port (PostgreSQL and RabbitMQ), so that two test runs on one
#: machine (two work trees, or a fault run beside a CI check) do not start servers on one port.
PORT_OFFSET = int(os.environ.get("CASEBRIDGE_TEST_PORT_OFFSET", "0"))


class PrivatePostgres:
    """One cluster on ``port``; :meth:`stop` (``immediate`` = crash) and :meth:`start`."""

    def __init__(self, port: int) -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            pytest.skip("PostgreSQL server binaries are not installed")
        port = self.port = port + PORT_OFFSET
        self.folder = Path(tempfile.mkdtemp(prefix=f"cb-pg{port}-"))
        self.data = self.folder / "pg"
        self.sock = self.folder / "sock"
        self.sock.mkdir()
        shutil.chown(self.folder, "postgres", "postgres")
        shutil.chown(self.sock, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        try:
            self.start()
        except BaseException:
            self.close()  # the fixture never sees this object: clean up here
            raise

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
                       check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-o",
                 f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1",
                 "-l", str(self.folder / "pg.log"), *args)

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self._ctl("-w", "start")
        engine = create_engine(self.url)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server (``immediate``: as if it crashed)."""
        self._ctl("-w", "-m", "immediate" if immediate else "fast", "stop")

    def close(self) -> None:
        """Stop if running and remove the folder (the finaliser)."""
        try:
            self.stop(immediate=True)
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)
