"""The data-protection officer's pages (role ``dpo`` only; everybody else gets a 403 page)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from casebridge.consent.registry import ClientRegistry
from casebridge.consent.store import ConsentStore
from casebridge.db import Database
from casebridge.errors import ConflictError, NotFound
from casebridge.gateway.console import data
from casebridge.gateway.console.diagram import NODE_H, NODE_W, layout
from casebridge.gateway.console.i18n import WordedInputError, term
from casebridge.gateway.console.sessions import PREFIX, ConsoleUser, check_csrf, require
from casebridge.gateway.console.verify import Verifications, started_recently
from casebridge.gateway.console.web import redirect, render, url
from casebridge.gateway.principals import Role

router = APIRouter(prefix=PREFIX, include_in_schema=False)

_MAX_ID = 64


def _dpo(request: Request) -> ConsoleUser:
    return require(request, Role.DPO)


def _db(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def agencies(request: Request, lang: str) -> dict[str, tuple[str, str]]:
    """Agency id → (name, kind in words) from the route table, where one is configured."""
    routing = request.app.state.routing
    if routing is None:
        return {}
    return {a.id: (a.name or a.id, term(lang, "agency_kind", str(a.kind)))
            for a in routing.routes.config.agencies}


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 18:
        raise WordedInputError("error.number", name=name)
    return int(value)


def _text(request: Request, name: str, limit: int = _MAX_ID) -> str | None:
    value = request.query_params.get(name, "").strip()
    if len(value) > limit:
        raise WordedInputError("error.too_long", name=name, limit=limit)
    return value or None


def _period(request: Request) -> data.Period:
    return data.parse_period(request.query_params.get("from"), request.query_params.get("to"))


@router.get("/flows")
def flows(request: Request) -> Response:
    """Agencies as nodes, transfers as edges, counts by outcome; the same as a table."""
    user = _dpo(request)
    period = _period(request)
    with _db(request).session() as session:
        edges = data.flows(session, period)
    diagram = layout(edges, agencies(request, user.lang))
    totals = {o: sum(e.counts[o] for e in edges) for o in data.OUTCOMES}
    return render(
        request, "flows.html", period=period, edges=edges, diagram=diagram,
        totals=totals, outcomes=data.OUTCOMES, node_w=NODE_W, node_h=NODE_H,
    )


@router.get("/flows/edge")
def edge(request: Request) -> Response:
    """Every decision on one edge in the period."""
    _dpo(request)
    period = _period(request)
    sender, recipient = _text(request, "sender"), _text(request, "recipient")
    if sender is None or recipient is None:
        raise WordedInputError("error.edge_needs_both")
    before = _int(request.query_params.get("before"), "field.before")
    with _db(request).session() as session:
        page = data.edge_decisions(session, sender, recipient, period, before)
    more = url("/flows/edge", sender=sender, recipient=recipient, before=page.before,
               **period.query()) if page.before else None
    return render(request, "edge.html", period=period, sender=sender, recipient=recipient,
                  page=page, more=more)


def _known_agencies(request: Request, user: ConsoleUser) -> list[tuple[str, str]]:
    """(id, name) of every agency in the route table, by name: the agency filter's choices."""
    return sorted(((i, name) for i, (name, _kind) in agencies(request, user.lang).items()),
                  key=lambda pair: pair[1].casefold())


@router.get("/withheld")
def withheld(request: Request) -> Response:
    """Blocked, partial and statutory transfers: what, from whom to whom, why; filtered."""
    user = _dpo(request)
    period = _period(request)
    filters = data.check_filter(_text(request, "agency"), _text(request, "purpose"),
                                _text(request, "reason"), _text(request, "outcome"))
    before = _int(request.query_params.get("before"), "field.before")
    with _db(request).session() as session:
        page = data.withheld(session, period, filters, before)
    query = {"agency": filters.agency, "purpose": filters.purpose, "reason": filters.reason,
             "outcome": filters.outcome}
    more = url("/withheld", before=page.before, **query, **period.query()) if page.before else None
    return render(request, "withheld.html", period=period, filters=filters, page=page,
                  more=more, purposes=data.PURPOSES, reasons=data.REASONS,
                  outcomes=data.WITHHELD_OUTCOMES, known_agencies=_known_agencies(request, user),
                  query=query)


