"""Dry runs on the real path: what the gateway would decide, and what each recipient would get.

``casebridge decide``, ``casebridge preview`` and ``POST /v1/inbound/{system}/preview`` take the
same steps as a posted message, with the same code: the adapter parses, :func:`admit` applies
the route table (a message on no route is refused exactly as at the door), the consent gate
decides with the route's policies (required categories, statutory bases) and releases the
minimised copies (:meth:`ConsentGate.preview`, the release step of ``check``), each copy takes
the form it has on the broker (its JSON, decoded again) and is rendered by the recipient's
adapter, in the interface version the recipient runs, with :func:`render_for`, the function the
worker delivers with. Nothing is published and no decision is recorded; a preview records one
``preview`` audit event.

Masking (:func:`mask`): a preview shows the document's structure — every element, attribute and
key the recipient would get, header values (message ids, agencies, times, codes) as they are —
but no personal value. A value is personal when it carries anything from the message's parts
(names, identifiers, birth dates, addresses, amounts, every text) or the statutory
justification: each XML text or attribute value and each JSON string or number that contains
such a value is replaced character by character (letters by ``X``/``x``, digits by ``9``, other
characters kept), so lengths and formats stay visible; a JSON number that is personal (and
every fractional one: amounts) becomes 0. A note's leading category heading (``[Gesundheit]``)
is kept: it is structure. Values shorter than three characters and small numbers such as goal
numbers are not treated as personal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.consent.decision import MessageDecisions
from casebridge.consent.gate import ConsentGate, Evaluation
from casebridge.errors import AdapterError
from casebridge.routing.pipeline import admit, decode_envelope, encode_envelope
from casebridge.routing.routes import RecipientRoute, RouteTable


def render_for(routes: RouteTable, envelope: TransferEnvelope) -> tuple[bytes, str]:
    """The native document the one recipient of ``envelope`` receives, and its media type.

    The worker delivers what this returns; previews show it. AdapterError if the recipient's
    format cannot express the envelope.
    """
    agency = routes.agency(envelope.recipients[0])
    adapter = get_adapter(agency.system)
    return adapter.render_version(envelope, agency.interface_version), adapter.media_type(envelope)


def decide_file(
    routes: RouteTable, gate: ConsentGate, envelopes: list[TransferEnvelope], *, system: str,
    at: datetime,
) -> list[tuple[TransferEnvelope, Evaluation]]:
    """The gateway's decision for every message, without recording it (``casebridge decide``)."""
    return [(envelope, gate.evaluate(envelope, at=at, policies=routes.policies(hits)))
            for envelope, hits in admit(routes, envelopes, system=system)]


@dataclass(frozen=True, slots=True)
class PreviewCopy:
    """What one recipient would receive: the native document, or why there is none."""

    recipient: str
    media_type: str | None
    #: The document exactly as it would be delivered (unmasked); None if nothing is released
    #: or it cannot be rendered.
    native: bytes | None
    #: Why a released copy cannot be rendered (the worker would dead-letter it render_failed).
    problems: tuple[str, ...] = ()

    def masked(self, envelope: TransferEnvelope) -> bytes | None:
        """The document with every personal value masked (see :func:`mask`)."""
        if self.native is None or self.media_type is None:
            return None
        return mask(self.native, self.media_type, envelope)


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    """One message of a previewed file: the decisions and the copy per recipient."""

    envelope: TransferEnvelope
    decisions: MessageDecisions
    copies: dict[str, PreviewCopy]

    def report(self, *, masked: bool = True) -> dict[str, Any]:
        """JSON-ready: per recipient the decision and the (masked) document as text."""
        recipients = []
        for decision in self.decisions.decisions:
            entry = decision.as_report()
            copy = self.copies[decision.recipient]
            body = copy.masked(self.envelope) if masked else copy.native
            entry |= {"media_type": copy.media_type,
                      "document": None if body is None else document_text(body),
                      "problems": list(copy.problems)}
            recipients.append(entry)
        return {"message_id": self.envelope.message_id,
                "message_type": str(self.envelope.message_type),
                "purpose": str(self.envelope.purpose), "recipients": recipients}


def preview_file(
    routes: RouteTable, gate: ConsentGate, envelopes: list[TransferEnvelope], *, system: str,
    at: datetime, requested_by: str,
) -> list[PreviewMessage]:
    """Every message's decision and rendered copies, on the gateway's path (module docstring).

    Route problems are raised for the whole file before anything is decided, as at the door.
    """
    checked = admit(routes, envelopes, system=system)
    return [_preview(routes, gate, envelope, hits, at=at, requested_by=requested_by)
            for envelope, hits in checked]


