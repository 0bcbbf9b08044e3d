"""Operations: liveness, readiness (database and broker) and Prometheus metrics.

The health probes answer without authentication — an orchestrator's probe carries no key, and
they reveal only up or down. ``/metrics`` needs the admin role: it names agencies and volumes.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from casebridge.gateway.deps import Admin, DatabaseDep, SettingsDep
from casebridge.gateway.metrics import render
from casebridge.gateway.problems import problem_responses
from casebridge.logging import get_logger

router = APIRouter(tags=["operations"])
log = get_logger(__name__)

_BROKER_TIMEOUT_S = 2.0


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the gateway can serve: every dependency ``ok``."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, Literal["ok", "fail"]]


@router.get("/health/live", response_model=Liveness, summary="Liveness probe")
def live() -> Liveness:
    """Answers as long as the process serves requests."""
    return Liveness()


def _database_ok(db: DatabaseDep) -> bool:
    try:
        with db.connection() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness_database_failed", exc_type=type(exc).__name__)
        return False
    return True


def _broker_ok(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=_BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, timeout=_BROKER_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness_broker_failed", exc_type=type(exc).__name__)
        return False
    return True


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness probe (database and broker)",
    responses={503: {"model": Readiness, "description": "A dependency is unavailable."}},
)
def ready(db: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """200 when the database and the broker answer, else 503 naming the failed check."""
    checks: dict[str, Literal["ok", "fail"]] = {
        "database": "ok" if _database_ok(db) else "fail",
        "broker": "ok" if _broker_ok(settings.effective_broker_url) else "fail",
    }
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}},
              "description": "Prometheus exposition format."},
        **problem_responses(401, 403),
    },
)
def metrics(_admin: Admin, db: DatabaseDep) -> Response:
    """Messages in/out per agency, decisions by outcome, delivery latency, retries, dead
    letters and HTTP request metrics, plus the delivery state recorded in the store."""
    body, content_type = render(db)
    return Response(body, media_type=content_type)
