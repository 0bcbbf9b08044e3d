"""Security headers on every gateway response, and the API documentation served locally.

API responses can carry personal data (client records, consents, the Art. 15 report), so every
response is ``Cache-Control: no-store`` (no proxy or browser cache keeps it), ``nosniff``, and has
a Content-Security-Policy that allows nothing but the report's own inline stylesheet; in
production, HSTS as well. A response that set its own value (the console's pages, the API
documentation) keeps it.

``/docs`` (Swagger UI, assets of the installed ``swagger-ui-bundle``) and ``/redoc`` (ReDoc, the
bundle shipped in ``fastapi-standalone-docs``) are served from this process: a browser never
fetches code from elsewhere. Their pages come from ``fastapi-csp-docs`` and have no inline script
(Swagger UI's start-up is a separate script), so the docs' CSP allows scripts from 'self' only;
ReDoc injects its styles at run time, so its page alone allows inline styles. In production
``/docs``, ``/redoc`` and ``/openapi.json`` need authentication like every API operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_standalone_docs
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_csp_docs import (
    get_redoc_css,
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_init_js,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from casebridge.gateway.access_report import STYLE_HASH
from casebridge.gateway.problems import document_problems
from casebridge.gateway.security import authenticate

API_CSP = (f"default-src 'none'; style-src '{STYLE_HASH}'; frame-ancestors 'none'; "
           "base-uri 'none'; form-action 'none'")
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
# ReDoc (styled-components) adds <style> elements at run time and renders in a Web Worker from a
# blob: URL; scripts stay 'self' only.
REDOC_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; connect-src 'self'; worker-src blob:; "
             "frame-ancestors 'none'; base-uri 'none'")
REDOC_ASSETS = Path(fastapi_standalone_docs.__path__[0]) / "static" / "redoc"
HSTS = "max-age=31536000"


class SecurityHeaders:
    """Add the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        defaults = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", API_CSP.encode()),
                    (b"x-frame-options", b"DENY")]
        if hsts:
            defaults.append((b"strict-transport-security", HSTS.encode()))
        self.defaults = defaults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.defaults if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_api_docs(app: FastAPI, *, production: bool) -> None:
    """``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, from the installed packages."""
    guard = [Depends(authenticate)] if production else []
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    # no validator badge: Swagger UI would send the schema's URL to validator.swagger.io
    init_script = get_swagger_ui_init_js(
        openapi_url="/openapi.json", swagger_ui_parameters={"validatorUrl": None}
    )
    redoc_css = get_redoc_css()

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            title=f"{app.title} – API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
            swagger_ui_init_script_url="/docs/swagger-initializer.js",
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/docs/swagger-initializer.js", include_in_schema=False)
    async def swagger_ui_init() -> Response:
        return init_script

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} – API",
            redoc_js_url="/redoc/redoc.standalone.js",
            redoc_css_url="/redoc/redoc.css",
            redoc_favicon_url="/docs/static/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_CSP
        return page

    @app.get("/redoc/redoc.css", include_in_schema=False)
    async def redoc_stylesheet() -> Response:
        return redoc_css

    # after the routes above, which it would otherwise shadow; the bundle loads its logo from
    # <page path>/logo-mini.svg, which this serves too
    app.mount("/redoc", StaticFiles(directory=REDOC_ASSETS), name="redoc")
