"""The audit trail for the data-protection officer (role ``dpo`` only; nobody else reads it).

- ``GET /v1/audit/entries``: decisions and events filtered by client, agency (as sender or
  recipient), purpose, outcome, kind and period; keyset pagination by ``seq``.
- ``GET /v1/audit/verify``: every hash chain and checkpoint checked.
- ``GET /v1/audit/clients/{client_id}/report`` (JSON) and ``…/report.html`` (printable): what
  went where about one person (Art. 15 GDPR), from the audit trail
  (:func:`casebridge.consent.access.access_report`); DPO and consent desk.
- ``GET /v1/audit/processing-records``: the records of processing per route (Art. 30 GDPR) from
  the route table: purposes, categories, recipients, legal bases.

Entries hold metadata only (ids, agencies, categories, reasons) — never payload or names.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from casebridge.canonical_model import SPECIAL_CATEGORIES, Category, Outcome, Purpose
from casebridge.consent.access import AccessReport
from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import AuditEntryRow
from casebridge.db import Database, utc_text
from casebridge.gateway.access_report import ProducedReport, produce_report, render_page
from casebridge.gateway.deps import DatabaseDep, Dpo, PersonDesk, RoutingDep, SessionDep
from casebridge.gateway.principals import Principal
from casebridge.gateway.problems import problem_responses
from casebridge.routing.routes import RouteTable

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_only(value: object) -> object:
    # pydantic would read "0.5" as seconds since 1970; a time here is written as ISO 8601.
    if isinstance(value, str) and not ISO_TIME.match(value):
        raise ValueError("an ISO 8601 date and time with UTC offset, e.g. 2026-12-01T08:00:00Z")
    return value


#: A point in time as the API accepts it: ISO 8601 with an offset, never a bare number.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


router = APIRouter(prefix="/v1/audit", tags=["audit"])

ClientIdPath = Annotated[str, Path(min_length=1, max_length=64)]


class WithheldItem(BaseModel):
    """A withheld category and its reason."""

    category: str
    reason: str


class AuditEntryView(BaseModel):
    """One entry of the hash chain."""

    seq: int
    at: str = Field(description="When the decision or event took effect (UTC).")
    recorded_at: str
    kind: str = Field(description="decision, forged_sender, consent_withdrawn, dead_letter, …")
    stage: str | None
    sender: str | None
    recipient: str | None
    purpose: str | None
    client_id: str | None
    message_id: str | None
    outcome: str | None
    released: list[str]
    withheld: list[WithheldItem]
    consents: list[str]
    legal_basis: str | None
    review_required: bool
    details: dict[str, Any] = Field(
        description="Metadata of the entry; decisions carry ``subjects``: the reference, roles "
                    "and categories of every person whose data the transfer carried.")
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """One page of entries in chain order."""

    entries: list[AuditEntryView]
    next_after: int | None = Field(description="Pass as ``after`` for the next page; null: end.")


class VerifyView(BaseModel):
    """The result of verifying the chain (a broken chain is a result, not an error)."""

    ok: bool
    checked: int
    first_broken_seq: int | None
    problem: str | None
    last_seq: int
    last_hash: str
    chain: int | None = Field(default=None, description="The chain the first break is in.")
    chains: int = Field(default=0, description="Hash chains verified (checkpoints' included).")
    checkpoints: int = Field(default=0, description="Checkpoint entries whose bindings held.")


class AgencyRef(BaseModel):
    """An agency of the route table."""

    id: str
    kind: str
    name: str | None = Field(default=None, description="The agency's name in the route table.")


class CategoryRecord(BaseModel):
    """A data category that may be transferred on a route."""

    category: str
    special: bool = Field(description="Art. 9/10 GDPR: only under a consent naming it.")
    required: bool = Field(description="Without it the transfer is blocked (minimisation).")


class LegalBasis(BaseModel):
    """A legal basis of transfers on a route."""

    code: str
    description: str


class ProcessingRecord(BaseModel):
    """Art. 30 GDPR record of one route."""

    route: int = Field(description="Position of the route in the route table (0-based).")
    senders: list[AgencyRef]
    recipients: list[AgencyRef]
    purposes: list[str]
    message_types: list[str] | None = Field(description="null: every message type.")
    categories: list[CategoryRecord]
    legal_bases: list[LegalBasis]
    response_days: int


class ProcessingRecords(BaseModel):
    """The records of processing of the configured route table."""

    source: str
    generated_at: datetime
    records: list[ProcessingRecord]


# --- data access ------------------------------------------------------------------------------


def query_entries(
    session: Session,
    *,
    client_id: str | None = None,
    agency: str | None = None,
    purpose: str | None = None,
    outcome: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntryRow]:
    """Entries matching every given filter, in ``seq`` order after ``after`` (keyset paging)."""
    stmt = select(AuditEntryRow).where(AuditEntryRow.seq > after)
    if client_id is not None:
        stmt = stmt.where(AuditEntryRow.client_id == client_id)
    if agency is not None:
        stmt = stmt.where(or_(AuditEntryRow.sender == agency, AuditEntryRow.recipient == agency))
    if purpose is not None:
        stmt = stmt.where(AuditEntryRow.purpose == purpose)
    if outcome is not None:
        stmt = stmt.where(AuditEntryRow.outcome == outcome)
    if kind is not None:
        stmt = stmt.where(AuditEntryRow.kind == kind)
    if since is not None:
        stmt = stmt.where(AuditEntryRow.at >= utc_text(since))
    if until is not None:
        stmt = stmt.where(AuditEntryRow.at < utc_text(until))
    return list(session.scalars(stmt.order_by(AuditEntryRow.seq).limit(limit)))


def _view(row: AuditEntryRow) -> AuditEntryView:
    return AuditEntryView(
        seq=row.seq, at=row.at, recorded_at=row.recorded_at, kind=row.kind, stage=row.stage,
        sender=row.sender, recipient=row.recipient, purpose=row.purpose,
        client_id=row.client_id, message_id=row.message_id, outcome=row.outcome,
        released=json.loads(row.released),
        withheld=[WithheldItem(category=c, reason=r) for c, r in json.loads(row.withheld)],
        consents=json.loads(row.consents), legal_basis=row.legal_basis,
        review_required=bool(row.review_required), details=json.loads(row.details),
        prev_hash=row.prev_hash, hash=row.hash,
    )


# --- routes -----------------------------------------------------------------------------------


@router.get(
    "/entries",
    response_model=AuditPage,
    summary="Query decisions and events",
    responses=problem_responses(401, 403, 422),
)
def entries(
    _dpo: Dpo,
    session: SessionDep,
    client_id: str | None = Query(None, max_length=64, description="Canonical client id."),
    agency: str | None = Query(None, max_length=64, description="As sender or recipient."),
    purpose: Purpose | None = Query(None),
    outcome: Outcome | None = Query(None),
    kind: str | None = Query(None, max_length=32, description="decision, forged_sender, …"),
    since: IsoTime | None = Query(None, description="From this time (inclusive)."),
    until: IsoTime | None = Query(None, description="Before this time."),
    after: int = Query(0, ge=0, le=2**62, description="seq to continue after."),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    """Entries in chain order, filtered; every filter narrows."""
    rows = query_entries(
        session, client_id=client_id, agency=agency,
        purpose=str(purpose) if purpose else None, outcome=str(outcome) if outcome else None,
        kind=kind, since=since, until=until, after=after, limit=limit,
    )
    return AuditPage(
        entries=[_view(r) for r in rows],
        next_after=rows[-1].seq if len(rows) == limit else None,
    )


@router.get(
    "/verify",
    response_model=VerifyView,
    summary="Verify the hash chain",
    responses=problem_responses(401, 403),
)
def verify(_dpo: Dpo, db: DatabaseDep) -> VerifyView:
    """Check every chain (each entry's hash and link, the recorded heads) and every
    checkpoint's binding of the chain heads."""
    result = AuditTrail(db).verify()
    return VerifyView(
        ok=result.ok, checked=result.checked, first_broken_seq=result.first_broken_seq,
        problem=result.problem, last_seq=result.last_seq, last_hash=result.last_hash,
        chain=result.chain, chains=result.chains, checkpoints=result.checkpoints,
    )


def _produce(
    db: Database, client_id: str, reader: Principal, request: Request, fmt: str, lang: str
) -> ProducedReport:
    routing = getattr(request.app.state, "routing", None)
    return produce_report(db, client_id, by=reader.name, via="api", fmt=fmt, lang=lang,
                          routes=routing.routes if routing is not None else None)


@router.get(
    "/clients/{client_id}/report",
    response_model=AccessReport,
    summary="Access report for a person (Art. 15 GDPR)",
    responses=problem_responses(401, 403, 404),
)
def access_report(
    client_id: ClientIdPath, reader: PersonDesk, db: DatabaseDep, request: Request,
) -> AccessReport:
    """Every transfer of the person's data — as the client and as a household member,
    guardian, child or entruster in other files — with what finally reached the recipient.
    For the DPO and the consent desk; producing it is recorded in the audit trail."""
    return _produce(db, client_id, reader, request, "json", "de").report


@router.get(
    "/clients/{client_id}/report.html",
    response_class=HTMLResponse,
    summary="Printable access report for a person (Art. 15 GDPR)",
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}},
              "description": "A self-contained HTML document for printing."},
        **problem_responses(401, 403, 404),
    },
)
def access_report_html(
    client_id: ClientIdPath, reader: PersonDesk, db: DatabaseDep, request: Request,
    lang: Literal["de", "en"] = Query("de", description="Language of the wording."),
) -> HTMLResponse:
    """The same report worded for the person, as a printable page."""
    return HTMLResponse(render_page(_produce(db, client_id, reader, request, "html", lang).text))


