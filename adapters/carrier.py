"""Reading notes: category headings, and the carriers of the previous release.

A note element (``Vermerk``) is read as a case note, or, when it begins with a category heading
(``[Gesundheit] …``, :mod:`casebridge.adapters.prose`), as data of that category. Until this
release casebridge wrote data a format has no element for as a JSON *carrier* line
``casebridge-carrier/1 {json}`` (``part``: a whole canonical part; ``header``: envelope fields).
Carriers are no longer written -- notes are for people -- but messages that were queued with
them are still read, for one release: the parts they restore keep the category they had, and
a carrier is never a consent and never widens anything.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree
from pydantic import ValidationError

from casebridge.adapters import prose
from casebridge.adapters.xml import at, line, text_of
from casebridge.canonical_model import Category, Part
from casebridge.canonical_model.validation import problems_from
from casebridge.errors import MappingError, Problem

PREFIX = "casebridge-carrier/1 "
_CASE_NOTES = Category.CASE_NOTES

#: Envelope fields a header carrier may set; anything else in it is refused.
HEADER_FIELDS = frozenset(
    {"message_type", "correlation_id", "created_at", "service", "conference", "status", "statutory"}
)


def is_carrier(text: str) -> bool:
    """Whether a note's text is a carrier."""
    return text.lstrip().startswith(PREFIX)


def decode(text: str, location: str) -> tuple[str, Any, bool]:
    """``("part", Part, view)`` or ``("header", fields, False)``; MappingError if malformed."""
    try:
        body = json.loads(text.lstrip()[len(PREFIX) :])
    except ValueError:
        raise _bad(location, "the carrier note is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad(location, "the carrier note is not a JSON object")
    kind = body.get("carrier")
    if kind == "part":
        try:
            part = Part.model_validate_json(json.dumps(body.get("part")))
        except ValidationError as exc:
            raise MappingError(
                f"{location}: invalid carrier part",
                problems=[Problem(location, f"carrier part {p}") for p in problems_from(exc)],
            ) from None
        return "part", part, body.get("view") is True
    if kind == "header":
        fields = body.get("fields")
        if not isinstance(fields, dict) or not set(fields) <= HEADER_FIELDS:
            raise _bad(location, "the header carrier names fields it may not set")
        return "header", fields, False
    raise _bad(location, "unknown carrier kind")


def _bad(location: str, message: str) -> MappingError:
    return MappingError(f"{location}: {message}", problems=[Problem(location, message)])


def build_envelope(fields: dict[str, Any], header: dict[str, Any] | None, location: str) -> Any:
    """The envelope from native ``fields`` with a header carrier's fields laid over them.

    ``fields`` holds plain dicts and lists (Part instances only for carried parts), validated
    here in one pass. Validation errors become a MappingError naming the canonical field, never
    its value.
    """
    from casebridge.canonical_model import TransferEnvelope

    try:
        # The validator itself: model_validate adds a Python frame and keyword handling.
        envelope = TransferEnvelope.__pydantic_validator__.validate_python(fields)
        if header:
            merged = envelope.model_dump(mode="json") | header
            envelope = TransferEnvelope.model_validate_json(json.dumps(merged))
    except ValidationError as exc:
        raise MappingError(
            f"{location}: message does not fit the canonical model",
            problems=[Problem(location, str(p)) for p in problems_from(exc)],
        ) from None
    return envelope


def _part_id(part: dict[str, Any] | Part) -> str:
    return str(part["id"]) if isinstance(part, dict) else part.id


class PartCollector:
    """Collects parts with unique ids; carriers from Vermerk elements replace native views.

    Parts read from native elements are kept as plain dicts (validated once, with the whole
    envelope, by :func:`build_envelope`); parts restored from carriers are validated ``Part``s.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[dict[str, Any] | Part] = []
        self.header: dict[str, Any] = {}
        self._ids: set[str] = set()
        self._views: dict[str, str] = {}  # content kind -> id of the part read from a view

    def add(
        self,
        pid: str,
        category: Category,
        content: dict[str, Any],
        source: str,
        *,
        view: bool = False,
    ) -> None:
        """Add a part read from native elements (``content`` a dict with its ``kind``;
        ``view``: Kunde/Person, which a carrier may replace)."""
        if pid in self._ids:
            pid = self._unique(pid)
        else:
            self._ids.add(pid)
        if view:
            self._views[content["kind"]] = pid
        self.parts.append({"id": pid, "category": category, "source": source, "content": content})

    def note(self, el: etree._Element, n: int, path: str) -> None:
        """A note element (Vermerk): a case note, a note under a category heading (see
        :mod:`casebridge.adapters.prose`), or a carrier written by an earlier release."""
        text = text_of(el, self.source)
        if not is_carrier(text):
            headed = prose.read(text)
            if headed is None:
                self.add(
                    f"note-{n}", _CASE_NOTES, {"kind": "note", "text": text}, f"{path}[{n}]"
                )
                return
            category, by, rest = headed
            self.add(f"note-{n}", category, prose.content_dict(category, rest), f"{path}[{n}]")
            if by is not None:
                self.parts[-1]["entrusted_by"] = by  # type: ignore[index]
            return
        kind, value, view = decode(text, at(self.source, line(el)))
        if kind == "header":
            self.header.update(value)
            return
        if view:  # the complete part replaces the native view rendered from it
            replaced = self._views.pop(value.content.kind, None)
            if replaced is not None:
                self.parts = [p for p in self.parts if _part_id(p) != replaced]
                self._ids.discard(replaced)
        pid = self._unique(value.id)
        self.parts.append(value if pid == value.id else value.model_copy(update={"id": pid}))

    def _unique(self, pid: str) -> str:
        while pid in self._ids:
            pid = f"{pid}-c"
        self._ids.add(pid)
        return pid
