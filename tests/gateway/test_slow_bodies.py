"""Credentials before bodies, and slow or stalled bodies cut off, on a real uvicorn server.

The gateway runs as ``casebridge serve`` in its own process (so its memory can be read from
/proc); clients are raw sockets that send headers and then trickle or stall, as an attacker would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casebridge.db import get_database, reset_databases
from casebridge.gateway.limits import BodySizeLimit
from casebridge.gateway.principals import PrincipalKind, Role, issue_key
from casebridge.routing.routes import demo_route_table_text

MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Server:
    """``casebridge serve`` on a temporary store, with an agency key issued."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        routes = tmp_path / "routes.yaml"
        routes.write_text(demo_route_table_text(), encoding="utf-8")
        database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
        with get_database(database_url).session() as session:
            issued = issue_key(session, name="jobcenter-duisburg", kind=PrincipalKind.AGENCY,
                               role=Role.AGENCY)
        reset_databases()
        self.key = issued.secret
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
        env.update({
            "CASEBRIDGE_DATA_DIR": str(tmp_path), "CASEBRIDGE_DATABASE_URL": database_url,
            "CASEBRIDGE_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
            "CASEBRIDGE_ROUTE_TABLE": str(routes), "CASEBRIDGE_LOG_LEVEL": "error",
            "CASEBRIDGE_LOG_FORMAT": "json",
            "CASEBRIDGE_BODY_IDLE_TIMEOUT": "2", "CASEBRIDGE_BODY_GRACE_SECONDS": "1",
            "CASEBRIDGE_BODY_MIN_RATE": "65536",
            "CASEBRIDGE_UPLOADS_PER_PRINCIPAL": "16",
            **{f"CASEBRIDGE_{name.upper()}": value for name, value in settings.items()},
        })
        self.log = (tmp_path / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casebridge", "serve", "--host", "127.0.0.1",
             "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the gateway did not start; see {self.log.name}")
            time.sleep(0.2)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("slow-bodies"))
    try:
        yield running
    finally:
        running.stop()


def _head(length: int, key: str | None) -> bytes:
    lines = ["POST /v1/inbound/jobcenter HTTP/1.1", "Host: gateway",
             "Content-Type: application/xml", f"Content-Length: {length}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _status(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of the answer; then the server must close the connection."""
    status_line = await reader.readline()
    rest = await reader.read()  # until the server closes
    return int(status_line.split()[1]), rest


async def _stalled_upload(port: int, key: str | None, sent: int) -> tuple[int, float]:
    """Declare 5 MB, send ``sent`` bytes, stall; the status the server answered."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_head(5 * MB, key))
        await writer.drain()
        # A refusal comes before any body byte is read; wait briefly for one so that the body
        # sent next cannot reset the connection before the answer is read.
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=1)
            return int(line.split()[1]), time.monotonic() - start
        except TimeoutError:
            pass
        writer.write(b"<" + b"x" * (sent - 1))
        await writer.drain()
        status, _ = await asyncio.wait_for(_status(reader), timeout=30)
        return status, time.monotonic() - start
    finally:
        writer.close()


def test_unauthenticated_upload_is_refused_without_reading_its_body(server: Server) -> None:
    async def run() -> tuple[int, bytes, float]:
        start = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(_head(4 * MB, None))  # headers only: the body never comes
        await writer.drain()
        status, rest = await asyncio.wait_for(_status(reader), timeout=10)
        writer.close()
        return status, rest, time.monotonic() - start

    status, rest, took = asyncio.run(run())
    assert status == 401 and took < 1.5  # answered at once, not after a read timeout
    assert b"unauthenticated" in rest


def test_a_body_trickled_at_one_byte_per_second_is_cut_off(server: Server) -> None:
    async def run() -> tuple[int, float]:
        start = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(_head(1000, server.key))
        await writer.drain()
        answer = asyncio.ensure_future(_status(reader))
        for _ in range(60):
            if answer.done():
                break
            try:
                writer.write(b"x")
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(1)
        status, rest = await asyncio.wait_for(answer, timeout=10)
        writer.close()
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["code"] == "request_timeout"
        return status, time.monotonic() - start

    status, took = asyncio.run(run())
    assert status == 408
    assert took < 5  # grace 1 s, then at least 64 KiB/s; never the 60 s the client wanted


def test_sixty_stalled_uploads_are_cut_off_within_seconds_and_memory_stays_bounded(
    server: Server,
) -> None:
    before = _rss_mb(server.proc.pid)

    async def run() -> list[tuple[int, float]]:
        uploads = [_stalled_upload(server.port, server.key if n % 2 else None, MB)
                   for n in range(60)]
        return await asyncio.gather(*uploads)

    start = time.monotonic()
    results = asyncio.run(run())
    took = time.monotonic() - start
    peak = _rss_mb(server.proc.pid)
    statuses = sorted(status for status, _ in results)
    # 30 without credentials: 401 unread; 30 with: 16 upload slots time out, 14 find none (429)
    assert statuses.count(401) == 30, statuses
    assert statuses.count(408) + statuses.count(429) == 30, statuses
    assert statuses.count(429) >= 30 - 16, statuses
    assert took < 10, took
    assert peak - before < 100, (before, peak)  # MiB; 60 × 5 MB would be 300
    # and the server still works
    r = httpx.get(f"{server.base}/v1/outbox", headers={"Authorization": f"Bearer {server.key}"})
    assert r.status_code == 200


def test_a_stalled_body_is_timed_out_in_the_middleware() -> None:
    """Unit level: no chunk within the idle timeout answers 408 and never calls the app."""

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the application was called")

    async def receive():
        await asyncio.sleep(3600)

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/inbound/jobcenter", "headers": []}
    limit = BodySizeLimit(app, max_bytes=1000, idle_timeout=0.2, min_rate=1, grace=0)
    start = time.monotonic()
    asyncio.run(limit(scope, receive, send))
    assert sent[0]["status"] == 408 and time.monotonic() - start < 2
