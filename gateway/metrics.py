"""Prometheus metrics of casebridge, registered once per process.

The gateway counts requests and inbound messages; routing (publisher, workers) increments the
delivery metrics through the same objects, so ``/metrics`` shows one consistent set. Labels are
agency ids, systems, outcomes and route templates only — never anything about a person.

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by
the workers; :func:`render` then aggregates every worker's values (prometheus-client's
multiprocess mode), otherwise each worker would report only its own.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

#: The registry every casebridge metric lives in (not the library's global default registry,
#: so importing casebridge never adds to an embedding application's metrics).
REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_IN = Counter(
    "casebridge_messages_in_total",
    "Native messages accepted from an agency (one per canonical message).",
    ["agency", "system"],
    registry=REGISTRY,
)
MESSAGES_OUT = Counter(
    "casebridge_messages_out_total",
    "Messages handed to a recipient agency (pushed and accepted, or fetched from its outbox).",
    ["agency"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "casebridge_decisions_total",
    "Consent decisions per recipient, by outcome and stage.",
    ["outcome", "stage"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "casebridge_delivery_latency_seconds",
    "Time from a message's acceptance at the gateway to its delivery to the recipient.",
    ["agency"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
DELIVERY_RETRIES = Counter(
    "casebridge_delivery_retries_total",
    "Delivery attempts that failed and were scheduled again.",
    ["agency"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "casebridge_dead_letters_total",
    "Messages moved to the dead-letter queue.",
    ["agency"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "casebridge_inbound_rejected_total",
    "Inbound messages refused at the gateway, by error code.",
    ["code"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "casebridge_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "casebridge_http_request_duration_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (all workers' values in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
