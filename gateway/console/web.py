"""Rendering for the console: the Jinja2 environment, page context, security headers, errors.

Templates are autoescaped. Every console response carries a strict Content-Security-Policy
(no script at all, styles from the console's own stylesheet only), ``no-store`` caching (pages
show personal data) and framing denied. Errors on console paths are HTML pages in the reader's
language; every other path keeps the API's problem documents.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from casebridge.consent.engine import LOCAL_ZONE
from casebridge.db import parse_utc_text
from casebridge.errors import CasebridgeError
from casebridge.gateway.console.data import presets
from casebridge.gateway.console.i18n import (
    LANGUAGES,
    WordedInputError,
    WordedNotFound,
    term,
    translate,
)
from casebridge.gateway.console.sessions import (
    PREFIX,
    ConsoleForbidden,
    ConsoleUser,
    CsrfRefused,
    LoginRequired,
    current_user,
    request_language,
)
from casebridge.gateway.principals import Role
from casebridge.gateway.problems import status_for

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

ENV = Environment(
    loader=PackageLoader("casebridge.gateway.console", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["fromiso"] = datetime.fromisoformat


def _combine_query(fixed: dict[str, Any], extra: dict[str, str]) -> str:
    return urlencode({**{k: v for k, v in fixed.items() if v not in (None, "")}, **extra})


ENV.filters["combine_query"] = _combine_query

#: (endpoint path, label key, roles that see it)
NAV = (
    ("/flows", "nav.flows", (Role.DPO,)),
    ("/withheld", "nav.withheld", (Role.DPO,)),
    ("/incidents", "nav.incidents", (Role.DPO,)),
    ("/overrides", "nav.overrides", (Role.DPO,)),
    ("/persons", "nav.persons", (Role.DPO, Role.CONSENT_DESK)),
    ("/report", "nav.report", (Role.DPO, Role.CONSENT_DESK)),
    ("/consents", "nav.consents", (Role.DPO,)),
    ("/integrity", "nav.integrity", (Role.DPO,)),
    ("/locks", "nav.locks", (Role.DPO,)),
    ("/records", "nav.records", (Role.DPO,)),
    ("/ops", "nav.ops", (Role.ADMIN,)),
)


def when(lang: str, utc: str | datetime | None, *, date_only: bool = False) -> str:
    """A stored UTC time in the agencies' zone, worded for ``lang``."""
    if utc is None:
        return "–"
    moment = parse_utc_text(utc) if isinstance(utc, str) else utc
    local = moment.astimezone(LOCAL_ZONE)
    if lang == "de":
        return local.strftime("%d.%m.%Y" if date_only else "%d.%m.%Y, %H:%M")
    return local.strftime("%-d %B %Y" if date_only else "%-d %b %Y, %H:%M")


