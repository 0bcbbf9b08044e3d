"""Referrals and their lifecycle."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.types import AgencyId, MessageId, Text
from casebridge.canonical_model.vocabulary import (
    PurposeField,
    ReferralStatus,
    ReferralStatusField,
    can_transition,
)


class StatusChange(CanonicalModel):
    """One step in a referral's lifecycle and the message that reported it."""

    status: ReferralStatusField
    at: AwareDatetime
    reported_by: AgencyId
    message_id: MessageId | None = None


class Referral(CanonicalModel):
    """A referral from one agency to one or more others, and where it stands."""

    message_id: MessageId
    correlation_id: MessageId | None = None
    sender: AgencyId
    recipients: list[AgencyId] = Field(min_length=1)
    purpose: PurposeField
    service: Text | None = None
    requested_at: AwareDatetime
    status: ReferralStatusField = ReferralStatus.REQUESTED
    history: list[StatusChange] = Field(default_factory=list)

    def advance(self, change: StatusChange) -> Referral:
        """The referral after ``change``; a backward or post-terminal move raises ValueError."""
        if not can_transition(self.status, change.status):
            raise ValueError(
                f"status: a referral that is '{self.status}' cannot become '{change.status}'"
            )
        return self.model_copy(
            update={"status": change.status, "history": [*self.history, change]}
        )
