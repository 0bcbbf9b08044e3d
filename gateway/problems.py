"""RFC 9457 problem documents: the one mapping from errors to HTTP answers.

Every error the gateway answers with is an ``application/problem+json`` document. casebridge
errors map by class (:func:`status_for`, most specific first); FastAPI's request validation and
Starlette's HTTP errors (unknown path, wrong method) are wrapped in the same shape; anything else
is a 500 whose document names no internals — only the error *type* is logged, because exception
texts can quote input. Problems of an input (an adapter's, a validator's) are listed as
``errors: [{"location", "detail"}]``; they name positions and fields, never values.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError as SAOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from casebridge.errors import (
    AdapterError,
    AuthError,
    BrokerUnavailable,
    CasebridgeError,
    ConfigError,
    ConflictError,
    DeliveryError,
    Forbidden,
    InputError,
    InputTooLarge,
    NotFound,
    ParseError,
    RoutingError,
    TooManyAttempts,
    UnknownSystem,
    UnsupportedMediaType,
)
from casebridge.gateway.route_match import allowed_methods
from casebridge.logging import get_logger

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://casebridge.example/problems/"
_MAX_ITEMS = 50  # a hostile input must not make the answer unbounded


class ProblemItem(BaseModel):
    """One thing wrong with the input."""

    location: str = Field(description="Line, JSON pointer, field or header that is wrong.")
    detail: str = Field(description="What is wrong there (never the value itself).")


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI identifying the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path.")
    code: str = Field(description="casebridge's machine-readable error code.")
    errors: list[ProblemItem] = Field(default_factory=list)


#: (error class, status, title), most specific first: the first isinstance match wins.
_STATUS: tuple[tuple[type[CasebridgeError], int, str], ...] = (
    (TooManyAttempts, 429, "Too many failed attempts"),
    (AuthError, 401, "Not authenticated"),
    (Forbidden, 403, "Forbidden"),
    (UnknownSystem, 404, "Unknown system"),
    (NotFound, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (InputTooLarge, 413, "Content too large"),
    (UnsupportedMediaType, 415, "Unsupported media type"),
    (ParseError, 400, "Malformed message"),
    (AdapterError, 422, "Message not acceptable"),
    (InputError, 422, "Unprocessable content"),
    (BrokerUnavailable, 503, "Broker unavailable"),
    (DeliveryError, 502, "Delivery failed"),
    (RoutingError, 503, "Routing unavailable"),
    (ConfigError, 503, "Service not configured"),
)


def status_for(exc: CasebridgeError) -> tuple[int, str]:
    """HTTP status and title of a casebridge error (500 for server-side failures)."""
    for cls, status, title in _STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal error"


def problem_response(
    status: int,
    title: str,
    *,
    code: str,
    request: Request | None = None,
    detail: str | None = None,
    errors: list[ProblemItem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    doc = ProblemDocument(
        type=TYPE_BASE + code.replace("_", "-"),
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        code=code,
        errors=(errors or [])[:_MAX_ITEMS],
    )
    return JSONResponse(
        doc.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _casebridge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CasebridgeError)
    status, title = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer, Basic realm="casebridge"'
    elif status == 503:
        headers["Retry-After"] = "5"
    elif isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        # Server-side messages can name hosts or files; the caller gets the code only.
        log.warning("request_failed", code=exc.code, status_code=status)
        return problem_response(status, title, code=exc.code, request=request, headers=headers)
    items = [ProblemItem(location=p.location, detail=p.message) for p in exc.problems]
    return problem_response(
        status, title, code=exc.code, request=request, detail=exc.message, errors=items,
        headers=headers,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return "/".join(str(part) for part in loc)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # pydantic's "input" and "ctx" may quote what was sent; only location and message are kept.
    items = [ProblemItem(location=_location(e.get("loc", ())), detail=str(e.get("msg", "")))
             for e in exc.errors()]
    return problem_response(
        422, "Invalid request", code="invalid_request", request=request,
        detail="the request does not match the operation's parameters", errors=items,
    )


_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 413: "input_too_large",
    415: "unsupported_media_type",
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer, Basic realm="casebridge"'
    elif exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.scope)) or headers.get("Allow", "")
    return problem_response(
        exc.status_code, title, code=code, request=request, detail=detail, headers=headers
    )


def internal_error_response(request: Request | None, exc: BaseException) -> JSONResponse:
    """The last-resort answer: a 500 problem that says nothing about the failure."""
    log.error("unhandled_error", exc_type=type(exc).__name__)
    return problem_response(
        500, "Internal error", code="internal_error", request=request,
        detail="the request could not be completed; the error was logged",
    )


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused or dropped the connection (restart, fail-over, a lock timeout). The
    # open transaction rolled back; a retry is safe because message ids are claimed once and
    # workers recognise a delivery id they delivered before.
    log.warning("request_failed", code="database_unavailable", exc_type=type(exc).__name__)
    return problem_response(
        503, "Database unavailable", code="database_unavailable", request=request,
        detail="the database could not be reached; retry shortly",
        headers={"Retry-After": "5"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the one mapping of errors to problem documents on ``app``."""
    app.add_exception_handler(SAOperationalError, _database_error)
    app.add_exception_handler(CasebridgeError, _casebridge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


_PROBLEM_REF = "#/components/schemas/ProblemDocument"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response declarations for the given error statuses."""
    return {
        status: {
            "model": ProblemDocument,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
            "description": "A problem document (RFC 9457).",
        }
        for status in statuses
    }


def error_response(request: Request, exc: CasebridgeError | SAOperationalError) -> JSONResponse:
    """The problem document of an error raised outside a route (in a middleware)."""
    if isinstance(exc, SAOperationalError):
        return _database_error(request, exc)
    return _casebridge_error(request, exc)


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                "schema": {"type": "integer", "minimum": 1}}}
_ADDED_BY_MIDDLEWARE = {
    # every authenticated operation: bad credentials, a lock, the database gone during the check
    "auth": {401: "Not authenticated", 429: "Too many failed attempts (locked a while)",
             503: "Database or broker unavailable"},
    # operations with a body: refused before a route sees it, or not parseable at all
    "body": {400: "Malformed body", 408: "The body arrived too slowly",
             413: "The body exceeds the size limit"},
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what the server answers on errors, for every operation.

    Errors are problem documents only (FastAPI documents its own 422 body as JSON), and the
    middlewares answer some statuses before any route runs, which the routes cannot declare.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not operation.get("security"):
                continue
            responses = operation.setdefault("responses", {})
            added = dict(_ADDED_BY_MIDDLEWARE["auth"])
            if "requestBody" in operation:
                added.update(_ADDED_BY_MIDDLEWARE["body"])
            for status, description in added.items():
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if not status.startswith(("4", "5")):
                    continue
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}}
                if status in ("429", "503"):
                    response["headers"] = dict(_RETRY_AFTER)
    schemas = schema.get("components", {}).get("schemas", {})
    text = json.dumps(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return schema
