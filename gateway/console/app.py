"""Mounting the console on a gateway app: its routes, its stylesheet and its error pages."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from casebridge.gateway.console import auth_routes, ops, pages, person_pages, records
from casebridge.gateway.console.sessions import PREFIX
from casebridge.gateway.console.verify import Verifications
from casebridge.gateway.console.web import install_error_pages


def mount_console(app: FastAPI) -> None:
    """Add the console under ``/console`` (after the API's problem handlers are installed)."""
    for module in (auth_routes, pages, person_pages, records, ops):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static",
              StaticFiles(packages=[("casebridge.gateway.console", "static")]),
              name="console-static")
    app.state.console_verifications = Verifications(app.state.database)
    install_error_pages(app)
