"""The administrators' read-only operations view: queues, deliveries, dead letters, counters.

Figures come from what routing records (delivery rows, the pull outbox), from the broker (queue
depths, by a passive look that changes nothing) and from this process's Prometheus counters.
Nothing here shows a message's content or a client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from casebridge.db import Database
from casebridge.errors import BrokerUnavailable, ConfigError
from casebridge.gateway.console.sessions import PREFIX, require
from casebridge.gateway.console.web import render
from casebridge.gateway.metrics import REGISTRY
from casebridge.gateway.principals import Role
from casebridge.logging import get_logger
from casebridge.routing.runtime import Routing
from casebridge.routing.store import DeliveryRow, OutboxRow
from casebridge.routing.topology import broker_errors, connect, release

router = APIRouter(prefix=PREFIX, include_in_schema=False)
log = get_logger(__name__)

STATES = ("queued", "delivered", "blocked", "dead")


@dataclass
class AgencyOps:
    """One recipient agency's figures."""

    agency: str
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    outbox: int = 0
    queue_depth: int | None = None


def delivery_figures(db: Database) -> dict[str, AgencyOps]:
    """Deliveries by state and unfetched outbox items, per recipient agency."""
    rows: dict[str, AgencyOps] = {}
    with db.session() as session:
        for agency, state, count in session.execute(
            select(DeliveryRow.recipient, DeliveryRow.state, func.count())
            .group_by(DeliveryRow.recipient, DeliveryRow.state)
        ):
            rows.setdefault(agency, AgencyOps(agency)).states[state] = int(count)
        for agency, count in session.execute(
            select(OutboxRow.agency, func.count()).where(OutboxRow.acked_at.is_(None))
            .group_by(OutboxRow.agency)
        ):
            rows.setdefault(agency, AgencyOps(agency)).outbox = int(count)
    return rows


def dead_letters(db: Database, limit: int = 50) -> list[DeliveryRow]:
    """The newest deliveries that ended dead (metadata only)."""
    with db.session() as session:
        found = list(session.scalars(
            select(DeliveryRow).where(DeliveryRow.state == "dead")
            .order_by(DeliveryRow.updated_at.desc()).limit(limit)
        ))
        session.expunge_all()
    return found


def queue_depths(routing: Routing) -> tuple[dict[str, int], int] | None:
    """Messages waiting per agency queue and in the dead-letter queue; None if unreachable."""
    conn = connect(routing.url)
    try:
        with broker_errors("reading queue depths", conn):
            routing.topology.declare(conn)
            channel = conn.default_channel
            depths = {}
            for agency in routing.topology.agencies:
                queue = routing.topology.queue(agency)(channel)
                depths[agency] = int(queue.queue_declare(passive=True).message_count)
            dead = routing.topology.dead_queue(channel).queue_declare(passive=True)
            return depths, int(dead.message_count)
    except (BrokerUnavailable, ConfigError) as exc:
        log.warning("console_queue_depths_unavailable", exc_type=type(exc).__name__)
        return None
    finally:
        release(conn)


def counters() -> dict[str, list[tuple[dict[str, str], float]]]:
    """This process's casebridge counters: metric name → [(labels, value)]."""
    wanted = {"casebridge_messages_in", "casebridge_messages_out", "casebridge_decisions",
              "casebridge_dead_letters", "casebridge_delivery_retries"}
    found: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in wanted}
    for metric in REGISTRY.collect():
        if metric.name in wanted:
            found[metric.name] = [(dict(s.labels), s.value) for s in metric.samples
                                  if s.name.endswith("_total")]
    return found


@router.get("/ops")
def ops(request: Request) -> Response:
    """Queue depths, deliveries per state, dead letters and counters (administrators)."""
    require(request, Role.ADMIN)
    db: Database = request.app.state.database
    figures = delivery_figures(db)
    routing: Routing | None = request.app.state.routing
    depths = queue_depths(routing) if routing is not None else None
    dead_depth: int | None = None
    if depths is not None:
        for agency, depth in depths[0].items():
            figures.setdefault(agency, AgencyOps(agency)).queue_depth = depth
        dead_depth = depths[1]
    context: dict[str, Any] = {
        "figures": sorted(figures.values(), key=lambda f: f.agency), "states": STATES,
        "broker_ok": depths is not None, "dead_depth": dead_depth,
        "dead": dead_letters(db), "counters": counters(),
    }
    return render(request, "ops.html", **context)
