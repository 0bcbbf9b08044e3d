"""Which of the app's routes a request's path matches, for answers given outside the router."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import Scope

UNMATCHED = "<unmatched>"


def _leaves(routes: Iterable[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            yield from _leaves(included.routes)
        else:
            yield route


def _routes(scope: Scope) -> Iterator[Any]:
    yield from _leaves(getattr(getattr(scope.get("app"), "router", None), "routes", ()))


def route_template(scope: Scope) -> str:
    """The template of the route serving ``scope`` (or the one that would have), or UNMATCHED."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in _routes(scope):
        match, _ = candidate.matches(scope)
        if match is Match.FULL and isinstance(getattr(candidate, "path", None), str):
            return str(candidate.path)
    return UNMATCHED


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route offers at this path (Starlette's 405 names only the first's)."""
    methods: set[str] = set()
    for candidate in _routes(scope):
        if candidate.matches(scope)[0] is not Match.NONE:
            methods |= set(getattr(candidate, "methods", None) or ())
    return sorted(methods)
