"""The access report worded for the person it is about, in German and English.

Every view of the report — ``casebridge audit report --format text|html``, the API's printable
page and the console — renders :func:`casebridge.consent.access.access_report`'s result through
:func:`report_text`, so the sentences are the same everywhere. The wording is plain: agencies by
the names the route table gives them, categories, purposes and reasons in words
(:mod:`casebridge.gateway.console.i18n`), legal bases explained, consents by the day they were
given — never an internal code. The JSON form (:meth:`AccessReport.as_json`) keeps the codes for
the data-protection officer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from html import escape

from casebridge.consent.access import (
    NOT_TRANSFERRED,
    PARTIAL,
    AccessReport,
    ReportTransfer,
    access_report,
    record_access,
)
from casebridge.consent.engine import LOCAL_ZONE
from casebridge.consent.store import ConsentStore
from casebridge.db import Database, parse_utc_text
from casebridge.gateway.console.i18n import LANGUAGES, term
from casebridge.routing.routes import RouteTable

#: Legal bases of statutory transfers, explained (rule 8); unknown ones get a neutral phrase.
LEGAL_BASES: Mapping[str, Mapping[str, str]] = {
    "de": {
        "kkg-4": "§ 4 KKG — Mitteilung an das Jugendamt zum Schutz eines Kindes",
        "sgb-viii-8a": "§ 8a SGB VIII — Schutzauftrag des Jugendamtes bei Gefährdung eines "
                       "Kindes",
        "sgb-x-69": "§ 69 SGB X — Übermittlung, die eine Behörde für ihre gesetzlichen Aufgaben "
                    "braucht",
    },
    "en": {
        "kkg-4": "§ 4 KKG — notification to the youth office to protect a child",
        "sgb-viii-8a": "§ 8a SGB VIII — the youth office's duty to protect a child at risk",
        "sgb-x-69": "§ 69 SGB X — a transfer an authority needs for its statutory tasks",
    },
}

_WORDS: Mapping[str, Mapping[str, str]] = {
    "de": {
        "title": "Auskunft nach Art. 15 DSGVO",
        "about": "Auskunft für die Person mit der casebridge-Kennung {client}.",
        "intro": "Diese Auskunft nennt jede Übermittlung von Daten über Sie zwischen den "
                 "beteiligten Stellen, die casebridge aufgezeichnet hat – auch Daten, die in der "
                 "Akte einer anderen Person über Sie standen.",
        "generated": "Erstellt am {at} aus dem Prüfprotokoll bis Eintrag {seq}.",
        "sent": "Übermittelte Daten über Sie",
        "not_sent": "Nicht übermittelt",
        "nothing_sent": "Keine Daten über Sie wurden an eine andere Stelle weitergegeben.",
        "nothing_refused": "Keine.",
        "sentence": "Am {date} hat {sender} folgende Daten über Sie an {recipient} übermittelt: "
                    "{categories}. Zweck: {purpose}.",
        "as_role": "Sie waren darin genannt als {roles} in der Akte einer anderen Person.",
        "basis_consent": "Grundlage: Einwilligung vom {dates}.",
        "basis_consent_unknown": "Grundlage: eine Einwilligung.",
        "basis_law": "Grundlage: {basis}, ohne Einwilligung.",
        "basis_law_unknown": "eine gesetzliche Vorschrift",
        "partial": "Nicht mit übermittelt: {withheld}.",
        "refused": "Am {date} sollten Daten über Sie von {sender} an {recipient} übermittelt "
                   "werden (Zweck: {purpose}): {status}.",
        "status.blocked_at": "nicht übermittelt (bei der Zustellung gesperrt: {reason})",
        "status.blocked": "nicht übermittelt, weil {reason}",
        "status.withheld": "Ihre Daten wurden nicht übermittelt, weil {reason}",
        "not_indexed": "Bei dieser Übermittlung, aufgezeichnet vor Einführung des "
                       "Personenverzeichnisses, ist nicht festgehalten, welche weiteren Personen "
                       "betroffen waren ({kinds}).",
        "and": " und ",
    },
    "en": {
        "title": "Access report (Art. 15 GDPR)",
        "about": "Report for the person with casebridge id {client}.",
        "intro": "This report lists every transfer of data about you between the agencies "
                 "involved that casebridge recorded – including data about you in another "
                 "person's file.",
        "generated": "Generated on {at} from the audit trail up to entry {seq}.",
        "sent": "Data about you that was passed on",
        "not_sent": "Not transferred",
        "nothing_sent": "No data about you was passed to any other agency.",
        "nothing_refused": "None.",
        "sentence": "On {date}, {sender} passed the following data about you to {recipient}: "
                    "{categories}. Purpose: {purpose}.",
        "as_role": "You were named in it as {roles} in another person's file.",
        "basis_consent": "Basis: consent given on {dates}.",
        "basis_consent_unknown": "Basis: a consent.",
        "basis_law": "Basis: {basis}, without consent.",
        "basis_law_unknown": "a statutory provision",
        "partial": "Not passed on with it: {withheld}.",
        "refused": "On {date}, data about you was to be passed from {sender} to {recipient} "
                   "(purpose: {purpose}): {status}.",
        "status.blocked_at": "not transferred (blocked at delivery: {reason})",
        "status.blocked": "not transferred, because {reason}",
        "status.withheld": "your data was not passed on, because {reason}",
        "not_indexed": "This transfer was recorded before casebridge kept its index of persons; "
                       "it does not say which other persons were concerned ({kinds}).",
        "and": " and ",
    },
}

_ROLES: Mapping[str, Mapping[str, str]] = {
    "de": {"guardian": "sorgeberechtigte Person", "household_member": "Mitglied des Haushalts",
           "child": "Kind, um dessen Schutz es ging",
           "entruster": "Person, die eine Information anvertraut hat (§ 65 SGB VIII)",
           "client": "die Person, um die es ging"},
    "en": {"guardian": "a person with parental custody", "household_member": "a household member",
           "child": "the child whose protection it was about",
           "entruster": "the person who entrusted information (§ 65 SGB VIII)",
           "client": "the person it was about"},
}


@dataclass(frozen=True, slots=True)
class ReportText:
    """The report's wording: headings, sentences and notes (the same for every view)."""

    lang: str
    title: str
    about: str
    intro: str
    generated: str
    sent_heading: str
    sent: list[str]
    nothing_sent: str
    not_sent_heading: str
    not_sent: list[str]
    nothing_refused: str


