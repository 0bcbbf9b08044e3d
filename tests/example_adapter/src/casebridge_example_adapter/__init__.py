"""Adapter for ``beratung-fall/1``, the JSON case export of a (fictitious) counselling service.

It shows everything a plugin adapter has to do (docs/adapters.md, "Adapter contract"): bound the
input size before parsing, parse without executing anything, reject fields it does not know,
keep every part in its category, name positions (JSON pointers) in errors without quoting values,
and refuse to render what the format cannot hold instead of dropping it.

A message::

    {"format": "beratung-fall/1", "nachricht": "B-1", "bezug": null, "art": "referral",
     "anlass": "referral", "von": "…", "an": ["…"], "zeit": "2026-12-01T10:00:00+01:00",
     "leistung": "…", "status": null, "gruende": [],
     "angaben": [{"id": "identity", "kategorie": "identity", "inhalt": {…}}]}

``inhalt`` is the canonical content of a part (the counselling service's system stores it as
given), ``anvertraut_von`` the person who entrusted it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from casebridge.adapters import Adapter
from casebridge.adapters.json_input import load_json
from casebridge.canonical_model import AgencyKind, TransferEnvelope, validate_json
from casebridge.errors import ModelValidationError, ParseError, Problem, RenderError

FORMAT = "beratung-fall/1"
SYSTEM = "beratung"
#: native field → canonical envelope field
HEADER = {
    "nachricht": "message_id",
    "bezug": "correlation_id",
    "art": "message_type",
    "anlass": "purpose",
    "von": "sender",
    "an": "recipients",
    "zeit": "created_at",
    "leistung": "service",
    "status": "status",
    "gruende": "reason_part_ids",
}
PART = {"id": "id", "kategorie": "category", "inhalt": "content", "anvertraut_von": "entrusted_by"}
#: canonical envelope fields the format has no place for: rendering refuses them
NO_FIELD = ("conference", "statutory")


def _unknown(data: dict[str, Any], known: Iterable[str], where: str, source: str) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise ParseError(
            f"{source}: unknown field",
            problems=[Problem(f"{source}:{where}/{name}", "unknown field") for name in extra],
        )


class BeratungAdapter(Adapter):
    """A counselling service (provider) exchanging ``beratung-fall/1`` JSON."""

    system: ClassVar[str] = SYSTEM
    agency_kind: ClassVar[AgencyKind] = AgencyKind.PROVIDER
    media_types: ClassVar[tuple[str, ...]] = ("application/vnd.beratung-fall+json",)

    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        self.check_size(raw, source)
        data = load_json(raw, source, max_depth=64)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ParseError(
                f"{source}: not a {FORMAT} message",
                problems=[Problem(f"{source}:/format", f"expected '{FORMAT}'")],
            )
        _unknown(data, {"format", "angaben", *HEADER}, "", source)
        angaben = data.get("angaben", [])
        if not isinstance(angaben, list):
            raise ParseError(f"{source}: angaben", problems=[
                Problem(f"{source}:/angaben", "must be a list")])
        parts = []
        for n, angabe in enumerate(angaben):
            if not isinstance(angabe, dict):
                raise ParseError(f"{source}: angaben", problems=[
                    Problem(f"{source}:/angaben/{n}", "must be an object")])
            _unknown(angabe, PART, f"/angaben/{n}", source)
            part = {PART[k]: v for k, v in angabe.items()}
            parts.append({**part, "source": f"/angaben/{n}"})
        envelope = {HEADER[k]: v for k, v in data.items() if k in HEADER and v is not None}
        envelope.update(source_system=SYSTEM, parts=parts)
        try:
            # JSON mode: the canonical model is strict about Python types, lenient about JSON's
            return [validate_json(TransferEnvelope, json.dumps(envelope))]
        except ModelValidationError as exc:
            # name the native position, never the value
            raise ModelValidationError(
                f"{source}: not a valid {FORMAT} message",
                problems=[Problem(f"{source}:{p.location}", p.message) for p in exc.problems],
            ) from None

    def render(self, envelope: TransferEnvelope) -> bytes:
        missing = [name for name in NO_FIELD if getattr(envelope, name) is not None]
        if missing:
            raise RenderError(f"{FORMAT} has no field for {', '.join(missing)}")
        dumped = envelope.model_dump(mode="json")
        out: dict[str, Any] = {"format": FORMAT}
        out.update({native: dumped[field] for native, field in HEADER.items()})
        out["angaben"] = [
            {native: part[field] for native, field in PART.items() if part[field] is not None}
            for part in dumped["parts"]
        ]
        return json.dumps(out, ensure_ascii=False, indent=1).encode("utf-8")
