"""Inbound: an agency system posts a native message; 202 once the broker confirmed it.

The answer lists, per message and recipient, the consent outcome and which categories were
released or withheld and why — never data. Posting the same message id again returns the first
answer (200, ``replayed: true``) without routing it a second time.
"""

from __future__ import annotations

from typing import Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from casebridge.adapters import get_adapter
from casebridge.errors import CasebridgeError
from casebridge.gateway.api.media import require_media_type
from casebridge.gateway.deps import AgencyCheck, SettingsDep, intake_of
from casebridge.gateway.intake import MessageOutcome
from casebridge.gateway.metrics import REJECTED
from casebridge.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])

SYSTEM_PATH = Path(
    pattern=r"^[a-z][a-z0-9-]{1,31}$",
    description="The sending system's adapter: jobcenter, sozialamt, jugendamt, provider-fhir.",
)
NATIVE_TYPES = ("application/xml", "text/xml", "application/json", "application/fhir+json",
                "application/fhir+xml")


class Withheld(BaseModel):
    """A category not released, and the one reason nearest to the data."""

    category: str
    reason: str


class RecipientDecision(BaseModel):
    """What one recipient will receive of the message."""

    recipient: str
    outcome: Literal["permit", "partial", "block", "override"]
    queued: bool = Field(description="Whether a message for this recipient was queued.")
    released: list[str]
    withheld: list[Withheld]


class MessageResult(BaseModel):
    """The outcome of one message of the posted file."""

    message_id: str
    message_type: str
    correlation_id: str | None
    status_effect: str | None = Field(
        description="For a status update: applied, ignored, uncorrelated, not_a_recipient, "
        "withheld."
    )
    replayed: bool = Field(description="True: this message id was posted before; first answer.")
    recipients: list[RecipientDecision]


class InboundResponse(BaseModel):
    """Every message of the posted file and its per-recipient decisions."""

    message_ids: list[str]
    messages: list[MessageResult]


@router.post(
    "/{system}",
    status_code=202,
    response_model=InboundResponse,
    summary="Post a native message of an agency system",
    openapi_extra={"requestBody": {"required": True, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in NATIVE_TYPES
    }}},
    responses={
        200: {"model": InboundResponse, "description": "Every message was posted before."},
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
    },
)
async def post_message(
    request: Request,
    response: Response,
    authenticate: AgencyCheck,
    settings: SettingsDep,
    system: str = SYSTEM_PATH,
) -> InboundResponse:
    """Parse, check the sender is the caller, decide consent per recipient, and queue."""
    raw = await request.body()  # already read and size-checked by the BodySizeLimit middleware

    def checked_submit() -> list[MessageOutcome]:
        # authentication first, as on every route, then what the request itself names
        caller = authenticate()
        intake = intake_of(request)
        adapter = get_adapter(system, max_bytes=settings.max_message_bytes)
        require_media_type(request, adapter.media_types)
        return intake.submit(raw, system=system, caller=caller)

    try:
        outcomes = await to_thread.run_sync(
            checked_submit, limiter=request.app.state.inbound_limiter
        )
    except CasebridgeError as exc:
        REJECTED.labels(exc.code).inc()
        raise
    messages = [
        MessageResult.model_validate({**o.report, "replayed": o.replayed}) for o in outcomes
    ]
    if all(o.replayed for o in outcomes):
        response.status_code = 200
    return InboundResponse(message_ids=[m.message_id for m in messages], messages=messages)
