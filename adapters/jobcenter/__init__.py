"""Job centre adapter (``jobcenter``): XML ``Zuweisung`` / ``Rueckmeldung``, UTF-8.

Namespace ``urn:de:jobcenter:schnittstelle:zuweisung:2``; schema ``jobcenter.xsd`` beside this
file. Every inbound message is checked (size, encoding, no DOCTYPE) and validated against the XSD
before it is mapped.

Mapping (interface README): ``Kunde`` → identity (Kundennummer and BGNummer become identifiers
``urn:casebridge:id:{agency}:kundennummer`` / ``:bg-nummer`` of the sending job centre; in a
``Rueckmeldung`` the number is the receiving job centre's) and contact; ``Bedarfsgemeinschaft`` →
household; ``Leistung`` → benefits; ``Profil/Schulabschluss|Berufsabschluss`` → education;
``LetzteTaetigkeit`` → employment; ``Vermittlungshemmnis/@kategorie`` gesundheit/sucht/schulden/
wohnen/familie/sonstige → health/addiction/debts/housing/household/case_notes;
``Kooperationsplan`` → support_plan; ``Vermerk`` → case_notes; ``Absender/@sachbearbeitung`` (the
sending team) → a case_notes statement, so nothing read is lost. ``Zweck/@schluessel`` ZUW/FK/KP →
referral/case_conference/joint_planning; ``Rueckmeldung/Status`` → a status update
(``service_delivery``) whose ``BezugNachrichtenID`` is the correlation id.

Documented choices:

- Unknown native elements or attribute values are **rejected** (the XSD is closed): guessing a
  category for unknown content could put special-category data into an ordinary category.
- Rendering works for envelopes from any system. A part is written into its native element only
  if reading that element back yields the same canonical data; anything else (a category the
  format has no element for, e.g. finances, criminal, entrusted, a case file; a note with an
  author; a second plan) is written as a ``Vermerk`` in German prose under its category heading
  (:mod:`casebridge.adapters.prose`), read back into that category. Carrier notes of the
  previous release are still read, never written. A purpose without Zweck code
  (service_delivery, benefit_decision) or a status update to several recipients raises
  RenderError.
- Version 2.4 (written by default): ``KS`` notifications with ``Rechtsgrundlage``/``Begruendung``
  and ``Gefaehrdungshinweis`` (``@betrifft``: the child among the Mitglieder), ``Kopf/Konferenz``,
  ``Kooperationsplan/Teilziel``. 2.3 messages are read as before, and 2.3 is written for a
  recipient whose route-table entry declares ``interface_version: "2.3"``: observations become
  ``[Kinderschutz]`` notes, a plan with sub-goals a ``[Hilfeplan]`` note, the conference date and
  place a sentence; a ``KS`` notification is refused for such a recipient (at the door).
- Not carried: ``reason_part_ids`` and ``source_system`` (routing metadata re-derived on read),
  header data without an element (message type, ``failed``, seconds), statement labels of other
  formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from lxml import etree

from casebridge.adapters import statutory, xml
from casebridge.adapters.base import Adapter
from casebridge.adapters.jobcenter.read import NS, read_rueckmeldung, read_zuweisung
from casebridge.adapters.jobcenter.write import VERSION, VERSIONS, build
from casebridge.canonical_model import AgencyKind, TransferEnvelope
from casebridge.errors import Problem, RenderError

SCHEMA = Path(__file__).with_name("jobcenter.xsd")

__all__ = ["NS", "SCHEMA", "JobcenterAdapter"]


class JobcenterAdapter(Adapter):
    """The job centre case system's XML interface, both directions."""

    system: ClassVar[str] = "jobcenter"
    agency_kind: ClassVar[AgencyKind] = AgencyKind.JOBCENTER
    media_types: ClassVar[tuple[str, ...]] = ("application/xml", "text/xml")
    interface_versions: ClassVar[tuple[str, ...]] = VERSIONS

    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        """A Zuweisung or Rueckmeldung → one envelope."""
        self.check_size(raw, source)
        root = xml.parse(raw, encoding="utf-8", source=source)
        kind = xml.check_root(root, NS, ("Zuweisung", "Rueckmeldung"), source)
        xml.validate(root, xml.load_schema(SCHEMA), source)
        if kind == "Zuweisung":
            return [read_zuweisung(root, source)]
        return [read_rueckmeldung(root, source)]

    def render(self, envelope: TransferEnvelope) -> bytes:
        """A status update → Rueckmeldung; a referral, conference or planning → Zuweisung."""
        return self.render_version(envelope, None)

    @classmethod
    def version_refusal(cls, envelope: TransferEnvelope, version: str) -> str | None:
        """A KS notification needs 2.4."""
        return statutory.version_refusal(envelope, version, VERSION, "Zuweisung")

    def render_version(self, envelope: TransferEnvelope, version: str | None) -> bytes:
        """The message in interface ``version`` (2.3 or 2.4; None: 2.4)."""
        try:
            root = build(envelope, version or VERSION)
        except ValueError as exc:  # lxml refuses text that XML 1.0 cannot hold
            raise RenderError(
                "not representable in XML",
                problems=[
                    Problem(
                        envelope.message_id, f"text not representable in XML 1.0 ({_reason(exc)})"
                    )
                ],
            ) from None
        # Not validated against the XSD again: built from a validated envelope, with the
        # lengths the XSD bounds checked as they are written (write.py); the property tests
        # validate every message type in both versions against jobcenter.xsd.
        return bytes(
            etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        )


def _reason(exc: ValueError) -> str:
    text = str(exc)
    return "control characters or NULL bytes" if "XML compatible" in text else "invalid text"