def _preview(
    routes: RouteTable, gate: ConsentGate, envelope: TransferEnvelope,
    hits: dict[str, RecipientRoute], *, at: datetime, requested_by: str,
) -> PreviewMessage:
    result = gate.preview(envelope, at=at, policies=routes.policies(hits),
                          audit_as=requested_by)
    copies: dict[str, PreviewCopy] = {}
    for decision in result.decisions.decisions:
        released = result.released.get(decision.recipient)
        if released is None:
            copies[decision.recipient] = PreviewCopy(decision.recipient, None, None)
            continue
        # the copy as the worker gets it: through the broker's JSON form
        queued = decode_envelope(encode_envelope(released))
        try:
            native, media_type = render_for(routes, queued)
        except AdapterError as exc:
            copies[decision.recipient] = PreviewCopy(
                decision.recipient, None, None, tuple(exc.lines()[:5]))
            continue
        copies[decision.recipient] = PreviewCopy(decision.recipient, media_type, native)
    return PreviewMessage(envelope, result.decisions, copies)


def document_text(body: bytes) -> str:
    """A rendered document as text (UTF-8, or the ISO-8859-1 the social office declares)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")


# --- masking -----------------------------------------------------------------------------------

#: Keys of canonical content whose values are vocabulary, not personal (``kind``: the part type;
#: ``system``/``use``: identifier systems and contact-point kinds; ``role``/``role_label``/
#: ``relation``: a household member's or grantor's role, e.g. "Kind", which would otherwise mask
#: codes such as ``kinderschutz``).
_VOCABULARY_KEYS = frozenset({"kind", "system", "use", "role", "role_label", "relation"})
_MIN_PERSONAL = 3
_HEADING = re.compile(r"^\[[^\]\n]{1,60}\]\s*")


def personal_values(envelope: TransferEnvelope) -> set[str]:
    """Every value the message's parts (and its justification) carry, in rendered forms too."""
    values: set[str] = set()
    for part in envelope.parts:
        _collect(part.content.model_dump(mode="python", exclude_none=True), values)
    if envelope.statutory is not None:
        values.add(envelope.statutory.justification)
    return {v for v in values if len(v) >= _MIN_PERSONAL}


def _collect(value: Any, into: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _VOCABULARY_KEYS:
                _collect(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, into)
    elif isinstance(value, datetime):
        into.update({value.isoformat(), value.date().isoformat(), value.strftime("%d.%m.%Y")})
    elif isinstance(value, date):
        into.update({value.isoformat(), value.strftime("%d.%m.%Y")})
    elif isinstance(value, str):
        into.add(value.strip())
        # long texts may be re-wrapped or split into lines by a renderer
        into.update(line.strip() for line in value.splitlines())
    elif not isinstance(value, bool | int) and value is not None:  # amounts (Decimal)
        text = str(value)
        into.update({text, text.replace(".", ",")})


def _matcher(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({v for v in values if len(v) >= _MIN_PERSONAL}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE)


def _shape(text: str) -> str:
    head = _HEADING.match(text)
    keep, rest = (head.group(0), text[head.end():]) if head else ("", text)
    return keep + "".join(
        ("X" if c.isupper() else "x") if c.isalpha() else "9" if c.isdigit() else c for c in rest
    )


@dataclass(frozen=True, slots=True)
class _Masker:
    matcher: re.Pattern[str]
    #: header values (ids, agencies) are shown even where a personal value is part of them
    #: (a plan's "Jobcenter" as responsible is not a reason to hide jobcenter-duisburg)
    header: frozenset[str]

    def __call__(self, value: str) -> str:
        if value in self.header or value.startswith(_URI_SCHEMES):
            return value
        return _shape(value) if self.matcher.search(value) else value


_URI_SCHEMES = ("urn:", "http://", "https://")


def mask(native: bytes, media_type: str, envelope: TransferEnvelope) -> bytes:
    """``native`` with every personal value of ``envelope`` masked (module docstring)."""
    matcher = _matcher(personal_values(envelope))
    if matcher is None:
        return native
    header = {envelope.message_id, envelope.sender, *envelope.recipients,
              envelope.created_at.isoformat(), str(envelope.purpose),
              str(envelope.message_type)}
    if envelope.correlation_id is not None:
        header.add(envelope.correlation_id)
    masker = _Masker(matcher, frozenset(header))
    if "xml" in media_type:
        return _mask_xml(native, masker)
    return _mask_json(native, masker)


def _mask_xml(native: bytes, masked: _Masker) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    root = etree.fromstring(native, parser)
    for el in root.iter():
        if el.text:
            el.text = masked(el.text)
        for name, value in el.attrib.items():
            el.set(name, masked(str(value)))
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    out = etree.tostring(root, xml_declaration=True, encoding=encoding)
    return out if isinstance(out, bytes) else out.encode(encoding)


def _mask_json(native: bytes, masked: _Masker) -> bytes:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return masked(value)
        if isinstance(value, float):  # amounts: the only fractional numbers in the formats
            return 0.0
        if isinstance(value, int) and not isinstance(value, bool):
            return 0 if masked.matcher.fullmatch(str(value)) else value
        return value

    return json.dumps(walk(json.loads(native)), ensure_ascii=False, indent=2).encode()
