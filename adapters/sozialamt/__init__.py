"""Social office adapter (``sozialamt``): XML ``Fallmitteilungen`` files in ISO-8859-1.

Namespace ``urn:de:sozialamt:fallmitteilung:1``; schema ``sozialamt.xsd`` beside this file. A
file holds 1..n ``Fallmitteilung``; :meth:`SozialamtAdapter.parse` returns one envelope per
message, in file order. Every file is checked (size, ISO-8859-1, no DOCTYPE) and validated against
the XSD before it is mapped.

Mapping (interface README): ``Von``/``An`` → sender/recipients; ``Anlass`` Zuweisung/
Fallkonferenz/Hilfeplanung → referral/case_conference/joint_planning; ``Termin`` →
``conference.scheduled_at``; ``Zeitpunkt`` → ``created_at`` (``DD.MM.YYYY HH:MM``, naive times
are Europe/Berlin); ``Person/Name`` "Family, Given" → identity, kept as written (matching uses
``PersonName.normalised()``); ``GebDatum`` → birth date; ``Adresse`` → contact (as written);
``Akte/Aktenzeichen`` → identifier ``urn:casebridge:id:{Von}:aktenzeichen`` in the identity;
``Akte`` with ``Rechtsgebiet``/``Hilfeart`` → a case-file part of category **benefits** (it states
which assistance the client receives), or **health** when the Rechtsgebiet is SGB IX (integration
assistance is granted for a disability, Art. 9 GDPR); ``Angabe/@bereich`` Wohnen/Finanzen/
Schulden/Gesundheit/Sucht/Arbeit/Bildung/Familie → housing/finances/debts/health/addiction/
employment/education/household; ``Vermerk`` → case_notes. A Vermerk that mentions a consent is a
note, never a consent.

Documented choices:

- Unknown native elements or attribute values are **rejected** (the XSD is closed): guessing a
  category for unknown content could put special-category data into an ordinary category.
- Rendering works for envelopes from any system and writes ISO-8859-1; characters outside
  Latin-1 become character references. A part is written natively only if reading it back yields
  the same canonical data; anything else (benefits, criminal, entrusted, a job centre's
  Kundennummer, a second address, telecom …) is written as a ``Vermerk`` in German prose under
  its category heading (:mod:`casebridge.adapters.prose`), read back into that category; carrier
  notes of the previous release are still read, never written. Format 1.5 (written): Anlass
  ``Kinderschutz`` with ``Rechtsgrundlage``/``Begruendung``, ``Angabe`` Kinderschutz, ``Ort``,
  ``Hilfeplan``; format 1.4 is written for a recipient whose route-table entry declares
  ``interface_version: "1.4"`` (observations become ``[Kinderschutz]`` notes, the plan a
  ``[Hilfeplan]`` note, the place a sentence; a notification is refused at the door for such a
  recipient). Status updates and purposes without Anlass (service_delivery,
  benefit_decision) raise RenderError.
- Not carried: ``reason_part_ids``, ``source_system``, header data without an element (service
  text, correlation id, seconds), statement labels of other formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, cast

from lxml import etree

from casebridge.adapters import statutory, xml
from casebridge.adapters.base import Adapter
from casebridge.adapters.sozialamt.read import NS, read_file
from casebridge.adapters.sozialamt.write import FORMAT, FORMATS, build, document
from casebridge.canonical_model import AgencyKind, TransferEnvelope
from casebridge.errors import Problem, RenderError

SCHEMA = Path(__file__).with_name("sozialamt.xsd")
_DECLARATION = b"<?xml version='1.0' encoding='ISO-8859-1'?>\n"

__all__ = ["NS", "SCHEMA", "SozialamtAdapter"]


class SozialamtAdapter(Adapter):
    """The social office case software's XML interface, both directions."""

    system: ClassVar[str] = "sozialamt"
    agency_kind: ClassVar[AgencyKind] = AgencyKind.SOCIAL_OFFICE
    media_types: ClassVar[tuple[str, ...]] = ("application/xml", "text/xml")
    interface_versions: ClassVar[tuple[str, ...]] = FORMATS

    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        """A Fallmitteilungen file → one envelope per Fallmitteilung."""
        self.check_size(raw, source)
        root = xml.parse(raw, encoding="iso8859-1", source=source)
        xml.check_root(root, NS, ("Fallmitteilungen",), source)
        xml.validate(root, xml.load_schema(SCHEMA), source)
        return read_file(root, source)

    def render(self, envelope: TransferEnvelope) -> bytes:
        """One envelope → a Fallmitteilungen file holding one Fallmitteilung."""
        return self.render_all([envelope])

    @classmethod
    def version_refusal(cls, envelope: TransferEnvelope, version: str) -> str | None:
        """A Kinderschutz notification needs format 1.5."""
        return statutory.version_refusal(envelope, version, FORMAT, "Fallmitteilung")

    def render_version(self, envelope: TransferEnvelope, version: str | None) -> bytes:
        """One envelope in format ``version`` (1.4 or 1.5; None: 1.5)."""
        return self.render_all([envelope], version=version or FORMAT)

    def render_all(
        self, envelopes: Sequence[TransferEnvelope], *, version: str = FORMAT
    ) -> bytes:
        """Several envelopes → one Fallmitteilungen file (the format's batch form)."""
        try:
            root = document([build(e, version) for e in envelopes], version)
        except ValueError as exc:  # lxml refuses text that XML 1.0 cannot hold
            raise RenderError(
                "not representable in XML",
                problems=[Problem("parts", f"text not representable in XML 1.0 ({_reason(exc)})")],
            ) from None
        # Not validated against the XSD again: built from validated envelopes, with the bounds
        # the XSD sets checked as values are written (write.py); the property tests validate
        # every message type in both formats against sozialamt.xsd.
        out = cast(
            bytes,
            etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True),
        )
        if xml.looks_like_utf8(out):
            # Rare Latin-1 text that is also valid UTF-8 (or holds C1 controls) would be refused
            # as mislabelled by our own reader: write every non-ASCII character as a reference.
            out = _DECLARATION + etree.tostring(root, encoding="us-ascii", pretty_print=True)
        return out


def _reason(exc: ValueError) -> str:
    return "control characters or NULL bytes" if "XML compatible" in str(exc) else "invalid text"
