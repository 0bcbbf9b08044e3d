"""Consents: record (FHIR R4 Consent or collection Bundle), withdraw, list by client, show.

For the consent desk (role ``consent_desk``) and administrators. Recording is all-or-nothing per
file; withdrawal is one call and covers nothing from that instant on — messages already queued
are re-checked at delivery. Both are also written to the audit trail as events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from casebridge.canonical_model import ConsentDirective
from casebridge.codes import AuditStage
from casebridge.consent.desk import import_consents, withdraw_consent
from casebridge.consent.fhir import render_consent
from casebridge.consent.store import ConsentRecord, ConsentStore
from casebridge.errors import NotFound
from casebridge.gateway.api.media import require_media_type
from casebridge.gateway.deps import ConsentDesk, DatabaseDep
from casebridge.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/consents", tags=["consents"])

FHIR_JSON = "application/fhir+json"
CONSENT_MEDIA_TYPES = (FHIR_JSON, "application/json")
ConsentState = Literal[
    "active", "withdrawn", "not_yet_valid", "expired", "draft", "proposed", "rejected",
    "inactive", "entered-in-error",
]


class RecordedConsent(BaseModel):
    """One consent of a recorded file."""

    consent_id: str
    client_id: str
    created: bool = Field(description="False: the identical consent was already on record.")


class RecordResponse(BaseModel):
    """What recording a file did."""

    recorded: list[RecordedConsent]


class HistoryEvent(BaseModel):
    """One step of a consent's history."""

    event: Literal["given", "recorded", "withdrawn"]
    at: datetime
    by: str | None = None


class ConsentSummary(BaseModel):
    """A consent without names or identifiers."""

    consent_id: str
    client_id: str
    state: str = Field(description="Its effect now: active, withdrawn, expired, not_yet_valid, …")
    status: str
    grantor: str
    valid_from: datetime
    valid_until: datetime | None
    disclosers: list[str]
    recipients: list[str]
    purposes: list[str]
    categories: list[str] | None = Field(description="None: every ordinary category.")
    withdrawn_at: datetime | None


class ConsentDetail(ConsentSummary):
    """A consent as recorded, with its history."""

    source: str | None
    history: list[HistoryEvent]
    directive: ConsentDirective


class WithdrawResponse(BaseModel):
    """A withdrawal, effective at once."""

    consent_id: str
    withdrawn_at: datetime
    by: str


def _summary(record: ConsentRecord, now: datetime) -> ConsentSummary:
    d = record.directive
    return ConsentSummary(
        consent_id=d.consent_id, client_id=record.client_id, state=record.state_at(now),
        status=str(d.status), grantor=str(d.grantor.relation), valid_from=d.effective_from,
        valid_until=d.valid_until, disclosers=list(d.disclosers), recipients=list(d.recipients),
        purposes=[str(p) for p in d.purposes],
        categories=None if d.categories is None else [str(c) for c in d.categories],
        withdrawn_at=record.withdrawal.at if record.withdrawal else None,
    )


@router.post(
    "",
    status_code=201,
    response_model=RecordResponse,
    summary="Record consents (FHIR R4 Consent or collection Bundle)",
    openapi_extra={"requestBody": {"required": True, "content": {
        t: {"schema": {"type": "object"}} for t in CONSENT_MEDIA_TYPES
    }}},
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
)
async def record(request: Request, desk: ConsentDesk, db: DatabaseDep) -> RecordResponse:
    """Record every consent of the file, or none if any breaks the casebridge profile."""
    require_media_type(request, CONSENT_MEDIA_TYPES)
    raw = await request.body()
    results = await run_in_threadpool(
        import_consents, db, raw, source=f"gateway:{desk.name}", by=desk.name,
        stage=AuditStage.GATEWAY,
    )
    return RecordResponse(recorded=[
        RecordedConsent(consent_id=r.consent_id, client_id=r.client_id, created=r.created)
        for r in results
    ])


@router.post(
    "/{consent_id}/withdraw",
    response_model=WithdrawResponse,
    summary="Withdraw a consent, effective at once",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def withdraw(consent_id: str, desk: ConsentDesk, db: DatabaseDep) -> WithdrawResponse:
    """Withdraw the consent now; it covers nothing from this instant on (Art. 7(3) GDPR)."""
    withdrawal = withdraw_consent(db, consent_id, by=desk.name, stage=AuditStage.GATEWAY)
    return WithdrawResponse(consent_id=consent_id, withdrawn_at=withdrawal.at, by=withdrawal.by)


@router.get(
    "",
    response_model=list[ConsentSummary],
    summary="List a client's consents",
    responses=problem_responses(401, 403, 422),
)
def list_for_client(client_id: str, _desk: ConsentDesk, db: DatabaseDep) -> list[ConsentSummary]:
    """Every consent of the client (withdrawn and expired ones included), oldest first."""
    now = datetime.now(UTC)
    return [_summary(r, now) for r in ConsentStore(db).list_for_client(client_id)]


@router.get(
    "/{consent_id}",
    response_model=ConsentDetail,
    summary="Show a consent with its history",
    responses=problem_responses(401, 403, 404),
)
def show(consent_id: str, _desk: ConsentDesk, db: DatabaseDep) -> ConsentDetail:
    """The consent as recorded (canonical form), its current state and its history."""
    record = ConsentStore(db).get(consent_id)
    if record is None:
        raise NotFound(f"consent '{consent_id}' is not on record")
    summary = _summary(record, datetime.now(UTC))
    return ConsentDetail(
        **summary.model_dump(), source=record.source,
        history=[HistoryEvent.model_validate(h) for h in record.history()],
        directive=record.directive,
    )


@router.get(
    "/{consent_id}/fhir",
    summary="A consent as a FHIR R4 Consent resource",
    response_class=Response,
    responses={
        200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}},
              "description": "The Consent resource (withdrawn ones as inactive)."},
        **problem_responses(401, 403, 404),
    },
)
def show_fhir(consent_id: str, _desk: ConsentDesk, db: DatabaseDep) -> Response:
    """The consent rendered per the casebridge FHIR profile."""
    record = ConsentStore(db).get(consent_id)
    if record is None:
        raise NotFound(f"consent '{consent_id}' is not on record")
    withdrawn_at = record.withdrawal.at if record.withdrawal else None
    return Response(render_consent(record.directive, withdrawn_at=withdrawn_at),
                    media_type=FHIR_JSON)
