"""Console logins: server-side sessions, cookies, CSRF tokens and role checks.

People sign in with the same user name and password as at the API: the password is checked by
:func:`casebridge.gateway.principals.principal_for_password` (scrypt, constant-time), nothing is
re-implemented here. The session cookie holds a random token only (the database keeps its
SHA-256); it is ``HttpOnly``, ``SameSite=Strict`` and — unless ``console_cookie_secure`` is
switched off for plain-http development — ``Secure`` with the ``__Host-`` prefix.

Every state-changing request is a POST carrying the session's CSRF token in a hidden field,
compared in constant time. The login form, before any session exists, uses a double-submit
token: a random value in its own ``SameSite=Strict`` cookie and in the form, which must match.
Each request re-reads the principal, so a disabled account or a changed role takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import delete, update

from casebridge.db import Database
from casebridge.gateway.console.i18n import DEFAULT_LANGUAGE, from_accept_language, normalise
from casebridge.gateway.console.store import ConsoleSessionRow
from casebridge.gateway.principals import Principal, PrincipalKind, PrincipalRow, Role
from casebridge.settings import Settings

PREFIX = "/console"


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


class ConsoleForbidden(Exception):
    """The signed-in person's role may not see the page (rendered as a 403 page)."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        super().__init__("forbidden")
        self.roles = roles


class CsrfRefused(Exception):
    """A POST without the right CSRF token (rendered as a 403 page)."""


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The person signed in to this request, with their session's CSRF token and language."""

    principal: Principal
    token_hash: str
    csrf_token: str
    lang: str


def cookie_name(settings: Settings) -> str:
    """The session cookie's name (``__Host-`` only where the browser accepts it: Secure)."""
    return "__Host-casebridge-console" if settings.console_cookie_secure else "casebridge-console"


def login_cookie_name(settings: Settings) -> str:
    """The login form's double-submit CSRF cookie."""
    return ("__Host-casebridge-console-login" if settings.console_cookie_secure
            else "casebridge-console-login")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _db(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    """Set a console cookie with the console's flags."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True,
        secure=settings.console_cookie_secure, samesite="strict",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    """Delete a console cookie."""
    response.delete_cookie(name, path="/", httponly=True, secure=settings.console_cookie_secure,
                           samesite="strict")


def request_language(request: Request) -> str:
    """``?lang=``, else the browser's Accept-Language, else German."""
    return (normalise(request.query_params.get("lang"))
            or from_accept_language(request.headers.get("accept-language"))
            or DEFAULT_LANGUAGE)


def start_session(request: Request, response: Response, principal: Principal, lang: str) -> None:
    """A new session for ``principal`` (a fresh token: no session fixation)."""
    settings = _settings(request)
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    hours = settings.console_session_hours
    with _db(request).session(immediate=True) as session:
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))
        session.add(ConsoleSessionRow(
            token_hash=_digest(token), principal=principal.name,
            csrf_token=secrets.token_urlsafe(32), lang=lang, created_at=now,
            expires_at=now + timedelta(hours=hours),
        ))
    set_cookie(response, settings, cookie_name(settings), token, hours * 3600)


def end_session(request: Request, response: Response, user: ConsoleUser) -> None:
    """Delete the session row and the cookie."""
    with _db(request).session(immediate=True) as session:
        session.execute(
            delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == user.token_hash)
        )
    clear_cookie(response, _settings(request), cookie_name(_settings(request)))


def current_user(request: Request) -> ConsoleUser | None:
    """The signed-in person of this request, or None (expired, logged out, disabled)."""
    token = request.cookies.get(cookie_name(_settings(request)))
    if not token or len(token) > 128:
        return None
    asked = normalise(request.query_params.get("lang"))
    now = datetime.now(UTC)
    db = _db(request)
    with db.session() as session:
        row = session.get(ConsoleSessionRow, _digest(token))
        if row is None or row.expires_at <= now:
            return None
        person = session.get(PrincipalRow, row.principal)
        active = (person is not None and person.disabled_at is None
                  and person.kind == PrincipalKind.USER)
        user = None if person is None or not active else ConsoleUser(
            Principal(name=person.name, kind=PrincipalKind(person.kind), role=Role(person.role),
                      agency=person.agency, method="console_session"),
            row.token_hash, row.csrf_token, asked or row.lang,
        )
    # Writes in their own immediate transaction: a read-then-write transaction on SQLite could
    # fail to upgrade its lock while another request writes.
    if user is None:
        with db.session(immediate=True) as session:
            session.execute(delete(ConsoleSessionRow).where(
                ConsoleSessionRow.token_hash == _digest(token)))
    elif asked is not None and asked != row.lang:
        with db.session(immediate=True) as session:  # the choice is remembered for the session
            session.execute(update(ConsoleSessionRow).where(
                ConsoleSessionRow.token_hash == user.token_hash).values(lang=asked))
    return user


def require(request: Request, *roles: Role) -> ConsoleUser:
    """The signed-in person if their role is one of ``roles``; else LoginRequired/Forbidden."""
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    request.state.console_user = user
    if user.principal.role not in roles:
        raise ConsoleForbidden(roles)
    return user


def check_csrf(expected: str | None, sent: object) -> None:
    """CsrfRefused unless ``sent`` equals ``expected`` (constant time)."""
    if not expected or not isinstance(sent, str) or not sent:
        raise CsrfRefused()
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRefused()
