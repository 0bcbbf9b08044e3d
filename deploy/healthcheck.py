"""Container health probe (the slim base image has no curl or wget).

``casebridge-healthcheck [URL]``
    GET the URL (default ``CASEBRIDGE_HEALTHCHECK_URL`` or the gateway's liveness endpoint) and
    succeed on 200: the gateway's probe.
``casebridge-healthcheck --broker``
    Succeed when a node of the broker in ``CASEBRIDGE_BROKER_URL`` (or the file named by
    ``CASEBRIDGE_BROKER_URL_FILE``) accepts TCP connections: the workers' probe, since a worker
    serves no HTTP and is useless without its broker.
``casebridge-healthcheck --worker-state PATH``
    Succeed when the worker writing PATH (``casebridge worker --state-file PATH``; with
    ``--concurrency`` every ``PATH.N``) is consuming: the workers' readiness, which fails while a
    worker is paused because the store is unreachable or reconnects to the broker.

Exit 0 means healthy, 1 unhealthy. Nothing about the URL (which holds credentials) is printed.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000/health/live"
AMQP_PORTS = {"amqp": 5672, "amqps": 5671}


def probe_http(url: str, timeout: float = 4.0) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds."""
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def broker_url() -> str:
    """The broker URL from the environment or its secret file ('' if neither is set)."""
    path = os.environ.get("CASEBRIDGE_BROKER_URL_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            return ""
    return os.environ.get("CASEBRIDGE_BROKER_URL", "")


def probe_broker(urls: str, timeout: float = 3.0) -> bool:
    """Whether any node of a ``;``-separated amqp(s) failover list accepts a TCP connection."""
    for url in filter(None, (part.strip() for part in urls.split(";"))):
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or AMQP_PORTS.get(parts.scheme)
        except ValueError:
            continue
        if not host or not port:
            continue
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def probe_worker_state(path: str) -> bool:
    """Whether the worker state file ``path`` (or each ``path.N``) says ``consuming``."""
    base = Path(path)
    files = [base] if base.exists() else sorted(base.parent.glob(f"{base.name}.[0-9]*"))
    files = [f for f in files if not f.name.endswith(".new")]
    try:
        return bool(files) and all(
            f.read_text(encoding="utf-8").strip() == "consuming" for f in files)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    """Run the probe the arguments select; 0 healthy, 1 not."""
    if argv[1:2] == ["--worker-state"] and len(argv) > 2:
        return 0 if probe_worker_state(argv[2]) else 1
    if argv[1:2] == ["--broker"]:
        return 0 if probe_broker(broker_url()) else 1
    url = argv[1] if len(argv) > 1 else os.environ.get("CASEBRIDGE_HEALTHCHECK_URL", DEFAULT_URL)
    return 0 if probe_http(url) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
