"""Content-Type checks of request bodies (415 before any parser runs)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from casebridge.errors import Problem, UnsupportedMediaType


def media_type_of(request: Request) -> str:
    """The request's media type without parameters, lower-case ("" if absent)."""
    value = request.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def require_media_type(request: Request, accepted: Iterable[str]) -> str:
    """The request's media type if it is one of ``accepted``; UnsupportedMediaType otherwise."""
    allowed = [a.lower() for a in accepted]
    given = media_type_of(request)
    if given not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type must be one of: {', '.join(allowed)}",
            problems=[
                Problem("header:Content-Type", f"'{given[:100] or 'missing'}' is not accepted")
            ],
        )
    return given