def url(path: str, **params: Any) -> str:
    """A console URL with the non-empty ``params`` as its query."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")


def agency_namer(request: Request) -> Callable[[str | None], str]:
    """Agency id → its name from the configured route table (the id where it has none)."""
    routing = getattr(request.app.state, "routing", None)

    def name(agency_id: str | None) -> str:
        if not agency_id:
            return "–"
        return routing.routes.name_of(agency_id) if routing is not None else agency_id

    return name


def secure(response: Response) -> Response:
    """Add the console's security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render(
    request: Request, template: str, *, status_code: int = 200,
    user: ConsoleUser | None = None, lang: str | None = None, **context: Any,
) -> HTMLResponse:
    """A page: ``template`` with the common context (language, labels, user, navigation)."""
    user = user or getattr(request.state, "console_user", None)
    lang = lang or (user.lang if user is not None else request_language(request))

    def t(key: str, **values: Any) -> Markup:
        # Markup.format escapes plain values and keeps rendered macro output as it is.
        label = escape(translate(lang, key))
        return label.format(**values) if values else label

    def switch(to: str) -> str:
        query = dict(request.query_params)
        query["lang"] = to
        return f"{request.url.path}?{urlencode(query)}"

    nav = [(url(path), t(key), request.url.path == f"{PREFIX}{path}") for path, key, roles in NAV
           if user is not None and user.principal.role in roles]
    html = ENV.get_template(template).render(
        request=request, lang=lang, languages=LANGUAGES, t=t, user=user, nav=nav,
        csrf=user.csrf_token if user else "", switch=switch, url=url,
        term=lambda vocabulary, code: term(lang, vocabulary, code),
        when=lambda utc, date_only=False: when(lang, utc, date_only=date_only),
        agency_name=agency_namer(request), period_presets=presets(),
        translate=lambda key: translate(lang, key),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    return secure(response)  # type: ignore[return-value]


def redirect(location: str) -> Response:
    """A 303 See Other (the answer to a POST) with the security headers."""
    return secure(RedirectResponse(location, status_code=303))


def _reader_language(request: Request) -> str:
    if getattr(request.state, "console_user", None) is None:
        # errors raised before a page looked at the session still speak the reader's language
        request.state.console_user = current_user(request)
    user: ConsoleUser | None = request.state.console_user
    return user.lang if user is not None else request_language(request)


def worded(lang: str, exc: CasebridgeError, fallback_key: str) -> str:
    """An error's message in ``lang``: worded errors are translated (a ``name`` value is a label
    key); any other error's English text is shown in English only, else the generic message."""
    if isinstance(exc, WordedInputError | WordedNotFound):
        values = dict(exc.values)
        if "name" in values:
            values["name"] = translate(lang, str(values["name"]))
        return translate(lang, exc.key, **values)
    return exc.message if lang == "en" else translate(lang, fallback_key)


def _error_page(request: Request, status: int, title_key: str, message: str) -> Response:
    _reader_language(request)
    return render(request, "error.html", status_code=status, title_key=title_key,
                  message=message)


def _is_console(request: Request) -> bool:
    path = request.url.path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(
        PREFIX + "/static/")


async def _delegate(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    if inspect.isawaitable(answer):
        answer = await answer
    result: Response = answer
    return result


def install_error_pages(app: FastAPI) -> None:
    """HTML error pages on console paths; the API's problem documents everywhere else."""
    api_error = app.exception_handlers[CasebridgeError]
    http_error = app.exception_handlers[StarletteHTTPException]

    async def on_casebridge_error(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            return await _delegate(api_error, request, exc)
        assert isinstance(exc, CasebridgeError)
        status, _title = status_for(exc)
        if status >= 500:
            return await _delegate(api_error, request, exc)
        key = {404: "error.notfound.title", 403: "error.forbidden.title"}.get(
            status, "error.input.title")
        fallback = {404: "error.notfound", 403: "error.forbidden.title"}.get(
            status, "error.input")
        return _error_page(request, status, key, worded(_reader_language(request), exc, fallback))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            return await _delegate(http_error, request, exc)
        assert isinstance(exc, StarletteHTTPException)
        lang = _reader_language(request)
        if exc.status_code == 404:
            return _error_page(request, 404, "error.notfound.title",
                               translate(lang, "error.notfound"))
        if exc.status_code == 405:
            return _error_page(request, 405, "error.input.title", translate(lang, "error.method"))
        message = str(exc.detail) if lang == "en" else translate(lang, "error.input")
        return _error_page(request, exc.status_code, "error.input.title", message)

    async def on_login_required(request: Request, exc: Exception) -> Response:
        target = request.url.path if request.method == "GET" else f"{PREFIX}/"
        return redirect(url("/login", next=target, lang=request.query_params.get("lang")))

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleForbidden)
        user = getattr(request.state, "console_user", None)
        lang = user.lang if user is not None else request_language(request)
        message = translate(lang, "error.forbidden", roles=" / ".join(str(r) for r in exc.roles),
                            role=str(user.principal.role) if user else "–")
        return _error_page(request, 403, "error.forbidden.title", message)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        user = getattr(request.state, "console_user", None)
        lang = user.lang if user is not None else request_language(request)
        return _error_page(request, 403, "error.csrf.title", translate(lang, "error.csrf"))

    app.add_exception_handler(CasebridgeError, on_casebridge_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(ConsoleForbidden, on_forbidden)
    app.add_exception_handler(CsrfRefused, on_csrf)
