"""The transfer envelope: what routing carries and the consent engine filters.

The envelope's header holds only routing metadata (ids, agencies, purpose, times, status codes,
catalogue texts of the service requested). Every datum about a person sits in exactly one
categorised :class:`~casebridge.canonical_model.parts.Part`. Because the models forbid unknown
fields, there is no other place to put personal data: filtering the parts by category is all the
consent engine needs to do to minimise a transfer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from operator import attrgetter
from typing import Final, Literal

from pydantic import AwareDatetime, Field, model_validator

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.parts import Part
from casebridge.canonical_model.types import AgencyId, LegalBasisCode, MessageId, NonEmptyStr, Text
from casebridge.canonical_model.vocabulary import (
    Category,
    MessageType,
    MessageTypeField,
    PurposeField,
    ReferralStatusField,
)

SCHEMA_VERSION: Final = "1.0"
# For the validator every envelope passes: a C-level getter instead of a comprehension's frame,
# a module global instead of a class attribute read.
_PART_ID = attrgetter("id")
_STATUS_UPDATE = MessageType.STATUS_UPDATE


class ConferenceInfo(CanonicalModel):
    """A case-conference invitation: when and where."""

    scheduled_at: AwareDatetime | None = None
    location: NonEmptyStr | None = None


class StatusInfo(CanonicalModel):
    """A status update on a referral, as the recipient reported it."""

    status: ReferralStatusField
    effective_on: date | None = Field(default=None, description="When the new status began.")
    native_status: NonEmptyStr | None = Field(
        default=None, description="The code the reporting system used, e.g. 'begonnen'."
    )


class StatutoryClaim(CanonicalModel):
    """A sender's claim that a transfer is lawful without consent (rule 8)."""

    legal_basis: LegalBasisCode = Field(description="e.g. 'sgb-viii-8a' for §8a SGB VIII.")
    justification: Text = Field(description="The written justification for the DPO's review.")


class TransferEnvelope(CanonicalModel):
    """One canonical message from one sender to one or more recipients."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    message_id: MessageId
    correlation_id: MessageId | None = Field(
        default=None, description="Message id of the referral this message belongs to."
    )
    message_type: MessageTypeField
    sender: AgencyId
    recipients: list[AgencyId] = Field(min_length=1)
    purpose: PurposeField
    created_at: AwareDatetime
    source_system: NonEmptyStr | None = Field(
        default=None, description="Adapter that produced this envelope (e.g. 'jobcenter')."
    )
    service: Text | None = Field(
        default=None, description="What is requested, in the sender's catalogue words."
    )
    conference: ConferenceInfo | None = None
    status: StatusInfo | None = None
    reason_part_ids: list[NonEmptyStr] = Field(
        default_factory=list, description="Parts that state why the client is referred."
    )
    statutory: StatutoryClaim | None = None
    parts: list[Part] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TransferEnvelope:
        fields = self.__dict__
        recipients = fields["recipients"]
        if len(recipients) > 1 and len(set(recipients)) != len(recipients):
            raise ValueError("recipients: an agency is named twice")
        if fields["sender"] in recipients:
            raise ValueError("recipients: the sender cannot be its own recipient")
        parts = fields["parts"]
        ids = set(map(_PART_ID, parts))
        if len(ids) != len(parts):
            raise ValueError("parts: part ids must be unique within an envelope")
        if fields["reason_part_ids"]:
            missing = set(fields["reason_part_ids"]) - ids
            if missing:
                raise ValueError(
                    f"reason_part_ids: no part with id {', '.join(sorted(missing))}"
                )
        status = fields["status"]
        if fields["message_type"] is _STATUS_UPDATE:
            if status is None:
                raise ValueError("status: a status_update needs a status")
            if fields["correlation_id"] is None:
                raise ValueError(
                    "correlation_id: a status_update must name the referral it answers"
                )
        elif status is not None:
            raise ValueError("status: only a status_update carries a status")
        return self

    @property
    def categories(self) -> frozenset[Category]:
        """Every category present in the message."""
        return frozenset(p.category for p in self.parts)

    def only_categories(self, keep: Iterable[Category]) -> TransferEnvelope:
        """A copy without the parts whose category is not in ``keep`` (minimisation)."""
        wanted = frozenset(keep)
        parts = [p for p in self.parts if p.category in wanted]
        kept_ids = {p.id for p in parts}
        return self.model_copy(
            update={
                "parts": parts,
                "reason_part_ids": [i for i in self.reason_part_ids if i in kept_ids],
            }
        )

    def for_recipient(self, recipient: str) -> TransferEnvelope:
        """A copy addressed to one of the recipients only (routing publishes one per recipient)."""
        if recipient not in self.recipients:
            raise ValueError(f"recipients: '{recipient}' is not a recipient of this message")
        return self.model_copy(update={"recipients": [recipient]})