def agency_names(routes: RouteTable | None, lang: str = "de") -> dict[str, str]:
    """Agency id → name from a route table (its ``name``, else its kind in words and id)."""
    if routes is None:
        return {}
    return {a.id: a.name or f"{term(lang, 'agency_kind', str(a.kind))} ({a.id})"
            for a in routes.config.agencies}


def consent_dates(db: Database, report: AccessReport) -> dict[str, datetime]:
    """When each consent the report relies on was given (from the consent store)."""
    store = ConsentStore(db)
    dates: dict[str, datetime] = {}
    for consent_id in sorted({c for t in report.transfers for c in t.consents}):
        record = store.get(consent_id)
        if record is not None:
            dates[consent_id] = record.directive.given_at
    return dates


def _day(lang: str, moment: str | datetime) -> str:
    local = (parse_utc_text(moment) if isinstance(moment, str) else moment).astimezone(LOCAL_ZONE)
    return local.strftime("%d.%m.%Y") if lang == "de" else local.strftime("%-d %B %Y")


def _join(lang: str, items: Iterable[str]) -> str:
    words = list(dict.fromkeys(items))
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + _WORDS[lang]["and"] + words[-1]


def report_text(
    report: AccessReport, *, lang: str = "de", names: Mapping[str, str] | None = None,
    consents_given: Mapping[str, datetime] | None = None,
) -> ReportText:
    """The report in words for the person (``names``: agency id → name)."""
    if lang not in LANGUAGES:
        lang = "de"
    w = _WORDS[lang]
    names = names or {}
    given = consents_given or {}

    def agency(agency_id: str | None) -> str:
        return names.get(agency_id or "", agency_id or "–")

    def cats(codes: Iterable[str]) -> str:
        return _join(lang, (term(lang, "category", c) for c in codes))

    def roles_note(t: ReportTransfer) -> str:
        others = [r for r in t.roles if r != "client"]
        if not others or "client" in t.roles:
            return ""
        return " " + w["as_role"].format(roles=_join(lang, (_ROLES[lang][r] for r in others)))

    def basis(t: ReportTransfer) -> str:
        if t.legal_basis:
            words = LEGAL_BASES[lang].get(t.legal_basis, w["basis_law_unknown"])
            return w["basis_law"].format(basis=words)
        days = sorted({_day(lang, given[c]) for c in t.consents if c in given})
        if not days:
            return w["basis_consent_unknown"]
        return w["basis_consent"].format(dates=_join(lang, days))

    def unindexed(t: ReportTransfer) -> str:
        if t.indexed or not t.not_indexed:
            return ""
        return " " + w["not_indexed"].format(
            kinds=_join(lang, (_ROLES[lang][k] for k in t.not_indexed)))

    sent = []
    for t in report.sent:
        line = w["sentence"].format(date=_day(lang, t.at), sender=agency(t.sender),
                                    recipient=agency(t.recipient), categories=cats(t.released),
                                    purpose=term(lang, "purpose", t.purpose))
        line += roles_note(t) + " " + basis(t)
        if t.state == PARTIAL:
            line += " " + w["partial"].format(withheld=cats(x.category for x in t.withheld))
        sent.append(line + unindexed(t))
    refused = []
    for t in report.not_sent:
        assert t.state == NOT_TRANSFERRED
        reason_code = t.blocked_reason or (t.withheld[0].reason if t.withheld else None)
        reason = term(lang, "reason", reason_code)
        if t.blocked_at == "delivery":
            status = w["status.blocked_at"].format(reason=reason)
        elif t.blocked_at is not None:
            status = w["status.blocked"].format(reason=reason)
        else:
            status = w["status.withheld"].format(reason=reason)
        line = w["refused"].format(date=_day(lang, t.at), sender=agency(t.sender),
                                   recipient=agency(t.recipient),
                                   purpose=term(lang, "purpose", t.purpose), status=status)
        refused.append(line + roles_note(t) + unindexed(t))
    generated = datetime.fromisoformat(report.generated_at)
    when = generated.astimezone(LOCAL_ZONE).strftime(
        "%d.%m.%Y, %H:%M" if lang == "de" else "%-d %B %Y, %H:%M")
    return ReportText(
        lang=lang, title=w["title"], about=w["about"].format(client=report.client_id),
        intro=w["intro"], generated=w["generated"].format(at=when, seq=report.chain_head_seq),
        sent_heading=w["sent"], sent=sent, nothing_sent=w["nothing_sent"],
        not_sent_heading=w["not_sent"], not_sent=refused, nothing_refused=w["nothing_refused"],
    )


