"""The one small interface every adapter implements.

An adapter is stateless and thread-safe. ``parse`` turns the bytes an agency system sends into
canonical envelopes (a social-office file may hold several messages, so it returns a list);
``render`` turns one envelope addressed to that system into the bytes it accepts. Both raise
only :class:`casebridge.errors.AdapterError` subclasses for bad input, with problems that name
the position (line for XML, JSON pointer for JSON) and never quote personal data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from casebridge.canonical_model import AgencyKind, TransferEnvelope
from casebridge.errors import InputTooLarge, Problem
from casebridge.settings import DEFAULT_MAX_MESSAGE_BYTES


class Adapter(ABC):
    """Translate one agency system's native messages to canonical envelopes and back."""

    #: Short system name used in the route table and on the command line, e.g. ``jobcenter``.
    system: ClassVar[str]
    #: The kind of agency that runs this system.
    agency_kind: ClassVar[AgencyKind]
    #: Media types ``parse`` accepts (the gateway checks Content-Type against them).
    media_types: ClassVar[tuple[str, ...]]
    #: The interface versions :meth:`render_version` can write, oldest first; the route table
    #: may declare one per agency (``interface_version``). Empty: the system has one version.
    interface_versions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes

    def check_size(self, raw: bytes, source: str) -> None:
        """Refuse input over the size bound before any parser sees it."""
        if len(raw) > self.max_bytes:
            raise InputTooLarge(
                f"{source}: input of {len(raw)} bytes exceeds the limit of {self.max_bytes}",
                problems=[Problem(source, f"input exceeds the limit of {self.max_bytes} bytes")],
            )

    @abstractmethod
    def parse(self, raw: bytes, *, source: str = "<input>") -> list[TransferEnvelope]:
        """Native bytes → one or more canonical envelopes (validated against the schema first)."""

    @abstractmethod
    def render(self, envelope: TransferEnvelope) -> bytes:
        """One canonical envelope → the native bytes this system accepts."""

    def render_version(self, envelope: TransferEnvelope, version: str | None) -> bytes:
        """``envelope`` in interface ``version`` (None: the newest), for a recipient whose route
        table entry declares it. An adapter with one version (every plugin written before
        versions existed) needs not override this: it renders with :meth:`render`."""
        return self.render(envelope)

    @classmethod
    def version_refusal(cls, envelope: TransferEnvelope, version: str) -> str | None:
        """Why a recipient running ``version`` cannot receive ``envelope`` at all (asked at the
        door, so such a message is refused before it leaves, never silently downgraded)."""
        return None

    def media_type(self, envelope: TransferEnvelope) -> str:
        """The media type of what :meth:`render` produces for ``envelope``."""
        return self.media_types[0]
