"""What a request may cost before a route sees it: credentials first, then a bounded body.

Two plain ASGI middlewares, outermost first:

:class:`AuthenticateFirst`
    A request that carries a body to the API (``POST``/``PUT``/``PATCH`` under ``/v1/``) is
    authenticated before a byte of its body is read: without valid credentials it is answered 401
    (or 429 while locked) with ``Connection: close`` and its body is never read. The principal is
    kept in the request state, so the route's own authentication does not run a second time. Each
    principal may have at most ``uploads_per_principal`` such requests in progress in this process;
    one more is answered 429 at once, so a caller cannot tie up the server with stalled uploads.

:class:`BodySizeLimit`
    A declared ``Content-Length`` over the limit is refused (413) without reading a byte;
    otherwise the body is read chunk by chunk and refused as soon as the running total passes the
    limit. The body must keep coming: no chunk may take longer than ``idle_timeout`` seconds, and
    after ``grace`` seconds at least ``min_rate`` bytes per second must have arrived on average;
    a slower body is answered 408 and the connection closed. Only a body within the limit is
    replayed to the application, so memory per request stays bounded by the limit plus one chunk.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import anyio
from fastapi.security import HTTPBasicCredentials
from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casebridge.errors import AuthError, CasebridgeError, TooManyAttempts
from casebridge.gateway.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE, error_response
from casebridge.gateway.security import (
    api_key_scheme,
    basic_scheme,
    bearer_scheme,
    check_credentials,
)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _problem(status: int, code: str, title: str, detail: str, path: str) -> bytes:
    return json.dumps({
        "type": TYPE_BASE + code.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
        "code": code,
        "errors": [{"location": "body", "detail": detail}],
    }).encode()


async def _send_problem(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


class AuthenticateFirst:
    """Authenticate API requests with a body before the body is read; bound uploads per caller."""

    def __init__(self, app: ASGIApp, *, uploads_per_principal: int) -> None:
        self.app = app
        self.uploads_per_principal = uploads_per_principal
        self._uploads: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") not in _BODY_METHODS
                or not scope.get("path", "").startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            bearer = await bearer_scheme(request)
            api_key = await api_key_scheme(request)
            basic: HTTPBasicCredentials | None = await basic_scheme(request)
            # the key look-up and the password KDF block: in the thread pool, as routes do
            principal = await anyio.to_thread.run_sync(
                check_credentials, request, bearer, api_key, basic
            )
        except (AuthError, OperationalError) as exc:
            response = error_response(request, exc)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        except CasebridgeError as exc:
            await error_response(request, exc)(scope, receive, send)
            return
        name = principal.name
        if self._uploads[name] >= self.uploads_per_principal:
            limit = self.uploads_per_principal
            response = error_response(request, TooManyAttempts(
                f"at most {limit} requests with a body at a time per caller", retry_after=1))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        self._uploads[name] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._uploads[name] -= 1
            if self._uploads[name] <= 0:
                del self._uploads[name]


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` (413) or arriving too slowly (408)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, idle_timeout: float = 10.0,
        min_rate: float = 8192.0, grace: float = 5.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.min_rate = min_rate
        self.grace = grace

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"the request body exceeds the limit of {self.max_bytes} bytes"
        await _send_problem(send, 413, _problem(
            413, "input_too_large", "Content too large", detail, scope.get("path", "")))

    async def _too_slow(self, scope: Scope, send: Send) -> None:
        detail = (f"the request body arrived too slowly (a pause over {self.idle_timeout:g} s, or "
                  f"under {self.min_rate:g} bytes/s after {self.grace:g} s)")
        await _send_problem(send, 408, _problem(
            408, "request_timeout", "Request timeout", detail, scope.get("path", "")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        total = 0
        start = time.monotonic()
        while True:
            # The next chunk must come before the average rate falls under min_rate (after the
            # grace period), and within idle_timeout in any case.
            budget = min(self.idle_timeout,
                         start + self.grace + total / self.min_rate - time.monotonic())
            message: Message | None = None
            if budget > 0:
                with anyio.move_on_after(budget):
                    message = await receive()
            if message is None:
                await self._too_slow(scope, send)
                return
            if message["type"] == "http.disconnect":
                return  # the client went away; nobody to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body, pass through (a disconnect notice, if the client goes away).
        return await receive()

    return replay
