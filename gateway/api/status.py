"""Status for the sender: what became of a message, and what is overdue (no data, ever).

``GET /v1/status/messages/{message_id}``: for each recipient of a message the caller sent, the
decision at the door and what happened later -- ``queued``, ``delivered``, ``blocked`` (at the
door, or at delivery e.g. after a withdrawal) or ``dead`` (dead-lettered) -- with the reason
code. Only the sender may ask; for anyone else the message does not exist (404).

``GET /v1/status/overdue``: the referrals the caller sent or received that are past their
response time without an answer, and the measures of delivered support plans past their due date
that the caller follows up (responsible for them, or owner of the plan of a client's measure).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from casebridge.errors import NotFound
from casebridge.gateway.api.referrals import ReferralStatusView
from casebridge.gateway.deps import CurrentAgency, DatabaseDep, RoutingDep
from casebridge.gateway.intake import InboundRow
from casebridge.gateway.problems import problem_responses
from casebridge.routing.store import DeliveryRow

router = APIRouter(prefix="/v1/status", tags=["status"])

MessageIdPath = Annotated[str, Path(min_length=1, max_length=128,
                                    description="The id of a message the caller sent.")]


class RecipientState(BaseModel):
    """What became of the message for one recipient."""

    recipient: str
    state: Literal["queued", "delivered", "blocked", "dead"]
    stage: Literal["inbound", "delivery"] = Field(
        description="Where the state was reached: at the door (inbound) or at delivery."
    )
    reason: str | None = Field(
        description="Reason code of a block or dead letter, e.g. withdrawn, "
        "special_category_not_named, retries_exhausted, render_failed."
    )
    withheld: list[dict[str, str]] = Field(
        description="Categories withheld at the door, each with its reason."
    )
    at: datetime | None = Field(description="When the delivery state was last recorded.")


class MessageStatus(BaseModel):
    """Every recipient of one message and its state."""

    message_id: str
    sender: str
    recipients: list[RecipientState]


def _door(row: InboundRow | None) -> dict[str, dict[str, Any]]:
    if row is None or row.result_json is None:
        return {}
    return {r["recipient"]: r for r in json.loads(row.result_json).get("recipients", [])}


def _state(recipient: str, door: dict[str, Any] | None, row: DeliveryRow | None
           ) -> RecipientState:
    withheld = list(door["withheld"]) if door else []
    if row is not None and row.state in ("delivered", "blocked", "dead"):
        return RecipientState(recipient=recipient, state=row.state, stage="delivery",
                              reason=row.reason, withheld=withheld, at=row.updated_at)
    if door is not None and not door.get("queued"):
        reasons = sorted({w["reason"] for w in withheld})
        return RecipientState(recipient=recipient, state="blocked", stage="inbound",
                              reason=reasons[0] if len(reasons) == 1 else ",".join(reasons)
                              or "block", withheld=withheld, at=None)
    return RecipientState(recipient=recipient, state="queued", stage="inbound", reason=None,
                          withheld=withheld, at=row.updated_at if row is not None else None)


@router.get(
    "/messages/{message_id}",
    response_model=MessageStatus,
    summary="What became of a message the caller sent, per recipient (reason codes, no data)",
    responses=problem_responses(401, 403, 404, 422),
)
def message_status(message_id: MessageIdPath, caller: CurrentAgency, db: DatabaseDep
                   ) -> MessageStatus:
    """Per recipient: queued, delivered, blocked (at the door or at delivery) or dead."""
    sender = caller.agency
    assert sender is not None
    with db.session() as session:
        inbound = session.get(InboundRow, (sender, message_id))
        rows = list(session.scalars(select(DeliveryRow).where(
            DeliveryRow.message_id == message_id, DeliveryRow.sender == sender)))
        door = _door(inbound)
        delivered = {r.recipient: r for r in rows}
        if inbound is None and not rows:
            raise NotFound(f"message '{message_id}' is not known to casebridge")
        recipients = sorted(set(door) | set(delivered))
        return MessageStatus(message_id=message_id, sender=sender, recipients=[
            _state(r, door.get(r), delivered.get(r)) for r in recipients])


class OverdueMeasure(BaseModel):
    """A measure of a delivered support plan past its due date (no text: the plan has it)."""

    plan_message_id: str
    owner: str = Field(description="The agency whose plan it is.")
    recipients: list[str]
    measure: int = Field(description="Position of the measure in the plan (1-based).")
    goal: int | None
    responsible_role: Literal["agency", "client", "other"]
    responsible_agency: str | None
    follow_up_by: str
    due: date
    days_overdue: int


class Overdue(BaseModel):
    """What the caller should follow up."""

    referrals: list[ReferralStatusView]
    measures: list[OverdueMeasure]


@router.get(
    "/overdue",
    response_model=Overdue,
    summary="Overdue referrals and plan measures the caller follows up",
    responses=problem_responses(401, 403, 503),
)
def overdue(caller: CurrentAgency, routing: RoutingDep) -> Overdue:
    """Referrals the caller sent or received without an answer past their response time, and
    plan measures past their due date it is responsible for (or owns the plan of)."""
    agency = caller.agency
    assert agency is not None
    now = datetime.now(UTC)
    service = routing.referrals()
    referrals = [v for v in service.overdue(now=now)
                 if agency in {v.referral.sender, *v.referral.recipients}]
    return Overdue(
        referrals=[ReferralStatusView.model_validate(v.as_report(now)) for v in referrals],
        measures=[OverdueMeasure.model_validate(m.as_report(now.date()))
                  for m in service.overdue_measures(today=now.date(), agency=agency)],
    )
