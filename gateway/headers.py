"""Security headers on every gateway response, and the API documentation served locally.

API responses can carry personal data (client records, consents, the Art. 15 report), so every
response is ``Cache-Control: no-store`` (no proxy or browser cache keeps it), ``nosniff``, and has
a Content-Security-Policy that allows nothing but the report's own inline stylesheet; in
production, HSTS as well. A response that set its own value (the console's pages, the API
documentation) keeps it.

``/docs`` is Swagger UI from the installed ``swagger-ui-bundle`` package (no CDN: a browser never
fetches code from elsewhere); in production ``/docs`` and ``/openapi.json`` need authentication
like every API operation. ReDoc is not offered: no packaged copy of it exists.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from casebridge.gateway.access_report import STYLE_HASH
from casebridge.gateway.problems import document_problems
from casebridge.gateway.security import authenticate

API_CSP = (f"default-src 'none'; style-src '{STYLE_HASH}'; frame-ancestors 'none'; "
           "base-uri 'none'; form-action 'none'")
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
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
    """``/openapi.json`` and ``/docs`` (Swagger UI from the installed package)."""
    guard = [Depends(authenticate)] if production else []
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} – API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
