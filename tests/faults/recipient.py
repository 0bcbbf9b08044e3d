"""The recording recipient of the fault suite: a process of its own, like a real agency system.

``python tests/faults/recipient.py`` listens on a free port of 127.0.0.1 (printed as the first
line of its output), takes pushes on ``/<agency-id>`` for every agency and records *every* push
with the answer it gave. Like a recipient that honours ``Idempotency-Key``, it answers a key it
already accepted with ``200 already received`` (recorded as such, so the suite counts every push
answered 2xx). Control, for the test only:

- ``GET /_records`` -- every push so far (JSON list); ``GET /_inflight`` -- pushes being
  answered right now;
- ``PUT /_mode`` with body ``accept`` or ``fail`` -- ``fail`` answers 503 to every push;
- ``PUT /_delay`` with body SECONDS -- each accepted push takes that long (stretches a batch).

It runs until its parent stops it (SIGTERM) -- and exits by itself after ``--lifetime`` seconds at
the latest, so a crashed test run never leaves it behind.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Recorder:
    """The state of the recipient (shared by the handler threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.accepted: set[str] = set()
        self.mode = "accept"
        self.delay = 0.0
        self.inflight = 0  # accepted pushes not yet answered

    def push(self, agency: str, headers: Any, size: int) -> tuple[int, str]:
        key = headers.get("Idempotency-Key", "")
        record = {"agency": agency, "key": key, "size": size, "at": time.time(),
                  "message_id": headers.get("X-Casebridge-Message-Id", ""),
                  "sender": headers.get("X-Casebridge-Sender", "")}
        if self.mode == "fail":
            status, answer = 503, "temporarily unavailable"
        else:
            with self.lock:
                self.inflight += 1
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.inflight -= 1
                repeat = key in self.accepted
                self.accepted.add(key)
            status, answer = (200, "already received") if repeat else (202, "accepted")
        with self.lock:
            self.records.append({**record, "status": status})
        return status, answer


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """No access log (the records are the log)."""

    def _reply(self, status: int, payload: bytes, media: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        body = self._body()
        status, answer = self.server.recorder.push(self.path.strip("/"), self.headers, len(body))
        self._reply(status, answer.encode())

    def do_GET(self) -> None:
        recorder = self.server.recorder
        if self.path not in ("/_records", "/_inflight"):
            self._reply(404, b"not found")
            return
        with recorder.lock:
            state = recorder.records if self.path == "/_records" else recorder.inflight
            payload = json.dumps(state).encode()
        self._reply(200, payload, "application/json")

    def do_PUT(self) -> None:
        value = self._body().decode().strip()
        recorder = self.server.recorder
        if self.path == "/_mode" and value in ("accept", "fail"):
            recorder.mode = value
        elif self.path == "/_delay":
            recorder.delay = float(value)
        else:
            self._reply(400, b"unknown control")
            return
        self._reply(204, b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    recorder: Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description="recording recipient for the fault suite")
    parser.add_argument("--lifetime", type=float, default=3600)
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.recorder = Recorder()
    print(server.server_address[1], flush=True)
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
