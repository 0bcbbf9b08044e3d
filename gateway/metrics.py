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
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from casebridge.db import Database

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


class StoreCollector(Collector):
    """Delivery state as the shared store records it, read at scrape time.

    Workers run in other processes (often other hosts) than the gateway; what they did is in the
    database all of them share, so the gateway can report every delivery, retry and dead letter
    without the processes talking to each other. Two grouped, indexed queries per scrape.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges (nothing if the routing tables are unreachable)."""
        from casebridge.routing.store import DeliveryRow, OutboxRow

        deliveries = GaugeMetricFamily(
            "casebridge_store_deliveries", "Deliveries per recipient agency and state "
            "(queued, delivered, blocked, dead).", labels=["agency", "state"])
        retries = GaugeMetricFamily(
            "casebridge_store_delivery_retries", "Delivery attempts beyond the first, per "
            "recipient agency, as recorded by the workers.", labels=["agency"])
        pending = GaugeMetricFamily(
            "casebridge_store_outbox_pending", "Messages waiting in a pull agency's outbox.",
            labels=["agency"])
        extra = case((DeliveryRow.attempts > 1, DeliveryRow.attempts - 1), else_=0)
        try:
            with self.db.connection() as conn:
                rows = conn.execute(
                    select(DeliveryRow.recipient, DeliveryRow.state, func.count(),
                           func.coalesce(func.sum(extra), 0))
                    .group_by(DeliveryRow.recipient, DeliveryRow.state)
                ).all()
                waiting = conn.execute(
                    select(OutboxRow.agency, func.count())
                    .where(OutboxRow.acked_at.is_(None)).group_by(OutboxRow.agency)
                ).all()
        except SQLAlchemyError:
            return
        per_agency: dict[str, int] = {}
        for agency, state, count, more in rows:
            deliveries.add_metric([agency, state], count)
            per_agency[agency] = per_agency.get(agency, 0) + int(more)
        for agency, more in sorted(per_agency.items()):
            retries.add_metric([agency], more)
        for agency, count in waiting:
            pending.add_metric([agency], count)
        yield from (deliveries, retries, pending)


def render(db: Database | None = None) -> tuple[bytes, str]:
    """The exposition text and its content type: this process's metrics (all workers' in
    multiprocess mode) plus, given a database, the delivery state recorded in it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if db is not None:
        store = CollectorRegistry(auto_describe=False)
        store.register(StoreCollector(db))
        text += generate_latest(store)
    return text, CONTENT_TYPE_LATEST
