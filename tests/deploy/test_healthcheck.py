"""deploy/healthcheck.py, the probe the image runs (no curl in the slim base image)."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.deploy.conftest import DEPLOY


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_probe(probe, server) -> None:
    assert probe.main(["hc", f"{server}/health/live"]) == 0
    assert probe.main(["hc", f"{server}/health/ready"]) == 1  # 503
    assert probe.main(["hc", f"http://127.0.0.1:{_closed_port()}/health/live"]) == 1
    assert probe.main(["hc", "file:///etc/passwd"]) == 1


def test_http_probe_url_from_environment(probe, server, monkeypatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_HEALTHCHECK_URL", f"{server}/health/live")
    assert probe.main(["hc"]) == 0


def test_broker_probe_reads_the_secret_file_and_walks_the_failover_list(
    probe, tmp_path, monkeypatch
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        dead = _closed_port()
        secret = tmp_path / "broker"
        secret.write_text(f"amqp://u:p@127.0.0.1:{dead}//;amqp://u:p@127.0.0.1:{port}//\n")
        monkeypatch.delenv("CASEBRIDGE_BROKER_URL", raising=False)
        monkeypatch.setenv("CASEBRIDGE_BROKER_URL_FILE", str(secret))
        assert probe.main(["hc", "--broker"]) == 0
        secret.write_text(f"amqp://u:p@127.0.0.1:{dead}//")
        assert probe.main(["hc", "--broker"]) == 1
    finally:
        listener.close()


def test_broker_probe_without_configuration_is_unhealthy(probe, monkeypatch) -> None:
    monkeypatch.delenv("CASEBRIDGE_BROKER_URL", raising=False)
    monkeypatch.delenv("CASEBRIDGE_BROKER_URL_FILE", raising=False)
    assert probe.main(["hc", "--broker"]) == 1


def test_worker_state_probe(probe, tmp_path) -> None:
    state = tmp_path / "worker.state"
    assert probe.main(["hc", "--worker-state", str(state)]) == 1  # no worker wrote it yet
    state.write_text("consuming\n")
    assert probe.main(["hc", "--worker-state", str(state)]) == 0
    state.write_text("paused_store\n")
    assert probe.main(["hc", "--worker-state", str(state)]) == 1
    state.unlink()
    for n, value in ((1, "consuming"), (2, "reconnecting")):  # --concurrency 2
        (tmp_path / f"worker.state.{n}").write_text(value)
    assert probe.main(["hc", "--worker-state", str(state)]) == 1
    (tmp_path / "worker.state.2").write_text("consuming")
    assert probe.main(["hc", "--worker-state", str(state)]) == 0