@router.get("/incidents")
def incidents(request: Request) -> Response:
    """Forged-sender attempts, messages refused at the door and dead letters; filtered."""
    user = _dpo(request)
    period = _period(request)
    filters = data.check_incident_filter(_text(request, "kind"), _text(request, "agency"))
    before = _int(request.query_params.get("before"), "field.before")
    with _db(request).session() as session:
        page = data.incidents(session, period, filters, before)
    query = {"kind": filters.kind, "agency": filters.agency}
    more = url("/incidents", before=page.before, **query, **period.query()) if page.before else None
    return render(request, "incidents.html", period=period, filters=filters, page=page,
                  more=more, kinds=data.INCIDENT_KINDS,
                  known_agencies=_known_agencies(request, user), query=query)


@router.get("/audit/{seq}")
def audit_entry(request: Request, seq: str) -> Response:
    """One audit entry with its place in the chain (seq, hash, previous hash)."""
    _dpo(request)
    number = _int(seq, "entry")
    assert number is not None
    with _db(request).session() as session:
        found = data.entry(session, number)
    return render(request, "entry.html", e=found)


@router.get("/overrides")
def overrides(request: Request) -> Response:
    """Statutory overrides with legal basis and justification; pending ones first."""
    _dpo(request)
    items = data.overrides(_db(request))
    pending = [o for o in items if o.review is None]
    reviewed = [o for o in items if o.review is not None]
    notice = request.query_params.get("notice")
    return render(request, "overrides.html", pending=pending, reviewed=reviewed,
                  notice=notice if notice in ("done", "already") else None, error=None,
                  error_key=None, found=[], comment="")


@router.post("/overrides/{seq}/review")
async def review(request: Request, seq: str) -> Response:
    """Record the DPO's review as an audit event; a second review is refused."""
    user = _dpo(request)
    form = await request.form()
    check_csrf(user.csrf_token, form.get("csrf_token"))
    number = _int(seq, "entry")
    assert number is not None
    comment = str(form.get("comment") or "")
    try:
        data.review_override(_db(request), number, reviewer=user.principal.name, comment=comment)
    except ConflictError:
        return redirect(url("/overrides", notice="already") + f"#o{number}")
    except WordedInputError as exc:
        found = exc.found if isinstance(exc, data.PersonalDataInComment) else []
        items = data.overrides(_db(request))
        # the comment is given back for rewording (it was not stored anywhere)
        return render(request, "overrides.html", status_code=422,
                      pending=[o for o in items if o.review is None],
                      reviewed=[o for o in items if o.review is not None], notice=None,
                      error=number, error_key=exc.key, found=found,
                      comment=comment[:data.MAX_COMMENT])
    return redirect(url("/overrides", notice="done") + f"#o{number}")


@router.get("/consents")
def consents(request: Request) -> Response:
    """A client's consents with their history and withdrawals, and the client's identifiers."""
    _dpo(request)
    client_id = _text(request, "client_id")
    if client_id is None:
        return render(request, "consents.html", client_id=None, client=None, records=[])
    db = _db(request)
    try:
        client = ClientRegistry(db).show(client_id)
    except NotFound:
        return render(request, "consents.html", status_code=404, client_id=client_id,
                      client=None, records=[])
    records = ConsentStore(db).list_for_client(client_id)
    return render(request, "consents.html", client_id=client_id, client=client,
                  records=records, now=datetime.now(UTC))


def _verifications(request: Request) -> Verifications:
    jobs: Verifications | None = getattr(request.app.state, "console_verifications", None)
    if jobs is None:
        jobs = request.app.state.console_verifications = Verifications(_db(request))
    return jobs


@router.get("/integrity")
def integrity(request: Request) -> Response:
    """The last verification result, a button to verify again, and a running job's progress."""
    _dpo(request)
    job_id = _text(request, "job", 40)
    job = _verifications(request).get(job_id) if job_id else None
    # read once: a page showing the result must not also ask to be refreshed
    done = job is not None and job.done.is_set()
    with _db(request).session() as session:
        last = data.last_verification(session)
    # a job started by another gateway process: wait for its result event
    elsewhere = (job is None and job_id is not None and started_recently(job_id)
                 and (last is None or last.details.get("job") != job_id))
    return render(request, "integrity.html", job=job, last=last, elsewhere=elsewhere,
                  job_done=done, refresh=elsewhere or (job is not None and not done))


@router.get("/locks")
def locks(request: Request) -> Response:
    """Accounts and addresses locked after failed sign-ins, while the lock lasts."""
    _dpo(request)
    with _db(request).session() as session:
        active = data.active_locks(session, datetime.now(UTC))
    return render(request, "locks.html", locks=active)


@router.post("/integrity/verify")
async def verify(request: Request) -> Response:
    """Start a verification in the background and show its progress."""
    user = _dpo(request)
    form = await request.form()
    check_csrf(user.csrf_token, form.get("csrf_token"))
    job = _verifications(request).start(user.principal.name)
    return redirect(url("/integrity", job=job.id))
