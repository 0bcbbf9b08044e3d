"""Dependencies of the gateway's routes, as ``Annotated`` aliases.

Routes declare what they need — ``settings: SettingsDep``, ``db: DatabaseDep``,
``caller: CurrentAgency`` — and never reach for globals, so a test builds an app on its own
database with :func:`casebridge.gateway.app.create_app` and everything follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from casebridge.db import Database
from casebridge.gateway.principals import Principal, Role
from casebridge.gateway.security import authenticate, require_agency, require_roles
from casebridge.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_database_dep(request: Request) -> Database:
    """The database the app was created with."""
    db: Database = request.app.state.database
    return db


def get_session(db: Annotated[Database, Depends(get_database_dep)]) -> Iterator[Session]:
    """A session in one transaction for the request: committed if the route returns normally."""
    with db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database_dep)]
SessionDep = Annotated[Session, Depends(get_session)]

#: Any authenticated caller.
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
#: An agency system, authenticated as its agency.
CurrentAgency = Annotated[Principal, Depends(require_agency)]
#: Staff who record consents and link clients (or an administrator).
ConsentDesk = Annotated[Principal, Depends(require_roles(Role.CONSENT_DESK, Role.ADMIN))]
#: The data-protection officer: the only role that reads the audit trail.
Dpo = Annotated[Principal, Depends(require_roles(Role.DPO))]
#: An administrator (operations).
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
