"""The youth office's case software: JSON ``jugendamt-fallakte/3`` exports, in and out."""

from __future__ import annotations

from typing import ClassVar

from casebridge.adapters.base import Adapter
from casebridge.adapters.json_input import load_json
from casebridge.adapters.jugendamt import parse, render, validate
from casebridge.canonical_model import AgencyKind, TransferEnvelope


class JugendamtAdapter(Adapter):
    """``jugendamt-fallakte/3``: one export (``fall``) per message; the child is the client.

    Unknown native fields are rejected (schema ``additionalProperties: false``), never carried:
    a field casebridge does not understand could hold special-category data.
    """

    system: ClassVar[str] = "jugendamt"
    agency_kind: ClassVar[AgencyKind] = AgencyKind.YOUTH_OFFICE
    media_types: ClassVar[tuple[str, ...]] = ("application/json",)

    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        """Export bytes → one canonical envelope (size, JSON, schema, mapping checked in order)."""
        self.check_size(raw, source)
        doc = load_json(raw, source)
        validate.validate(doc, source)
        return [parse.to_envelope(doc, raw, source)]

    def render(self, envelope: TransferEnvelope) -> bytes:
        """One envelope (from any source system) → export bytes (UTF-8 JSON)."""
        return render.render_bytes(envelope)
