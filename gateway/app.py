"""The FastAPI application factory of the casebridge gateway.

``create_app(settings)`` builds one app bound to one settings object and its database; nothing is
read from globals afterwards, so tests create apps on temporary stores. Middleware, outermost
first: :class:`~casebridge.gateway.observe.ObserveRequests` (access log, HTTP metrics, last-resort
500 problem), :class:`~casebridge.gateway.limits.AuthenticateFirst` (credentials before any body
is read, bounded uploads per caller), then :class:`~casebridge.gateway.limits.BodySizeLimit` (no
route sees a body over ``max_message_bytes``; slow bodies are cut off). Errors become problem
documents in :mod:`casebridge.gateway.problems`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter
from fastapi import FastAPI

from casebridge import __version__
from casebridge.db import get_database
from casebridge.gateway.api import (
    audit,
    clients,
    consents,
    inbound,
    ops,
    outbox,
    persons,
    referrals,
    status,
)
from casebridge.gateway.console.app import mount_console
from casebridge.gateway.headers import SecurityHeaders, mount_api_docs
from casebridge.gateway.intake import Intake
from casebridge.gateway.limits import AuthenticateFirst, BodySizeLimit
from casebridge.gateway.observe import ObserveRequests
from casebridge.gateway.problems import install_problem_handlers
from casebridge.gateway.security import KeyCache
from casebridge.gateway.throttle import AuthThrottle
from casebridge.logging import configure_logging
from casebridge.routing.relay import RelaySweeper
from casebridge.routing.routes import load_route_table
from casebridge.routing.runtime import Routing
from casebridge.settings import Settings, get_settings

DESCRIPTION = """\
casebridge carries referrals, case-conference invitations and support plans between agencies'
case systems, only with the client's consent, with every decision in a hash-chained audit trail.

Authenticate with an API key (`Authorization: Bearer <key>` or `X-API-Key`), as staff with HTTP
Basic credentials, or with a client certificate verified by the trusted TLS proxy. Errors are
RFC 9457 problem documents (`application/problem+json`).
"""


def _routing(settings: Settings) -> Routing | None:
    # Without a route table the consent desk and the DPO can still work; the endpoints that
    # route answer 503 "not configured" (see casebridge.gateway.deps.get_routing).
    if settings.route_table is None:
        return None
    return Routing.from_settings(settings, routes=load_route_table(settings.route_table))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    routing = app.state.routing
    sweeper = None
    if routing is not None:
        # publishes what a request decided but could not publish (crash, broker outage)
        sweeper = RelaySweeper(routing.db, routing.publisher)
        sweeper.start()
    yield
    if sweeper is not None:
        sweeper.stop()
    if app.state.intake is not None:
        app.state.intake.close()
    if app.state.routing is not None:
        app.state.routing.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """A gateway app for ``settings`` (default: the process settings)."""
    settings = settings or get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, force=True)
    app = FastAPI(
        title="casebridge gateway",
        version=__version__,
        description=DESCRIPTION,
        # served by casebridge.gateway.headers.mount_api_docs: local assets, guarded in production
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    database = get_database(settings.effective_database_url)
    app.state.settings = settings
    app.state.database = database
    app.state.routing = _routing(settings)
    app.state.inbound_limiter = CapacityLimiter(settings.inbound_concurrency)
    app.state.auth_throttle = AuthThrottle(settings, database)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    app.state.intake = (
        Intake(database, app.state.routing, max_bytes=settings.max_message_bytes)
        if app.state.routing is not None
        else None
    )
    install_problem_handlers(app)
    for module in (ops, inbound, outbox, referrals, status, consents, clients, persons, audit):
        app.include_router(module.router)
    mount_console(app)
    mount_api_docs(app, production=settings.environment == "production")
    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_message_bytes,
        idle_timeout=settings.body_idle_timeout, min_rate=settings.body_min_rate,
        grace=settings.body_grace_seconds,
    )
    app.add_middleware(AuthenticateFirst, uploads_per_principal=settings.uploads_per_principal)
    app.add_middleware(SecurityHeaders, hsts=settings.environment == "production")
    app.add_middleware(ObserveRequests)
    return app