def render_text(text: ReportText) -> str:
    """The report as plain text (the command line's ``--format text``)."""
    lines = [text.title, "", text.about, text.intro, text.generated, "", text.sent_heading]
    lines += [f"- {s}" for s in text.sent] or [text.nothing_sent]
    lines += ["", text.not_sent_heading]
    lines += [f"- {s}" for s in text.not_sent] or [text.nothing_refused]
    return "\n".join(lines)


def render_article(text: ReportText) -> str:
    """The report's body as an HTML ``<article>`` (the console embeds exactly this)."""

    def items(sentences: list[str], empty: str) -> str:
        if not sentences:
            return f"<p>{escape(empty)}</p>"
        return ('<ol class="sentences">'
                + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ol>")

    return "\n".join([
        '<article class="report">',
        f"<h1>{escape(text.title)}</h1>",
        f"<p>{escape(text.about)}</p>",
        f"<p>{escape(text.intro)}</p>",
        f'<p class="muted">{escape(text.generated)}</p>',
        f"<h2>{escape(text.sent_heading)}</h2>",
        items(text.sent, text.nothing_sent),
        f"<h2>{escape(text.not_sent_heading)}</h2>",
        items(text.not_sent, text.nothing_refused),
        "</article>",
    ])


_STYLE = """
body { font-family: sans-serif; font-size: 11pt; margin: 2em; color: #111; max-width: 50em; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.5em; }
ol.sentences li { margin-bottom: .5em; }
.muted { color: #444; font-size: 9pt; }
@media print { body { margin: 0; } }
"""
#: The API's Content-Security-Policy admits exactly this inline stylesheet (by its hash).
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def render_page(text: ReportText) -> str:
    """A self-contained printable HTML page (no scripts, no fetches) around the article."""
    return "\n".join([
        "<!DOCTYPE html>",
        f'<html lang="{text.lang}"><head><meta charset="utf-8">',
        f"<title>{escape(text.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        render_article(text),
        "</body></html>",
    ])


@dataclass(frozen=True, slots=True)
class ProducedReport:
    """A report, its wording, and the audit entry recording that it was produced."""

    report: AccessReport
    text: ReportText


def produce_report(
    db: Database, client_id: str, *, by: str, via: str, fmt: str, lang: str = "de",
    routes: RouteTable | None = None,
) -> ProducedReport:
    """The report of ``client_id`` worded in ``lang``; records the access in the audit trail.

    NotFound if the client is unknown. Every view (command line, API, console) comes here.
    """
    report = access_report(db, client_id)
    text = report_text(report, lang=lang, names=agency_names(routes, lang),
                       consents_given=consent_dates(db, report))
    record_access(db, report, by=by, via=via, fmt=fmt)
    return ProducedReport(report, text)