_CONSENT_BASES = (
    LegalBasis(code="gdpr-6-1-a", description="Art. 6(1)(a) GDPR: consent of the data subject"),
    LegalBasis(code="gdpr-9-2-a",
               description="Art. 9(2)(a) GDPR: explicit consent naming special categories"),
    LegalBasis(code="sgb-x-67b", description="§67b SGB X: consent to transfer social data"),
)


def processing_records(routes: RouteTable) -> list[ProcessingRecord]:
    """Art. 30 records, one per route of ``routes``."""
    agencies = routes.config.agencies

    def expand(selectors: list[str]) -> list[AgencyRef]:
        return [AgencyRef(id=a.id, kind=str(a.kind), name=a.name) for a in agencies
                if a.id in selectors or str(a.kind) in selectors]

    records = []
    for n, route in enumerate(routes.config.routes):
        required = {str(c) for c in route.required_categories}
        bases = list(_CONSENT_BASES)
        bases += [LegalBasis(code=code, description="statutory transfer without consent "
                             "(rule 8: written justification, flagged for DPO review)")
                  for code in route.statutory_bases]
        records.append(ProcessingRecord(
            route=n, senders=expand(route.senders), recipients=expand(route.recipients),
            purposes=[str(p) for p in route.purposes],
            message_types=None if route.message_types is None
            else [str(t) for t in route.message_types],
            categories=[CategoryRecord(category=str(c), special=c in SPECIAL_CATEGORIES,
                                       required=str(c) in required) for c in Category],
            legal_bases=bases, response_days=route.response_days,
        ))
    return records


@router.get(
    "/processing-records",
    response_model=ProcessingRecords,
    summary="Records of processing per route (Art. 30 GDPR)",
    responses=problem_responses(401, 403, 503),
)
def processing_records_export(_dpo: Dpo, routing: RoutingDep) -> ProcessingRecords:
    """Purposes, categories, senders, recipients and legal bases of every configured route."""
    return ProcessingRecords(
        source=routing.routes.source, generated_at=datetime.now(UTC),
        records=processing_records(routing.routes),
    )
