"""Outbox of pull agencies: list pending messages, fetch one in native format, acknowledge.

Only the authenticated agency's own outbox is ever visible: every call passes the caller's
agency to :class:`~casebridge.routing.delivery.Outbox`, and an item of another agency is
answered exactly like one that does not exist (404), so ids reveal nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from casebridge.gateway.deps import CurrentAgency, RoutingDep
from casebridge.gateway.metrics import MESSAGES_OUT
from casebridge.gateway.problems import problem_responses
from casebridge.routing.delivery import OutboxItem

router = APIRouter(prefix="/v1/outbox", tags=["outbox"])

ItemId = Annotated[int, Path(ge=1, le=2**62, description="The outbox item id.")]

class OutboxEntry(BaseModel):
    """A message waiting for the agency (metadata only; fetch it for the content)."""

    item_id: int
    message_id: str
    sender: str
    message_type: str
    media_type: str
    created_at: datetime


class OutboxPage(BaseModel):
    """One page of pending messages, oldest first."""

    items: list[OutboxEntry]
    next_after: int | None = Field(description="Pass as ``after`` for the next page; null: end.")


class AckResult(BaseModel):
    """The acknowledgement of one item."""

    item_id: int
    acknowledged: bool = Field(description="False: it had been acknowledged before.")


def _entry(item: OutboxItem) -> OutboxEntry:
    return OutboxEntry(
        item_id=item.item_id, message_id=item.message_id, sender=item.sender,
        message_type=item.message_type, media_type=item.media_type, created_at=item.created_at,
    )


@router.get(
    "",
    response_model=OutboxPage,
    summary="List the caller's pending messages",
    responses=problem_responses(401, 403, 422, 503),
)
def pending(
    caller: CurrentAgency,
    routing: RoutingDep,
    after: int = Query(0, ge=0, le=2**62, description="Item id to continue after."),
    limit: int = Query(100, ge=1, le=1000, description="Page size."),
) -> OutboxPage:
    """Pending (unacknowledged) messages of the caller's agency."""
    assert caller.agency is not None
    items = routing.outbox().pending(caller.agency, limit=limit, after=after)
    next_after = items[-1].item_id if len(items) == limit else None
    return OutboxPage(items=[_entry(i) for i in items], next_after=next_after)


@router.get(
    "/{item_id}",
    summary="Fetch one pending message in the agency's native format",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {"schema": {"type": "string"}},
                          "application/json": {"schema": {}},
                          "application/fhir+json": {"schema": {}},
                          "application/fhir+xml": {"schema": {"type": "string"}}},
              "description": "The native message, with its own media type."},
        **problem_responses(401, 403, 404, 422, 503),
    },
)
def fetch(item_id: ItemId, caller: CurrentAgency, routing: RoutingDep) -> Response:
    """The native bytes of a pending message (``X-Casebridge-Message-Id`` names it)."""
    assert caller.agency is not None
    item, body = routing.outbox().fetch(caller.agency, item_id)
    return Response(body, media_type=item.media_type, headers={
        "X-Casebridge-Message-Id": item.message_id,
        "X-Casebridge-Sender": item.sender,
    })


@router.post(
    "/{item_id}/ack",
    response_model=AckResult,
    summary="Acknowledge a fetched message",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def acknowledge(item_id: ItemId, caller: CurrentAgency, routing: RoutingDep) -> AckResult:
    """Mark the message received; its body is dropped from casebridge."""
    assert caller.agency is not None
    first = routing.outbox().ack(caller.agency, item_id)
    if first:
        MESSAGES_OUT.labels(caller.agency).inc()
    return AckResult(item_id=item_id, acknowledged=first)
