"""Reading JSON input safely: bounded size, clean errors, JSON pointers for positions; and
writing rendered JSON fast (:func:`dump_json`).

Shared by the JSON-speaking adapters (jugendamt, provider-fhir). ``json.loads`` is fast and
safe against entity tricks, but it raises ``RecursionError`` on deeply nested input and
``ValueError`` on integers beyond Python's digit limit; both become a :class:`ParseError` here
so no caller ever sees a traceback for hostile input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pydantic_core

from casebridge.errors import ParseError, Problem, RenderError


def pointer(path: Iterable[object]) -> str:
    """An RFC 6901 JSON pointer (``/fall/kind/geburtsdatum``) from path segments."""
    out = []
    for seg in path:
        out.append("/" + str(seg).replace("~", "~0").replace("/", "~1"))
    return "".join(out) or "/"


def at(source: str, path: str) -> str:
    """The location of a problem: file (or ``<input>``) and JSON pointer."""
    return f"{source}:{path}"


def load_json(raw: bytes, source: str, *, max_depth: int | None = None) -> Any:
    """Parse JSON bytes (UTF-8/16/32 as RFC 8259 allows) or raise ParseError naming the place.

    ``max_depth`` adds a nesting bound for callers whose next step recurses without one.
    """
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"{source}:line {exc.lineno} column {exc.colno}"
        raise ParseError(
            f"{source}: not well-formed JSON", problems=[Problem(where, exc.msg)]
        ) from None
    except UnicodeDecodeError:
        raise ParseError(
            f"{source}: not UTF-8 encoded",
            problems=[Problem(source, "input is not valid UTF-8 JSON text")],
        ) from None
    except RecursionError:
        raise ParseError(
            f"{source}: JSON nested too deeply",
            problems=[Problem(source, "JSON is nested too deeply")],
        ) from None
    except ValueError as exc:  # e.g. integer with more digits than Python converts
        raise ParseError(
            f"{source}: unreadable JSON value",
            problems=[Problem(source, f"unreadable JSON value ({type(exc).__name__})")],
        ) from None
    if max_depth is not None and _depth_exceeds(data, max_depth):
        raise ParseError(
            f"{source}: JSON nested too deeply",
            problems=[Problem(source, f"JSON is nested too deeply (over {max_depth} levels)")],
        )
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    # Iterative, so the check itself cannot overflow the stack.
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def dump_json(data: Any, indent: int | None = None) -> bytes:
    """``data`` as UTF-8 JSON, byte for byte what ``json.dumps(data, ensure_ascii=False)``
    writes compact (``separators=(",", ":")``) or with ``indent``, in a fifth (compact) to a
    thirtieth (indented: the standard library then encodes in Python) of the time. RenderError
    for text UTF-8 cannot hold (a lone surrogate), where json.dumps left the encoder to fail."""
    try:
        return pydantic_core.to_json(data, indent=indent)
    except pydantic_core.PydanticSerializationError:
        raise RenderError("text not representable in UTF-8", problems=[Problem(
            "parts", "a text holds a lone surrogate, which UTF-8 cannot encode")]) from None
