"""Throttling and lockout of failed authentication, per account and per client address.

Every failed password (HTTP Basic, console sign-in) and every failed API key counts against the
account it named (the user name; the key id of a well-formed key) and against the client address.
When either passes its limit (``CASEBRIDGE_AUTH_FAILURES_PER_ACCOUNT`` /
``…_PER_ADDRESS``, a moving window), that account or address is refused with 429 and
``Retry-After`` until the oldest failure leaves the window -- even with the right password, which
is what makes guessing pointless. The first failure that locks appends a ``login_locked`` event to
the audit trail (the DPO console lists the locks still in force).

Counters live in the ``limits`` storage named by ``CASEBRIDGE_RATE_LIMIT_STORAGE``: in memory
(one process) by default, Redis in production so that every gateway process and replica shares
them. A storage that cannot be reached fails open for the count but logs it: a Redis outage must
not lock every user out of the consent desk.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta

from limits import RateLimitItem, parse, storage, strategies
from limits.errors import ConfigurationError
from starlette.requests import Request

from casebridge.consent.audit import AuditTrail
from casebridge.db import Database
from casebridge.errors import ConfigError, TooManyAttempts
from casebridge.gateway.peers import client_address
from casebridge.logging import get_logger
from casebridge.settings import Settings

log = get_logger(__name__)

LOCK_EVENT = "login_locked"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")


def _account_label(account: str) -> str:
    # A principal-shaped name is shown as typed (staff names, key ids); anything else could be
    # somebody's mistyped e-mail address, so the audit trail keeps only its hash.
    if _ACCOUNT_NAME.match(account):
        return account
    return "sha256:" + hashlib.sha256(account.encode()).hexdigest()[:16]


def _address_label(address: str) -> str:
    return "sha256:" + hashlib.sha256(address.encode()).hexdigest()[:16]


class AuthThrottle:
    """Counts failures and refuses locked accounts and addresses (one per app)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        try:
            self.per_account: RateLimitItem = parse(settings.auth_failures_per_account)
            self.per_address: RateLimitItem = parse(settings.auth_failures_per_address)
            store = storage.storage_from_string(settings.rate_limit_storage)
        except (ValueError, ConfigurationError) as exc:
            raise ConfigError(f"rate limiting: {type(exc).__name__} in the settings") from None
        self.limiter = strategies.MovingWindowRateLimiter(store)
        self.namespace = f"{settings.broker_prefix}-auth"
        self.database = database

    def _scopes(
        self, account: str | None, address: str | None
    ) -> list[tuple[RateLimitItem, str, str]]:
        scopes = []
        if account:
            scopes.append((self.per_account, "account", account[:256]))
        if address:
            scopes.append((self.per_address, "address", address))
        return scopes

    def guard(self, *, account: str | None, address: str | None) -> None:
        """TooManyAttempts (429) if the account or the address is locked; before any check."""
        try:
            for item, scope, key in self._scopes(account, address):
                if not self.limiter.test(item, self.namespace, scope, key):
                    stats = self.limiter.get_window_stats(item, self.namespace, scope, key)
                    retry_after = int(stats.reset_time - time.time()) + 1
                    raise TooManyAttempts(
                        f"too many failed attempts for this {scope}; try again later",
                        retry_after=retry_after,
                    )
        except TooManyAttempts:
            raise
        except Exception as exc:  # noqa: BLE001 - storage down: fail open, loudly
            log.error("auth_throttle_unavailable", exc_type=type(exc).__name__)

    def failed(self, *, account: str | None, address: str | None, method: str) -> None:
        """Count a failure; the failure that locks is audited."""
        try:
            for item, scope, key in self._scopes(account, address):
                if not self.limiter.hit(item, self.namespace, scope, key):
                    continue  # already locked, already audited
                if self.limiter.test(item, self.namespace, scope, key):
                    continue
                stats = self.limiter.get_window_stats(item, self.namespace, scope, key)
                self._audit_lock(scope, key, method, stats.reset_time)
        except Exception as exc:  # noqa: BLE001 - storage down: fail open, loudly
            log.error("auth_throttle_unavailable", exc_type=type(exc).__name__)

    def succeeded(self, *, account: str | None) -> None:
        """A correct credential clears the account's count (not the address's)."""
        if not account:
            return
        try:
            self.limiter.clear(self.per_account, self.namespace, "account", account[:256])
        except Exception as exc:  # noqa: BLE001
            log.error("auth_throttle_unavailable", exc_type=type(exc).__name__)

    def _audit_lock(self, scope: str, key: str, method: str, reset_time: float) -> None:
        now = datetime.now(UTC)
        until = max(now, datetime.fromtimestamp(reset_time, UTC)) + timedelta(seconds=1)
        label = _account_label(key) if scope == "account" else _address_label(key)
        AuditTrail(self.database).append_event(
            LOCK_EVENT, at=now, stage="gateway", outcome="locked",
            details={"scope": scope, "subject": label, "auth": method,
                     "until": until.isoformat(timespec="seconds")},
        )
        log.warning("auth_locked", scope=scope, auth=method)


def throttle_of(request: Request) -> AuthThrottle:
    """The app's throttle."""
    throttle: AuthThrottle = request.app.state.auth_throttle
    return throttle


def request_address(request: Request) -> str | None:
    """The client address of ``request`` as :func:`client_address` determines it."""
    settings: Settings = request.app.state.settings
    return client_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"), settings.trusted_proxies)
