"""Records of processing activities (Art. 30 GDPR) in the console, and their export.

One record per route of the configured route table, made by the same function as the API's
``GET /v1/audit/processing-records`` (:func:`casebridge.gateway.api.audit.processing_records`),
so the page, the CSV and the JSON export cannot tell different stories. The CSV is worded in
the reader's language (agency names with their ids, purposes and legal bases in words) for a
spreadsheet; the JSON is the API's document, codes and all, for machines.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from casebridge.gateway.api.audit import (
    AgencyRef,
    ProcessingRecord,
    ProcessingRecords,
    processing_records,
)
from casebridge.gateway.console.i18n import WordedInputError, WordedNotFound, term, translate
from casebridge.gateway.console.sessions import PREFIX, require
from casebridge.gateway.console.web import render, secure
from casebridge.gateway.principals import Role
from casebridge.routing.runtime import Routing

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: a spreadsheet runs a cell starting with one of these as a formula (CSV injection)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _records(request: Request) -> ProcessingRecords:
    routing: Routing | None = request.app.state.routing
    if routing is None:
        raise WordedNotFound("error.no_routes")
    return ProcessingRecords(source=routing.routes.source, generated_at=datetime.now(UTC),
                             records=processing_records(routing.routes))


@router.get("/records")
def records(request: Request) -> Response:
    """The records of processing, one card per route."""
    require(request, Role.DPO)
    found = _records(request)
    return render(request, "records.html", records=found)


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


def records_csv(found: ProcessingRecords, lang: str) -> str:
    """The records as CSV (one line per route), worded for ``lang``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    heads = ["flows.route", "records.senders", "records.recipients", "records.purposes",
             "records.message_types", "records.categories", "records.special",
             "records.required", "records.legal_bases", "records.response_days"]
    writer.writerow([translate(lang, h) for h in heads])

    def agencies(refs: list[AgencyRef]) -> str:
        return "; ".join(f"{r.name or r.id} ({r.id})" for r in refs)

    def words(vocabulary: str, codes: list[str]) -> str:
        return "; ".join(term(lang, vocabulary, c) for c in codes)

    record: ProcessingRecord
    for record in found.records:
        writer.writerow([_cell(v) for v in (
            str(record.route + 1), agencies(record.senders), agencies(record.recipients),
            words("purpose", record.purposes),
            words("message_type", record.message_types) if record.message_types is not None
            else translate(lang, "records.all_types"),
            words("category", [c.category for c in record.categories]),
            words("category", [c.category for c in record.categories if c.special]),
            words("category", [c.category for c in record.categories if c.required]),
            words("legal_basis", [b.code for b in record.legal_bases]),
            translate(lang, "records.days", days=record.response_days),
        )])
    return out.getvalue()


@router.get("/records/export")
def export(request: Request) -> Response:
    """``?format=csv`` (worded, for a spreadsheet) or ``?format=json`` (the API's document)."""
    user = require(request, Role.DPO)
    fmt = request.query_params.get("format", "")
    if fmt not in ("csv", "json"):
        raise WordedInputError("error.export_format")
    found = _records(request)
    stamp = found.generated_at.strftime("%Y%m%d")
    if fmt == "json":
        body, media = found.model_dump_json(indent=2), "application/json"
    else:
        # a byte-order mark, so that spreadsheet programs read the umlauts as UTF-8
        body, media = "\ufeff" + records_csv(found, user.lang), "text/csv; charset=utf-8"
    response = Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="verarbeitungsverzeichnis-{stamp}.{fmt}"'})
    return secure(response)
