"""Referral status: the lifecycle of a referral, for the agencies that are party to it.

Parties are the referring agency and the agencies the referral was sent to. For anyone else the
referral does not exist (404), so a message id reveals nothing about other agencies' clients.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from casebridge.errors import NotFound
from casebridge.gateway.deps import CurrentAgency, RoutingDep
from casebridge.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

MessageIdPath = Annotated[str, Path(min_length=1, max_length=128,
                                    description="The referral message's id.")]


class StatusStep(BaseModel):
    """One status the referral reached (or a report the lifecycle did not allow)."""

    status: str
    at: datetime
    reported_by: str
    message_id: str | None


class ReferralStatusView(BaseModel):
    """Where a referral stands."""

    referral_id: str
    sender: str
    recipients: list[str]
    purpose: str
    requested_at: datetime
    status: str = Field(description="requested, received, accepted, rejected, in_progress, …")
    due_at: datetime = Field(description="When an answer is expected (working days).")
    response_days: int
    overdue: bool
    history: list[StatusStep]
    ignored: list[StatusStep] = Field(
        description="Reports the lifecycle forbids (e.g. backwards), kept for the record."
    )


@router.get(
    "/{message_id}",
    response_model=ReferralStatusView,
    summary="The lifecycle of a referral the caller is party to",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def referral_status(
    message_id: MessageIdPath, caller: CurrentAgency, routing: RoutingDep
) -> ReferralStatusView:
    """Status, history and due date; only for the sender and the recipients."""
    view = routing.referrals().get(message_id)
    referral = view.referral if view is not None else None
    if referral is None or caller.agency not in {referral.sender, *referral.recipients}:
        raise NotFound(f"referral '{message_id}' is not known to casebridge")
    assert view is not None
    return ReferralStatusView.model_validate(view.as_report(datetime.now(UTC)))
