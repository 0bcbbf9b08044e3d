"""Provider systems: FHIR R4 (fhir.resources R4B models), JSON and XML, in and out."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from lxml import etree
from pydantic import ValidationError

from casebridge.adapters.base import Adapter
from casebridge.adapters.json_input import at, dump_json, load_json, pointer
from casebridge.adapters.provider_fhir import notification, read, write
from casebridge.canonical_model import AgencyKind, MessageType, Purpose, TransferEnvelope
from casebridge.errors import ParseError, Problem, RenderError, SchemaError
from casebridge.settings import DEFAULT_MAX_MESSAGE_BYTES

JSON_MEDIA_TYPE = "application/fhir+json"
XML_MEDIA_TYPE = "application/fhir+xml"
FHIR_NS = "http://hl7.org/fhir"
#: FHIR resources nest a dozen levels at most; deeper XML is refused before validation.
MAX_DEPTH = 48


def _models() -> dict[str, Any]:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.task import Task

    return {"Bundle": Bundle, "Task": Task}


def _xml_parser() -> etree.XMLParser:
    # No entities, no DTDs, no network: XXE and entity expansion cannot happen.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True)


def _fhir_problems(exc: ValidationError, source: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        # fhir.resources reports the resource class in polymorphic locations; keep JSON names.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper())]
        msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(Problem(at(source, pointer(loc)), msg))
    return problems


class ProviderFhirAdapter(Adapter):
    """FHIR R4: a transaction Bundle (Patient, ServiceRequest, Task) for a referral; a Task
    for a status update. JSON or XML in (told apart by the first byte); JSON out by default,
    FHIR XML with ``output="xml"`` or :meth:`render_xml`.

    Elements casebridge does not map are rejected with their pointer, never dropped.
    """

    system: ClassVar[str] = "provider-fhir"
    agency_kind: ClassVar[AgencyKind] = AgencyKind.PROVIDER
    media_types: ClassVar[tuple[str, ...]] = (JSON_MEDIA_TYPE, XML_MEDIA_TYPE)

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 output: Literal["json", "xml"] = "json") -> None:
        super().__init__(max_bytes=max_bytes)
        self.output = output

    # --- in --------------------------------------------------------------------------------

    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        """FHIR JSON or XML bytes → one canonical envelope."""
        self.check_size(raw, source)
        first = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if first in (b"{", b"["):
            resource = self._from_json(raw, source)
        elif first == b"<":
            resource = self._from_xml(raw, source)
        else:
            raise ParseError(f"{source}: neither FHIR JSON nor FHIR XML",
                             problems=[Problem(source, "input is neither FHIR JSON nor XML")])
        if type(resource).__name__ == "Bundle":
            return [read.bundle_to_envelope(resource, source)]
        return [read.task_to_envelope(resource, source)]

    def _from_json(self, raw: bytes, source: str) -> Any:
        # No nesting walk here: fhir.resources' own recursion on absurd depth is caught below,
        # and a walk over every node would cost about a tenth of the validation.
        data = load_json(raw, source)
        kind = data.get("resourceType") if isinstance(data, dict) else None
        model = _models().get(kind) if isinstance(kind, str) else None
        if model is None:
            raise SchemaError(f"{source}: not a Bundle or Task", problems=[Problem(
                at(source, "/resourceType"), "must be 'Bundle' (referral) or 'Task' (status)")])
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(f"{source}: invalid FHIR {kind}",
                              problems=_fhir_problems(exc, source)) from None
        except RecursionError:
            raise ParseError(f"{source}: nested too deeply",
                             problems=[Problem(source, "FHIR nested too deeply")]) from None

    def _from_xml(self, raw: bytes, source: str) -> Any:
        head = raw[:4096]
        if b"<!DOCTYPE" in head or b"<!ENTITY" in raw:
            raise ParseError(f"{source}: DTDs are not allowed",
                             problems=[Problem(source, "DTD / entity declarations are refused")])
        parser = _xml_parser()
        try:
            root = etree.fromstring(raw, parser=parser)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno or 0
            raise ParseError(f"{source}: not well-formed XML", problems=[
                Problem(f"{source}:line {line}", str(exc.msg))]) from None
        qname = etree.QName(root)
        model = _models().get(qname.localname) if qname.namespace == FHIR_NS else None
        if model is None:
            raise SchemaError(f"{source}: not a FHIR Bundle or Task", problems=[Problem(
                f"{source}:line {root.sourceline}",
                "root must be Bundle or Task in namespace http://hl7.org/fhir")])
        if _xml_depth(root) > MAX_DEPTH:
            raise ParseError(f"{source}: nested too deeply",
                             problems=[Problem(source, "FHIR XML nested too deeply")])
        try:
            return model.model_validate_xml(raw, xmlparser=_xml_parser())
        except ValidationError as exc:
            raise SchemaError(f"{source}: invalid FHIR {qname.localname}",
                              problems=_fhir_problems(exc, source)) from None
        except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as exc:
            # fhir.resources' XML reader reports unknown elements with plain exceptions.
            raise SchemaError(f"{source}: invalid FHIR XML", problems=[Problem(
                source, f"not valid FHIR XML ({type(exc).__name__})")]) from None

    # --- out -------------------------------------------------------------------------------

    def resource(self, envelope: TransferEnvelope) -> Any:
        """The fhir.resources model (Bundle or Task) for ``envelope``, validated."""
        data, model = self._data(envelope)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RenderError("the envelope does not make valid FHIR",
                              problems=_fhir_problems(exc, "<rendered>")) from None

    def _data(self, envelope: TransferEnvelope) -> tuple[dict[str, Any], Any]:
        """The resource as FHIR JSON data, and the fhir.resources model class it is of."""
        models = _models()
        if envelope.message_type == MessageType.STATUS_UPDATE:
            return write.task(envelope), models["Task"]
        if envelope.purpose is Purpose.CHILD_PROTECTION:
            return notification.bundle(envelope), models["Bundle"]
        return write.bundle(envelope), models["Bundle"]

    def render(self, envelope: TransferEnvelope) -> bytes:
        """One envelope → FHIR bytes (JSON, or XML when the adapter was made for XML)."""
        return self.render_xml(envelope) if self.output == "xml" else self.render_json(envelope)

    def render_json(self, envelope: TransferEnvelope) -> bytes:
        """One envelope → FHIR JSON (application/fhir+json)."""
        # Not validated by fhir.resources again: the data is built from a validated envelope,
        # and validating it cost ~85 % of the render. What FHIR could refuse of canonical
        # values is made valid where it is written (date-time offsets: moments.iso); the
        # property tests validate every rendered resource with fhir.resources' R4B models.
        data, _ = self._data(envelope)
        return dump_json(data)

    def render_xml(self, envelope: TransferEnvelope) -> bytes:
        """One envelope → FHIR XML (application/fhir+xml), UTF-8 with declaration."""
        # fhir.resources' model is the XML serialiser, so the XML form is still built from a
        # validated model (routing writes JSON; XML is the translate command's option).
        out: bytes = self.resource(envelope).model_dump_xml()
        return out

    def media_type(self, envelope: TransferEnvelope) -> str:
        """What :meth:`render` produces."""
        return XML_MEDIA_TYPE if self.output == "xml" else JSON_MEDIA_TYPE


def _xml_depth(root: Any) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in node)
    return deepest
