"""Signing in and out of the console, and the start page that sends each role to its pages."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from casebridge.db import Database
from casebridge.errors import TooManyAttempts
from casebridge.gateway.console.i18n import DEFAULT_LANGUAGE, normalise
from casebridge.gateway.console.sessions import (
    PREFIX,
    ConsoleForbidden,
    LoginRequired,
    check_csrf,
    clear_cookie,
    current_user,
    end_session,
    login_cookie_name,
    request_language,
    set_cookie,
    start_session,
)
from casebridge.gateway.console.web import redirect, render, url
from casebridge.gateway.principals import Role, principal_for_password
from casebridge.gateway.throttle import request_address, throttle_of
from casebridge.logging import get_logger
from casebridge.settings import Settings

router = APIRouter(prefix=PREFIX, include_in_schema=False)
log = get_logger(__name__)

_MAX_FIELD = 512


def _safe_next(target: str | None) -> str:
    # Only a console path of this site: never an absolute URL (open redirect).
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _login_page(request: Request, *, failed: str | None = None, status_code: int = 200,
                lang: str | None = None) -> Response:
    settings: Settings = request.app.state.settings
    token = secrets.token_urlsafe(32)
    lang = lang or request_language(request)
    response = render(
        request, "login.html", status_code=status_code, lang=lang, login_token=token,
        next=_safe_next(request.query_params.get("next")), failed=failed,
    )
    set_cookie(response, settings, login_cookie_name(settings), token, 3600)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The sign-in form."""
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the credentials with the gateway's own password check, then start a session."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    lang = normalise(str(form.get("lang") or "")) or DEFAULT_LANGUAGE
    cookie = request.cookies.get(login_cookie_name(settings))
    try:
        check_csrf(cookie, form.get("login_token"))
    except Exception:  # noqa: BLE001 - CsrfRefused: show the form again, freshly tokened
        return _login_page(request, failed="login.expired", status_code=403, lang=lang)
    name, password = str(form.get("username") or ""), str(form.get("password") or "")
    throttle, address = throttle_of(request), request_address(request)
    account = name[:128] or None
    try:
        throttle.guard(account=account, address=address)
    except TooManyAttempts as exc:
        response = _login_page(request, failed="login.locked", status_code=429, lang=lang)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    principal = None
    if 0 < len(name) <= _MAX_FIELD and 0 < len(password) <= _MAX_FIELD:
        db: Database = request.app.state.database
        with db.session() as session:
            principal = principal_for_password(session, name=name, password=password)
    if principal is None:
        log.info("console_login_failed")
        throttle.failed(account=account, address=address, method="console")
        return _login_page(request, failed="login.failed", status_code=401, lang=lang)
    throttle.succeeded(account=account)
    response = redirect(_safe_next(str(form.get("next") or "")))
    start_session(request, response, principal, lang)
    clear_cookie(response, settings, login_cookie_name(settings))
    log.info("console_login", role=str(principal.role))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked like every form)."""
    user = current_user(request)
    if user is None:
        return redirect(url("/login"))
    form = await request.form()
    request.state.console_user = user
    check_csrf(user.csrf_token, form.get("csrf_token"))
    response = redirect(url("/login", lang=user.lang))
    end_session(request, response, user)
    return response


@router.get("/")
@router.get("")
def home(request: Request) -> Response:
    """DPOs start at the flows, administrators at the operations view, the consent desk at
    finding a person."""
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    request.state.console_user = user
    if user.principal.role is Role.DPO:
        return redirect(url("/flows"))
    if user.principal.role is Role.ADMIN:
        return redirect(url("/ops"))
    if user.principal.role is Role.CONSENT_DESK:
        return redirect(url("/persons"))
    raise ConsoleForbidden((Role.DPO, Role.ADMIN, Role.CONSENT_DESK))
