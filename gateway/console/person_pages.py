"""Find a person, confirm who they are, produce their access report (DPO and consent desk).

The report page shows :func:`casebridge.gateway.access_report.render_article` — the very body the
API's printable page and ``casebridge audit report --format html`` print — so what the consent
desk hands the client is the same everywhere. Searches carry personal data and are POST forms
(CSRF-checked), so names and identifiers never appear in a URL. A confirmation of who a person
seen in a file is takes its own form with an explicit check box; it is recorded in the audit
trail, as is every report produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from casebridge.canonical_model import agency_identifier_system
from casebridge.consent.subjects import PersonMatch, SubjectIndex
from casebridge.db import Database
from casebridge.errors import ConflictError, InputError, NotFound
from casebridge.gateway.access_report import agency_names, produce_report, render_article
from casebridge.gateway.api.persons import confirm_link
from casebridge.gateway.console.sessions import PREFIX, ConsoleUser, check_csrf, require
from casebridge.gateway.console.web import redirect, render, url
from casebridge.gateway.principals import Role
from casebridge.routing.routes import RouteTable

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ROLES = (Role.DPO, Role.CONSENT_DESK)
_MAX = 255

#: Wording of these pages (kept beside them; the shared labels live in console.i18n).
WORDS: Mapping[str, Mapping[str, str]] = {
    "de": {
        "persons.title": "Person finden",
        "persons.intro": "Suchen Sie nach einer Kennung einer Stelle (z. B. der Kundennummer "
                         "beim Jobcenter) oder nach Name und Geburtsdatum. Die Treffer sind "
                         "Vorschläge – nichts wird automatisch zusammengeführt.",
        "persons.by_identifier": "Nach Kennung suchen",
        "persons.agency": "Stelle",
        "persons.kind": "Art der Kennung",
        "persons.value": "Kennung",
        "persons.by_name": "Nach Name und Geburtsdatum suchen",
        "persons.name": "Name (Nachname, Vorname)",
        "persons.birth_date": "Geburtsdatum",
        "persons.search": "Suchen",
        "persons.results": "Treffer",
        "persons.none": "Keine Person gefunden.",
        "persons.ref": "Kennung in casebridge",
        "persons.what": "Gefunden als",
        "persons.client": "Klient/in (registriert)",
        "persons.subject": "in der Akte einer anderen Person gesehen",
        "persons.seen": "Gesehen bei {agency}, in der Akte von {client}",
        "persons.linked_to": "bestätigt als {client}",
        "persons.identifiers": "Kennungen",
        "persons.report": "Auskunft erstellen",
        "persons.confirm": "Bestätigen, dass diese Person die Klientin / der Klient ist",
        "persons.confirm_client": "Klient/in",
        "persons.confirm_check": "Ich habe die Identität geprüft (z. B. Ausweis, Akte).",
        "persons.confirm_submit": "Verknüpfung bestätigen",
        "persons.confirmed": "Die Verknüpfung wurde bestätigt und im Prüfprotokoll vermerkt.",
        "persons.check_required": "Bitte bestätigen Sie, dass Sie die Identität geprüft haben.",
        "persons.roles.guardian": "sorgeberechtigte Person",
        "persons.roles.household_member": "Mitglied des Haushalts",
        "persons.roles.child": "Kind",
        "persons.roles.entruster": "Person, die etwas anvertraut hat",
        "persons.roles.client": "Klient/in",
        "report.print_hint": "Zum Drucken oder Speichern als PDF: Strg+P.",
        "report.lang": "Sprache der Auskunft",
    },
    "en": {
        "persons.title": "Find a person",
        "persons.intro": "Search by an agency's identifier (e.g. the job centre's Kundennummer) "
                         "or by name and birth date. Results are candidates – nothing is merged "
                         "automatically.",
        "persons.by_identifier": "Search by identifier",
        "persons.agency": "Agency",
        "persons.kind": "Kind of identifier",
        "persons.value": "Identifier",
        "persons.by_name": "Search by name and birth date",
        "persons.name": "Name (family, given)",
        "persons.birth_date": "Birth date",
        "persons.search": "Search",
        "persons.results": "Results",
        "persons.none": "No person found.",
        "persons.ref": "casebridge id",
        "persons.what": "Found as",
        "persons.client": "client (registered)",
        "persons.subject": "seen in another person's file",
        "persons.seen": "Seen at {agency}, in the file of {client}",
        "persons.linked_to": "confirmed as {client}",
        "persons.identifiers": "Identifiers",
        "persons.report": "Produce the report",
        "persons.confirm": "Confirm that this person is the client",
        "persons.confirm_client": "Client",
        "persons.confirm_check": "I have checked the identity (e.g. ID card, file).",
        "persons.confirm_submit": "Confirm the link",
        "persons.confirmed": "The link was confirmed and recorded in the audit trail.",
        "persons.check_required": "Please confirm that you have checked the identity.",
        "persons.roles.guardian": "person with custody",
        "persons.roles.household_member": "household member",
        "persons.roles.child": "child",
        "persons.roles.entruster": "person who entrusted something",
        "persons.roles.client": "client",
        "report.print_hint": "To print or save as PDF: Ctrl+P.",
        "report.lang": "Language of the report",
    },
}

#: Identifier kinds offered by the identifier search (urn:casebridge:id:{agency}:{kind}).
KINDS = ("kundennummer", "bg-nummer", "aktenzeichen", "fallnummer", "patient")


def _user(request: Request) -> ConsoleUser:
    return require(request, *ROLES)


def _db(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def _routes(request: Request) -> RouteTable | None:
    routing = getattr(request.app.state, "routing", None)
    return routing.routes if routing is not None else None


def _field(form: Mapping[str, object], name: str, limit: int = _MAX) -> str:
    value = str(form.get(name) or "").strip()
    if len(value) > limit:
        raise InputError(f"{name}: at most {limit} characters")
    return value


def _page(request: Request, user: ConsoleUser, *, status_code: int = 200,
          results: list[PersonMatch] | None = None, **context: object) -> Response:
    words = WORDS[user.lang]
    routes = _routes(request)
    names = agency_names(routes, user.lang)
    clients = [m.ref for m in results or [] if m.kind == "client"]
    return render(request, "persons.html", status_code=status_code, w=words, results=results,
                  names=names, kinds=KINDS, candidates=clients,
                  context=dict(context))


@router.get("/persons")
def persons(request: Request) -> Response:
    """The search forms (and the notice after a confirmation)."""
    user = _user(request)
    notice = request.query_params.get("notice")
    return _page(request, user, notice=notice == "linked")


@router.post("/persons")
async def search(request: Request) -> Response:
    """Candidates by identifier or by name and birth date; never a link."""
    user = _user(request)
    form = await request.form()
    check_csrf(user.csrf_token, form.get("csrf_token"))
    index = SubjectIndex(_db(request))
    if form.get("mode") == "identifier":
        agency, kind = _field(form, "agency", 64), _field(form, "kind", 64)
        value = _field(form, "value")
        if not (agency and kind and value):
            raise InputError("agency, kind and identifier: all three are needed")
        results = index.by_identifier(agency_identifier_system(agency, kind), value)
    else:
        name, born = _field(form, "name"), _field(form, "birth_date", 10)
        try:
            birth = date.fromisoformat(born) if born else None
        except ValueError:
            raise InputError("birth date: a date as YYYY-MM-DD") from None
        results = index.by_name(name, birth)
    return _page(request, user, results=results)


@router.post("/persons/link")
async def link(request: Request) -> Response:
    """Confirm deliberately that a person seen in a file is a client (audited)."""
    user = _user(request)
    form = await request.form()
    check_csrf(user.csrf_token, form.get("csrf_token"))
    ref, client_id = _field(form, "ref", 32), _field(form, "client_id", 64)
    if not ref or not client_id:
        raise InputError("ref and client: both are needed")
    if form.get("checked") != "yes":
        raise InputError(WORDS[user.lang]["persons.check_required"])
    try:
        confirm_link(_db(request), ref, client_id, by=user.principal.name, via="console")
    except ConflictError as exc:
        raise InputError(exc.message) from None
    return redirect(url("/report", client_id=client_id, notice="linked"))


@router.get("/report")
def report(request: Request) -> Response:
    """The access report of one person, as the client reads it; printable."""
    user = _user(request)
    client_id = _field(request.query_params, "client_id", 64)
    lang = request.query_params.get("report_lang") or user.lang
    if lang not in ("de", "en"):
        raise InputError("report_lang: de or en")
    if not client_id:
        return render(request, "report.html", client_id=None, article=None, w=WORDS[user.lang],
                      notice=False)
    try:
        produced = produce_report(_db(request), client_id, by=user.principal.name,
                                  via="console", fmt="html", lang=lang,
                                  routes=_routes(request))
    except NotFound:
        return render(request, "report.html", status_code=404, client_id=client_id,
                      article=None, w=WORDS[user.lang], notice=False)
    return render(request, "report.html", client_id=client_id,
                  article=Markup(render_article(produced.text)),  # noqa: S704 - escaped there
                  w=WORDS[user.lang], notice=request.query_params.get("notice") == "linked")
