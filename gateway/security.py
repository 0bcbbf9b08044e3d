"""Authentication and authorisation of every gateway request.

A caller proves who it is in one of three ways, tried in this order:

1. the client-certificate subject a TLS-terminating proxy verified, passed in
   ``settings.client_cert_header`` — trusted only when the request comes from an address listed in
   ``settings.trusted_proxies`` (otherwise the header is ignored, since anybody can send it);
2. an API key, as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
3. a person's user name and password, as HTTP Basic.

Passwords and certificates are read from the database on every request. An API key's successful
look-up is reused for at most ``api_key_cache_seconds`` (default 5; :class:`KeyCache`): the key is
read once per interval instead of on every agency request, and a key revoked or a principal
disabled by another process (``casebridge keys revoke``) is refused at the latest that long after
the revocation committed; in the revoking process at once. Authorisation is by role
(:class:`~casebridge.gateway.principals.Role`), plus party checks in the routes (an agency sees
only its own outbox and referrals, and posts only as itself).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBearer
from fastapi.security import HTTPBasicCredentials as BasicCredentials

from casebridge.errors import AuthError, Forbidden
from casebridge.gateway.peers import is_trusted_proxy
from casebridge.gateway.principals import (
    Principal,
    Role,
    principal_for_cert,
    principal_for_key,
    principal_for_password,
    revocations,
    split_api_key,
)
from casebridge.gateway.throttle import request_address, throttle_of

# auto_error=False: a missing credential of one kind is not an error while another may follow;
# the schemes are declared so that OpenAPI documents them.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key issued by `casebridge keys`.")
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same API key, in its own header."
)
basic_scheme = HTTPBasic(
    auto_error=False, realm="casebridge", description="Staff user name and password."
)

_MAX_CREDENTIAL = 1024  # longer values are not ours; refuse before hashing anything


class KeyCache:
    """Principals of API keys that were valid at most ``ttl`` seconds ago, in one process.

    Only successful look-ups are kept (a wrong key always reaches the database and the login
    throttle), keyed by the key's SHA-256, never the key. An entry is void after ``ttl`` seconds
    and after any revocation or disabling made by this process.
    """

    def __init__(self, ttl: float, *, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[Principal, float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        """The principal of ``key`` if looked up successfully less than ``ttl`` ago."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(_digest(key))
        if entry is None:
            return None
        principal, until, generation = entry
        if time.monotonic() >= until or generation != revocations():
            return None
        return principal

    def put(self, key: str, principal: Principal, generation: int) -> None:
        """Remember a successful look-up that started at revocation count ``generation``."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()  # bounded; refilled by the next requests
            self._entries[_digest(key)] = (principal, time.monotonic() + self.ttl, generation)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _trusted_cert_subject(request: Request) -> str | None:
    settings = request.app.state.settings
    subject = request.headers.get(settings.client_cert_header)
    if not subject:
        return None
    peer = request.client.host if request.client else None
    return subject if is_trusted_proxy(peer, settings.trusted_proxies) else None


def authenticate(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    api_key: str | None = Depends(api_key_scheme),
    basic: BasicCredentials | None = Depends(basic_scheme),
) -> Principal:
    """The authenticated principal of this request; AuthError (401) if there is none.

    A plain ``def``: FastAPI runs it in the thread pool, so database look-ups and the password
    KDF never block the event loop.
    """
    return check_credentials(request, bearer, api_key, basic)


def check_credentials(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
    basic: BasicCredentials | None,
) -> Principal:
    """The principal these credentials prove, or AuthError/TooManyAttempts.

    Runs once per request: a principal the :class:`~casebridge.gateway.limits.AuthenticateFirst`
    middleware established before reading the body is reused.
    """
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    db = request.app.state.database
    subject = _trusted_cert_subject(request)
    principal: Principal | None = None
    throttle = throttle_of(request)
    address = request_address(request)
    if subject is None and (bearer is not None or api_key is not None):
        # the path of every agency request: one read statement, no transaction around it
        key = bearer.credentials if bearer is not None else api_key
        account = split_api_key(key or "")
        method = "api_key"
        throttle.guard(account=account, address=address)
        if key and len(key) <= _MAX_CREDENTIAL:
            cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
            principal = cache.get(key) if cache is not None else None
            if principal is None:
                generation = revocations()  # before the read: a revocation meanwhile voids it
                with db.snapshot_read() as conn:
                    principal = principal_for_key(conn, key=key)
                if principal is not None and cache is not None:
                    cache.put(key, principal, generation)
    else:
        account, method = None, "client_cert"
        with db.session() as session:
            if subject is not None:
                principal = principal_for_cert(session, subject=subject)
            elif basic is not None:
                account, method = basic.username[:128], "password"
                throttle.guard(account=account, address=address)
                if len(basic.username) + len(basic.password) <= _MAX_CREDENTIAL:
                    principal = principal_for_password(
                        session, name=basic.username, password=basic.password
                    )
            else:
                raise AuthError("authentication required: an API key or user credentials")
    if principal is None:
        if method != "client_cert":
            throttle.failed(account=account, address=address, method=method)
        raise AuthError("the credentials are not valid (unknown, revoked or wrong)")
    if method == "password":
        throttle.succeeded(account=account)
    request.state.principal = principal
    return principal


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only principals with one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(str(r) for r in allowed))

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"this operation needs the role {names}")
        return principal

    return dependency


async def require_agency(principal: Principal = Depends(authenticate)) -> Principal:
    """An agency system speaking for its agency (403 for people)."""
    _require_agency(principal)
    return principal


def _require_agency(principal: Principal) -> None:
    if not principal.is_agency or principal.agency is None:
        raise Forbidden("this operation is for agency systems, authenticated as their agency")


async def agency_check(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    api_key: str | None = Depends(api_key_scheme),
    basic: BasicCredentials | None = Depends(basic_scheme),
) -> Callable[[], Principal]:
    """The agency authentication of :func:`require_agency`, to be run by the route itself.

    For the inbound route, which routes in a worker thread anyway: authenticating in that same
    thread saves the second hand-over between event loop and thread pool per message, which cost
    more CPU than the key look-up.
    """

    def check() -> Principal:
        principal = check_credentials(request, bearer, api_key, basic)
        _require_agency(principal)
        return principal

    return check
