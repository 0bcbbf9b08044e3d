"""Inbound: an agency system posts a native message; 202 once the broker confirmed it.

The answer lists, per message and recipient, the consent outcome and which categories were
released or withheld and why — never data. Posting the same message id again returns the first
answer (200, ``replayed: true``) without routing it a second time. A file of which nothing was
queued for anyone is answered ``422 nothing_sent``, its problem document listing per message,
recipient and category the reason (the decisions are audited; posting it again after the
consent was recorded decides it again).

``POST /v1/inbound/{system}/preview`` takes the same file and authentication and answers, per
message and recipient, the decision and the native document that recipient would receive,
masked (see :mod:`casebridge.routing.preview`); nothing is claimed, decided for real or queued,
and one ``preview`` event per message is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from casebridge.adapters import get_adapter
from casebridge.errors import CasebridgeError, NothingSent, Problem
from casebridge.gateway.api.media import require_media_type
from casebridge.gateway.deps import AgencyCheck, SettingsDep, intake_of
from casebridge.gateway.intake import Intake, MessageOutcome
from casebridge.gateway.metrics import REJECTED
from casebridge.gateway.principals import Principal
from casebridge.gateway.problems import problem_responses
from casebridge.routing.preview import PreviewMessage
from casebridge.settings import Settings

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


class PreviewRecipient(BaseModel):
    """What one recipient would receive of the message, and the document, masked."""

    recipient: str
    outcome: Literal["permit", "partial", "block", "override"]
    released: list[str]
    withheld: list[Withheld]
    legal_basis: str | None = Field(description="The statutory basis of an override.")
    media_type: str | None = Field(description="The media type of the document, if any.")
    document: str | None = Field(
        description="The native document this recipient would receive, every personal value "
        "masked (letters X/x, digits 9; structure, codes, ids and category headings kept); "
        "null if nothing is released or it cannot be rendered."
    )
    problems: list[str] = Field(
        description="Why a released copy cannot be rendered in the recipient's format."
    )


class PreviewResult(BaseModel):
    """One message of the previewed file."""

    message_id: str
    message_type: str
    purpose: str
    recipients: list[PreviewRecipient]


class PreviewResponse(BaseModel):
    """Every message of the file as each recipient would receive it (nothing was sent)."""

    messages: list[PreviewResult]


class InboundResponse(BaseModel):
    """Every message of the posted file and its per-recipient decisions."""

    message_ids: list[str]
    messages: list[MessageResult]


def _checked(
    request: Request, authenticate: Callable[[], Principal], settings: Settings, system: str
) -> tuple[Intake, Principal]:
    """Authentication first, as on every route, then what the request itself names (run in the
    worker thread)."""
    caller = authenticate()
    intake = intake_of(request)
    adapter = get_adapter(system, max_bytes=settings.max_message_bytes)
    require_media_type(request, adapter.media_types)
    return intake, caller


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
        422: {**problem_responses(422)[422], "description": (
            "A problem document: the message is not acceptable (schema, mapping, no route), "
            "or code `nothing_sent`: the consent gate released nothing of it to any recipient "
            "and nothing was queued; `errors` lists per `{message_id}/{recipient}[/{category}]` "
            "the outcome or the reason code (never data).")},
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
        intake, caller = _checked(request, authenticate, settings, system)
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
    if not any(r.queued for m in messages for r in m.recipients):
        REJECTED.labels(NothingSent.code).inc()
        raise _nothing_sent(messages)
    if all(o.replayed for o in outcomes):
        response.status_code = 200
    return InboundResponse(message_ids=[m.message_id for m in messages], messages=messages)


def _nothing_sent(messages: list[MessageResult]) -> NothingSent:
    problems = []
    for m in messages:
        for r in m.recipients:
            problems.append(Problem(f"{m.message_id}/{r.recipient}", r.outcome))
            problems += [Problem(f"{m.message_id}/{r.recipient}/{w.category}", w.reason)
                         for w in r.withheld]
    ids = ", ".join(m.message_id for m in messages)
    return NothingSent(
        f"nothing was sent: the consent gate released nothing of {ids} to any recipient "
        "(reasons per recipient and category in 'errors')",
        problems=problems,
    )


@router.post(
    "/{system}/preview",
    response_model=PreviewResponse,
    summary="What each recipient would receive of a native message (masked; nothing sent)",
    openapi_extra={"requestBody": {"required": True, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in NATIVE_TYPES
    }}},
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
async def preview_message(
    request: Request,
    authenticate: AgencyCheck,
    settings: SettingsDep,
    system: str = SYSTEM_PATH,
) -> PreviewResponse:
    """The gateway's route check and consent decision, and each recipient's native document,
    masked; audited as a preview. The caller may only preview its own messages."""
    raw = await request.body()

    def checked_preview() -> list[PreviewMessage]:
        intake, caller = _checked(request, authenticate, settings, system)
        return intake.preview(raw, system=system, caller=caller)

    previews = await to_thread.run_sync(
        checked_preview, limiter=request.app.state.inbound_limiter
    )
    return PreviewResponse(messages=[
        PreviewResult.model_validate(p.report(masked=True)) for p in previews
    ])
