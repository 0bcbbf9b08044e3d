"""Request logging, HTTP metrics and the last-resort error answer, as one ASGI middleware.

One structured log line per request with metadata only: method, the route *template* (never the
concrete path, which carries ids, nor the query string), status, duration and the caller's agency
or role. Bodies and header values are never logged. A client that goes away before it was
answered is its own outcome -- status 499 in the metrics, a ``client_disconnected`` log line --
not a 500: it is nobody's error on the server side. Anything a route lets escape becomes a
problem document here (see :func:`~casebridge.gateway.problems.internal_error_response`) instead
of a traceback in the server log.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casebridge.gateway.metrics import HTTP_DURATION, HTTP_REQUESTS
from casebridge.gateway.problems import internal_error_response
from casebridge.gateway.route_match import route_template
from casebridge.logging import get_logger

log = get_logger("casebridge.gateway.access")


#: nginx's status for "the client closed the request": no answer was sent, and none was owed.
CLIENT_CLOSED = 499


class ObserveRequests:
    """Log, count and time every HTTP request; answer unhandled errors with a 500 problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
            if not started:
                status = CLIENT_CLOSED  # the client went away before an answer was due
        except ClientDisconnect:
            status = CLIENT_CLOSED if not started else status
        except Exception as exc:  # noqa: BLE001 - the one place nothing may escape from
            if not started:
                response = internal_error_response(Request(scope), exc)
                await response(scope, receive, send_wrapper)
            else:
                log.error("response_aborted", exc_type=type(exc).__name__)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(elapsed)
            principal: Any = scope.get("state", {}).get("principal")
            log.info(
                "client_disconnected" if status == CLIENT_CLOSED else "request",
                method=method,
                path=route,
                status_code=status,
                duration_ms=round(elapsed * 1000, 2),
                agency=getattr(principal, "agency", None),
                role=str(principal.role) if principal is not None else None,
                request_id=request_id,
            )
