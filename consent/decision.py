"""The decision value: what one recipient may receive of one message, and why not the rest.

A :class:`Decision` is immutable and carries no payload: only categories, reasons, consent ids
and the legal basis. It is what the audit trail records and what the sender is told.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.types import AgencyId, LegalBasisCode, MessageId, NonEmptyStr
from casebridge.canonical_model.vocabulary import (
    CategoryField,
    Outcome,
    OutcomeField,
    WithholdReasonField,
)


class WithheldCategory(CanonicalModel):
    """A category that was not released, with the one reason nearest to the data."""

    category: CategoryField
    reason: WithholdReasonField


class Decision(CanonicalModel):
    """The outcome for one recipient of one message."""

    recipient: AgencyId
    outcome: OutcomeField
    released: list[CategoryField] = Field(default_factory=list)
    withheld: list[WithheldCategory] = Field(default_factory=list)
    consents: list[NonEmptyStr] = Field(default_factory=list)
    legal_basis: LegalBasisCode | None = None
    review_required: bool = Field(
        default=False, description="A statutory override awaiting the DPO's review (rule 8)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Decision:
        released = set(self.released)
        withheld = [w.category for w in self.withheld]
        if len(set(withheld)) != len(withheld) or released & set(withheld):
            raise ValueError("withheld: every category has exactly one fate")
        if self.outcome == Outcome.BLOCK and self.released:
            raise ValueError("released: a blocked transfer releases nothing")
        if self.outcome == Outcome.PERMIT and self.withheld:
            raise ValueError("withheld: a permit withholds nothing")
        if self.outcome == Outcome.PARTIAL and not (self.released and self.withheld):
            raise ValueError("outcome: partial means some released and some withheld")
        if self.outcome == Outcome.OVERRIDE and not self.legal_basis:
            raise ValueError("legal_basis: a statutory override needs its legal basis")
        return self

    def as_report(self) -> dict[str, Any]:
        """The decision in the JSON shape of ``casebridge decide`` (sorted, stable)."""
        return {
            "recipient": self.recipient,
            "outcome": str(self.outcome),
            "released": sorted(str(c) for c in self.released),
            "withheld": [
                {"category": str(w.category), "reason": str(w.reason)}
                for w in sorted(self.withheld, key=lambda w: str(w.category))
            ],
            "consents": sorted(self.consents),
            "legal_basis": self.legal_basis,
        }


class MessageDecisions(CanonicalModel):
    """All decisions for one message: one per recipient."""

    message_id: MessageId
    decisions: list[Decision]

    def as_report(self) -> dict[str, Any]:
        """``{"message_id": ..., "decisions": [...]}`` as ``casebridge decide`` prints it."""
        return {
            "message_id": self.message_id,
            "decisions": [d.as_report() for d in self.decisions],
        }
