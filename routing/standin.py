"""Stand-in recipient endpoints on 127.0.0.1 for the demo, the fault tests and the benchmark.

A :class:`StandIn` is a real HTTP server (threaded, stdlib) that records every POST it accepts
and can be told to answer 5xx, to refuse (4xx), or to be *down* -- its listening socket closed,
so connections are refused exactly as for a crashed recipient -- and to come back on the same
port. Duplicates are counted by the ``Idempotency-Key`` header casebridge sends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted delivery."""

    path: str
    key: str
    message_id: str
    sender: str
    media_type: str
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_POST(self) -> None:
        """Record and answer one delivery."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, answer = self.server.standin._answer(self, body)
        payload = answer.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class StandIn:
    """One local recipient endpoint; ``url`` is stable across :meth:`down`/:meth:`up`."""

    def __init__(self, name: str, *, port: int = 0) -> None:
        self.name = name
        self.received: list[Received] = []
        self.mode = "accept"  # accept | fail (503) | refuse (422)
        #: Seconds each accepted request takes (to stretch a batch in fault tests).
        self.delay = 0.0
        #: Requests that repeated an Idempotency-Key already accepted (answered 200, not kept),
        #: as a recipient that honours idempotency keys would.
        self.repeats = 0
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        """Where casebridge should push."""
        return f"http://127.0.0.1:{self.port}/{self.name}"

    def _answer(self, handler: _Handler, body: bytes) -> tuple[int, str]:
        if self.mode == "fail":
            return 503, "temporarily unavailable"
        if self.mode == "refuse":
            return 422, f"{self.name}: message refused"
        h = handler.headers
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            key = h.get("Idempotency-Key", "")
            if key and key in self._keys:
                self.repeats += 1
                return 200, "already received"
            self._keys.add(key)
            self.received.append(Received(
                handler.path, h.get("Idempotency-Key", ""), h.get("X-Casebridge-Message-Id", ""),
                h.get("X-Casebridge-Sender", ""), h.get("Content-Type", ""), body,
            ))
        return 202, "accepted"

    def up(self) -> None:
        """Start listening (again, on the same port)."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.standin = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"standin-{self.name}",
                                        daemon=True, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def duplicates(self) -> int:
        """Deliveries that repeated an idempotency key (recognised by the recipient)."""
        return self.repeats

    def keys(self) -> set[str]:
        """Distinct idempotency keys received."""
        return set(self._keys)

    def close(self) -> None:
        """Stop for good."""
        self.down()
