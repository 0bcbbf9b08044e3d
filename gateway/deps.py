"""Dependencies of the gateway's routes, as ``Annotated`` aliases.

Routes declare what they need — ``settings: SettingsDep``, ``db: DatabaseDep``,
``caller: CurrentAgency`` — and never reach for globals, so a test builds an app on its own
database with :func:`casebridge.gateway.app.create_app` and everything follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from casebridge.db import Database
from casebridge.errors import ConfigError
from casebridge.gateway.intake import Intake
from casebridge.gateway.principals import Principal, Role
from casebridge.gateway.security import (
    agency_check,
    authenticate,
    require_agency,
    require_roles,
)
from casebridge.routing.runtime import Routing
from casebridge.settings import Settings

# The trivial look-ups are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
# pool, a hop per dependency per request that cost more than the look-up itself.


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_database_dep(request: Request) -> Database:
    """The database the app was created with."""
    db: Database = request.app.state.database
    return db


def get_session(db: Annotated[Database, Depends(get_database_dep)]) -> Iterator[Session]:
    """A session in one transaction for the request: committed if the route returns normally."""
    with db.session() as session:
        yield session


def routing_of(request: Request) -> Routing:
    """Routing of the app; ConfigError (503) if no route table is configured."""
    routing: Routing | None = request.app.state.routing
    if routing is None:
        raise ConfigError("no route table is configured (CASEBRIDGE_ROUTE_TABLE)")
    return routing


async def get_routing(request: Request) -> Routing:
    """Routing of the app, as a dependency (see :func:`routing_of`)."""
    return routing_of(request)


def intake_of(request: Request) -> Intake:
    """The inbound path of the app; exists exactly when routing does (see :func:`routing_of`)."""
    routing_of(request)
    intake: Intake = request.app.state.intake
    return intake


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
RoutingDep = Annotated[Routing, Depends(get_routing)]

#: Any authenticated caller.
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
#: An agency system, authenticated as its agency.
CurrentAgency = Annotated[Principal, Depends(require_agency)]
#: The same check, deferred: a callable the route runs in its worker thread (inbound only).
AgencyCheck = Annotated[Callable[[], Principal], Depends(agency_check)]
#: Staff who record consents and link clients (or an administrator).
ConsentDesk = Annotated[Principal, Depends(require_roles(Role.CONSENT_DESK, Role.ADMIN))]
#: The data-protection officer: the only role that reads the audit trail.
Dpo = Annotated[Principal, Depends(require_roles(Role.DPO))]
#: Who may find a person and produce their access report: the DPO, and the consent desk that
#: serves the client in person.
PersonDesk = Annotated[Principal, Depends(require_roles(Role.DPO, Role.CONSENT_DESK))]
#: An administrator (operations).
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
