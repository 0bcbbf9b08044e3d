"""The request-body size limit, enforced before any route reads the body.

A plain ASGI middleware: a declared ``Content-Length`` over the limit is refused without reading a
byte; otherwise the body is read chunk by chunk and refused as soon as the running total passes
the limit (a chunked upload cannot declare its length). Only a body within the limit is replayed
to the application, so no route, parser or adapter ever sees an oversized input, and memory per
request stays bounded by the limit plus one chunk.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casebridge.gateway.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _too_large(limit: int, path: str) -> bytes:
    return json.dumps({
        "type": TYPE_BASE + "input-too-large",
        "title": "Content too large",
        "status": 413,
        "detail": f"the request body exceeds the limit of {limit} bytes",
        "instance": path,
        "code": "input_too_large",
        "errors": [{"location": "body", "detail": f"more than {limit} bytes"}],
    }).encode()


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 problem document."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = _too_large(self.max_bytes, scope.get("path", ""))
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": body})

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
        while True:
            message = await receive()
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
