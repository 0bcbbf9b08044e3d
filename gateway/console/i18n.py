"""German and English wording of the console, and the choice of language per request.

Labels are looked up by key (:func:`translate`); the closed vocabularies of the domain (outcomes,
purposes, categories, withhold reasons, relations) have their own tables so that a DPO — and a
client reading the Art. 15 report — reads words, not codes. A key missing in one language falls
back to English and then to the key itself, so a page never fails over a label;
tests/console/test_i18n.py checks that both languages are complete.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"

LABELS: Mapping[str, Mapping[str, str]] = {
    "de": {
        "app": "casebridge – Datenschutz-Konsole",
        "skip": "Zum Inhalt springen",
        "nav": "Hauptnavigation",
        "nav.flows": "Übermittlungen",
        "nav.withheld": "Gesperrt & teilweise",
        "nav.overrides": "Gesetzliche Übermittlungen",
        "nav.report": "Auskunft (Art. 15)",
        "nav.persons": "Person finden",
        "nav.integrity": "Integrität",
        "nav.consents": "Einwilligungen",
        "nav.ops": "Betrieb",
        "language": "Sprache",
        "signed_in_as": "Angemeldet als",
        "logout": "Abmelden",
        "login.title": "Anmelden",
        "login.intro": "Melden Sie sich mit Ihrem casebridge-Benutzerkonto an.",
        "login.user": "Benutzername",
        "login.password": "Passwort",
        "login.submit": "Anmelden",
        "login.failed": "Benutzername oder Passwort ist falsch.",
        "login.expired": "Das Formular ist abgelaufen. Bitte erneut anmelden.",
        "error.forbidden.title": "Kein Zugriff",
        "error.forbidden": "Diese Seite ist der Rolle {roles} vorbehalten. Ihre Rolle: {role}.",
        "error.csrf.title": "Anfrage abgelehnt",
        "error.csrf": "Das Formular war ungültig oder veraltet (CSRF-Schutz). Bitte laden Sie die "
                      "Seite neu und versuchen Sie es erneut.",
        "error.notfound.title": "Nicht gefunden",
        "error.notfound": "Diese Seite gibt es nicht.",
        "error.input.title": "Ungültige Eingabe",
        "back_home": "Zur Startseite",
        "period": "Zeitraum",
        "from": "Von",
        "to": "Bis (einschließlich)",
        "show": "Anzeigen",
        "filter": "Filtern",
        "all": "alle",
        "agency": "Stelle",
        "purpose": "Zweck",
        "reason": "Grund",
        "sender": "Absender",
        "recipient": "Empfänger",
        "time": "Zeitpunkt",
        "stage": "Stufe",
        "outcome": "Ergebnis",
        "released": "Übermittelt",
        "withheld": "Zurückgehalten",
        "consents": "Einwilligungen",
        "legal_basis": "Rechtsgrundlage",
        "message": "Nachricht",
        "client": "Klient/in",
        "client_id": "Klienten-ID",
        "entry": "Protokolleintrag",
        "none": "keine",
        "total": "Summe",
        "next_page": "Weitere Einträge",
        "no_entries": "Keine Einträge für diese Auswahl.",
        "flows.title": "Übermittlungen zwischen Stellen",
        "flows.diagram": "Diagramm der Übermittlungen",
        "flows.diagram_desc": "Stellen als Knoten, Übermittlungen als Pfeile; jeder Pfeil führt zu "
                              "den Entscheidungen. Dieselben Zahlen stehen in der Tabelle.",
        "flows.table": "Übermittlungen je Strecke",
        "flows.route": "Strecke",
        "flows.decisions": "Entscheidungen",
        "flows.count_note": "Jede Nachricht zählt je Empfänger einmal, im Zeitraum ihrer ersten "
                            "Entscheidung: als gesperrt, wenn sie irgendwann gesperrt wurde (etwa "
                            "bei Zustellung nach einem Widerruf), sonst nach der Entscheidung bei "
                            "Eingang.",
        "edge.title": "Entscheidungen: {sender} → {recipient}",
        "withheld.title": "Gesperrte und teilweise übermittelte Daten",
        "withheld.what": "Was zurückgehalten wurde",
        "overrides.title": "Gesetzliche Übermittlungen ohne Einwilligung",
        "overrides.intro": "Übermittlungen auf gesetzlicher Grundlage (z. B. §8a SGB VIII) ohne "
                           "Einwilligung. Jede muss von der/dem Datenschutzbeauftragten geprüft "
                           "werden; die Prüfung wird im Protokoll festgehalten und ist danach "
                           "nicht mehr änderbar.",
        "overrides.pending": "Zur Prüfung offen",
        "overrides.reviewed": "Geprüft",
        "overrides.justification": "Begründung",
        "overrides.no_justification": "Keine Begründung gespeichert.",
        "overrides.review": "Prüfung",
        "overrides.comment": "Kommentar zur Prüfung",
        "overrides.comment_hint": "Wird dauerhaft im Prüfprotokoll gespeichert – bitte keine "
                                  "personenbezogenen Daten eintragen (höchstens 500 Zeichen).",
        "overrides.mark": "Als geprüft markieren",
        "overrides.reviewed_by": "Geprüft von {who} am {at}",
        "overrides.already": "Diese Übermittlung wurde bereits geprüft.",
        "overrides.done": "Die Prüfung wurde im Protokoll festgehalten.",
        "overrides.comment_required": "Bitte einen Kommentar (1–500 Zeichen) eingeben.",
        "report.title": "Auskunft nach Art. 15 DSGVO",
        "report.lookup": "Auskunft für eine/n Klient/in erstellen",
        "report.print": "Drucken",
        "report.intro": "Diese Auskunft listet jede Übermittlung Ihrer Daten zwischen den "
                        "beteiligten Stellen, die casebridge protokolliert hat.",
        "report.generated": "Erstellt am {at} aus dem Prüfprotokoll bis Eintrag {seq}.",
        "report.sent": "Übermittlungen Ihrer Daten",
        "report.not_sent": "Nicht übermittelt",
        "report.nothing_sent": "Es wurden keine Daten über Sie an andere Stellen übermittelt.",
        "report.nothing_withheld": "Keine.",
        "report.unknown_client": "Diese Klienten-ID ist casebridge nicht bekannt.",
        "report.sentence": "Am {date} wurden folgende Daten über Sie von {sender} an "
                           "{recipient} übermittelt: {categories}. Zweck: {purpose}.",
        "report.basis_consent": "Grundlage: Ihre Einwilligung ({consents}).",
        "report.basis_law": "Grundlage: gesetzliche Befugnis ({basis}), ohne Einwilligung.",
        "report.partial": "Nicht weitergegeben wurden dabei: {withheld}.",
        "report.held_back": "nicht weitergegeben",
        "report.refused": "Am {date} sollten Daten über Sie von {sender} an {recipient} "
                          "übermittelt werden (Zweck: {purpose}). Das wurde verhindert: "
                          "{reasons}.",
        "integrity.title": "Integrität des Prüfprotokolls",
        "integrity.intro": "Jeder Eintrag ist mit dem vorigen verkettet (SHA-256). Die Prüfung "
                           "rechnet die ganze Kette nach und zeigt jede Änderung, Lücke oder "
                           "Einfügung.",
        "integrity.last": "Letzte Prüfung",
        "integrity.never": "Die Kette wurde noch nie über die Konsole geprüft.",
        "integrity.ok": "Unverändert: {checked} Einträge geprüft, bis Eintrag {seq}.",
        "integrity.broken": "BESCHÄDIGT ab Eintrag {seq}: {problem}",
        "integrity.by": "Geprüft von {who} am {at}.",
        "integrity.run": "Kette jetzt prüfen",
        "integrity.running": "Prüfung läuft …",
        "integrity.progress": "Fortschritt",
        "integrity.progress_of": "{checked} von {total} Einträgen",
        "integrity.result": "Ergebnis",
        "consents.title": "Einwilligungen einer/eines Klient/in",
        "consents.lookup": "Klient/in suchen",
        "consents.identifiers": "Kennungen bei den Stellen",
        "consents.system": "Kennungssystem",
        "consents.identifier": "Kennung",
        "consents.linked": "Verknüpft durch, am",
        "consents.by": "Durch",
        "consents.none": "Für diese/n Klient/in ist keine Einwilligung erfasst.",
        "consents.status": "Status",
        "consents.grantor": "Erteilt von",
        "consents.disclosers": "Darf übermitteln",
        "consents.recipients": "Darf empfangen",
        "consents.categories": "Datenarten",
        "consents.all_ordinary": "alle außer besonderen Kategorien",
        "consents.valid": "Gültig",
        "consents.form": "Form",
        "consents.history": "Verlauf",
        "consents.withdrawn": "widerrufen",
        "consents.in_force": "in Kraft",
        "consents.until_withdrawn": "bis auf Widerruf",
        "event.given": "erteilt",
        "event.recorded": "erfasst",
        "event.withdrawn": "widerrufen",
        "ops.title": "Betrieb",
        "ops.intro": "Nur lesend. Warteschlangen und Zustellungen, wie Routing und Metriken sie "
                     "melden.",
        "ops.deliveries": "Zustellungen je Empfänger",
        "ops.queue": "Warteschlange",
        "ops.depth": "Nachrichten in der Warteschlange",
        "ops.broker_unavailable": "Broker nicht erreichbar oder kein Routing konfiguriert",
        "ops.outbox": "Abholfach (nicht abgeholt)",
        "ops.dead": "Unzustellbar",
        "ops.dead_letters": "Unzustellbare Nachrichten",
        "ops.metrics": "Zähler dieses Prozesses",
        "ops.messages_in": "Eingegangen",
        "ops.messages_out": "Zugestellt",
        "ops.decisions": "Entscheidungen",
        "state.queued": "in Zustellung",
        "state.delivered": "zugestellt",
        "state.blocked": "bei Zustellung gesperrt",
        "state.dead": "unzustellbar",
        "entry.title": "Protokolleintrag {seq}",
        "entry.kind": "Art",
        "entry.hash": "Hash",
        "entry.prev_hash": "Hash des vorigen Eintrags",
        "entry.recorded_at": "Gespeichert",
        "entry.details": "Details",
        "entry.review_required": "Prüfung erforderlich",
        "yes": "ja",
        "no": "nein",
    },
    "en": {
        "app": "casebridge – data-protection console",
        "skip": "Skip to content",
        "nav": "Main navigation",
        "nav.flows": "Flows",
        "nav.withheld": "Blocked & partial",
        "nav.overrides": "Statutory overrides",
        "nav.report": "Access report (Art. 15)",
        "nav.persons": "Find a person",
        "nav.integrity": "Integrity",
        "nav.consents": "Consents",
        "nav.ops": "Operations",
        "language": "Language",
        "signed_in_as": "Signed in as",
        "logout": "Sign out",
        "login.title": "Sign in",
        "login.intro": "Sign in with your casebridge user account.",
        "login.user": "User name",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.failed": "The user name or password is wrong.",
        "login.expired": "The form has expired. Please sign in again.",
        "error.forbidden.title": "Access denied",
        "error.forbidden": "This page is for the role {roles}. Your role: {role}.",
        "error.csrf.title": "Request refused",
        "error.csrf": "The form was invalid or stale (CSRF protection). Please reload the page "
                      "and try again.",
        "error.notfound.title": "Not found",
        "error.notfound": "There is no such page.",
        "error.input.title": "Invalid input",
        "back_home": "Back to the start page",
        "period": "Period",
        "from": "From",
        "to": "To (inclusive)",
        "show": "Show",
        "filter": "Filter",
        "all": "all",
        "agency": "Agency",
        "purpose": "Purpose",
        "reason": "Reason",
        "sender": "Sender",
        "recipient": "Recipient",
        "time": "Time",
        "stage": "Stage",
        "outcome": "Outcome",
        "released": "Released",
        "withheld": "Withheld",
        "consents": "Consents",
        "legal_basis": "Legal basis",
        "message": "Message",
        "client": "Client",
        "client_id": "Client id",
        "entry": "Audit entry",
        "none": "none",
        "total": "Total",
        "next_page": "More entries",
        "no_entries": "No entries for this selection.",
        "flows.title": "Flows between agencies",
        "flows.diagram": "Diagram of the flows",
        "flows.diagram_desc": "Agencies as nodes, transfers as arrows; each arrow leads to its "
                              "decisions. The table holds the same numbers.",
        "flows.table": "Transfers per route",
        "flows.route": "Route",
        "flows.decisions": "Decisions",
        "flows.count_note": "Each message counts once per recipient, in the period of its first "
                            "decision: as blocked if it was blocked at any point (e.g. at delivery "
                            "after a withdrawal), else by the decision on arrival.",
        "edge.title": "Decisions: {sender} → {recipient}",
        "withheld.title": "Blocked and partial transfers",
        "withheld.what": "What was withheld",
        "overrides.title": "Statutory transfers without consent",
        "overrides.intro": "Transfers on a statutory basis (e.g. §8a SGB VIII) without consent. "
                           "Each must be reviewed by the data-protection officer; the review is "
                           "recorded in the audit trail and cannot be changed afterwards.",
        "overrides.pending": "Awaiting review",
        "overrides.reviewed": "Reviewed",
        "overrides.justification": "Justification",
        "overrides.no_justification": "No justification stored.",
        "overrides.review": "Review",
        "overrides.comment": "Review comment",
        "overrides.comment_hint": "Stored permanently in the audit trail – please enter no "
                                  "personal data (at most 500 characters).",
        "overrides.mark": "Mark as reviewed",
        "overrides.reviewed_by": "Reviewed by {who} on {at}",
        "overrides.already": "This transfer has already been reviewed.",
        "overrides.done": "The review was recorded in the audit trail.",
        "overrides.comment_required": "Please enter a comment (1–500 characters).",
        "report.title": "Access report (Art. 15 GDPR)",
        "report.lookup": "Create the report for a client",
        "report.print": "Print",
        "report.intro": "This report lists every transfer of your data between the agencies "
                        "involved that casebridge recorded.",
        "report.generated": "Generated on {at} from the audit trail up to entry {seq}.",
        "report.sent": "Transfers of your data",
        "report.not_sent": "Not transferred",
        "report.nothing_sent": "No data about you was passed to any other agency.",
        "report.nothing_withheld": "None.",
        "report.unknown_client": "This client id is not known to casebridge.",
        "report.sentence": "On {date}, the following data about you was passed from {sender} "
                           "to {recipient}: {categories}. Purpose: {purpose}.",
        "report.basis_consent": "Basis: your consent ({consents}).",
        "report.basis_law": "Basis: a statutory power ({basis}), without consent.",
        "report.partial": "Not passed on with it: {withheld}.",
        "report.held_back": "not passed on",
        "report.refused": "On {date}, data about you was to be passed from {sender} to "
                          "{recipient} (purpose: {purpose}). This was prevented: {reasons}.",
        "integrity.title": "Audit trail integrity",
        "integrity.intro": "Every entry is chained to the one before (SHA-256). Verification "
                           "recomputes the whole chain and reveals any change, gap or insertion.",
        "integrity.last": "Last verification",
        "integrity.never": "The chain has not yet been verified from the console.",
        "integrity.ok": "Unaltered: {checked} entries checked, up to entry {seq}.",
        "integrity.broken": "BROKEN from entry {seq}: {problem}",
        "integrity.by": "Verified by {who} on {at}.",
        "integrity.run": "Verify the chain now",
        "integrity.running": "Verification running …",
        "integrity.progress": "Progress",
        "integrity.progress_of": "{checked} of {total} entries",
        "integrity.result": "Result",
        "consents.title": "A client's consents",
        "consents.lookup": "Find a client",
        "consents.identifiers": "Identifiers at the agencies",
        "consents.system": "Identifier system",
        "consents.identifier": "Identifier",
        "consents.linked": "Linked by, on",
        "consents.by": "By",
        "consents.none": "No consent is on record for this client.",
        "consents.status": "Status",
        "consents.grantor": "Given by",
        "consents.disclosers": "May disclose",
        "consents.recipients": "May receive",
        "consents.categories": "Categories",
        "consents.all_ordinary": "all except special categories",
        "consents.valid": "Valid",
        "consents.form": "Form",
        "consents.history": "History",
        "consents.withdrawn": "withdrawn",
        "consents.in_force": "in force",
        "consents.until_withdrawn": "until withdrawn",
        "event.given": "given",
        "event.recorded": "recorded",
        "event.withdrawn": "withdrawn",
        "ops.title": "Operations",
        "ops.intro": "Read-only. Queues and deliveries as routing and the metrics report them.",
        "ops.deliveries": "Deliveries per recipient",
        "ops.queue": "Queue",
        "ops.depth": "Messages in the queue",
        "ops.broker_unavailable": "broker unreachable or no routing configured",
        "ops.outbox": "Outbox (not fetched)",
        "ops.dead": "Dead",
        "ops.dead_letters": "Dead letters",
        "ops.metrics": "Counters of this process",
        "ops.messages_in": "Received",
        "ops.messages_out": "Delivered",
        "ops.decisions": "Decisions",
        "state.queued": "queued",
        "state.delivered": "delivered",
        "state.blocked": "blocked at delivery",
        "state.dead": "dead",
        "entry.title": "Audit entry {seq}",
        "entry.kind": "Kind",
        "entry.hash": "Hash",
        "entry.prev_hash": "Hash of the preceding entry",
        "entry.recorded_at": "Recorded",
        "entry.details": "Details",
        "entry.review_required": "Review required",
        "yes": "yes",
        "no": "no",
    },
}

#: The closed vocabularies, worded for people (the report speaks to the client as "you").
VOCABULARY: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "outcome": {
        "de": {"permit": "vollständig übermittelt", "partial": "teilweise übermittelt",
               "block": "gesperrt", "override": "gesetzlich (ohne Einwilligung)"},
        "en": {"permit": "released in full", "partial": "partially released",
               "block": "blocked", "override": "statutory (without consent)"},
    },
    "outcome_short": {
        "de": {"permit": "✓ vollständig", "partial": "◐ teilweise", "block": "✕ gesperrt",
               "override": "§ gesetzlich"},
        "en": {"permit": "✓ in full", "partial": "◐ partial", "block": "✕ blocked",
               "override": "§ statutory"},
    },
    "purpose": {
        "de": {"referral": "Vermittlung an einen Dienst", "case_conference": "Fallkonferenz",
               "joint_planning": "gemeinsame Hilfeplanung",
               "service_delivery": "Erbringung der vermittelten Leistung",
               "benefit_decision": "Entscheidung über Leistungen",
               "child_protection": "Kinderschutz"},
        "en": {"referral": "referral to a service", "case_conference": "case conference",
               "joint_planning": "joint support planning",
               "service_delivery": "delivering the referred service",
               "benefit_decision": "decision on benefits",
               "child_protection": "child protection"},
    },
    "category": {
        "de": {"identity": "Name, Geburtsdatum und Kennungen",
               "contact": "Kontaktdaten (Adresse, Telefon, E-Mail)",
               "household": "Haushalt und Familie", "benefits": "Sozialleistungen",
               "finances": "Einkommen und Vermögen", "debts": "Schulden",
               "employment": "Arbeit und Qualifikation", "education": "Schule und Ausbildung",
               "housing": "Wohnsituation", "health": "Gesundheit",
               "addiction": "Suchtmittelkonsum und Suchtberatung",
               "criminal": "Straftaten und Bewährung",
               "child_protection": "Einschätzung einer Kindeswohlgefährdung",
               "support_plan": "Hilfeplan (Ziele und Maßnahmen)",
               "case_notes": "Notizen der Fallbearbeitung",
               "entrusted": "anvertraute Informationen (§65 SGB VIII)"},
        "en": {"identity": "name, birth date and identifiers",
               "contact": "contact details (address, phone, e-mail)",
               "household": "household and family", "benefits": "social benefits",
               "finances": "income and assets", "debts": "debts",
               "employment": "work and qualifications", "education": "school and training",
               "housing": "housing situation", "health": "health",
               "addiction": "substance use and addiction counselling",
               "criminal": "offences and probation",
               "child_protection": "child endangerment assessment",
               "support_plan": "support plan (goals and measures)",
               "case_notes": "case workers' notes",
               "entrusted": "entrusted information (§65 SGB VIII)"},
    },
    "reason": {
        "de": {"unknown_client": "die Person ist casebridge nicht bekannt",
               "no_consent": "es liegt keine Einwilligung vor",
               "sender_not_covered": "die Einwilligung erlaubt diesem Absender keine Übermittlung",
               "recipient_not_covered": "die Einwilligung nennt diesen Empfänger nicht",
               "purpose_not_covered": "die Einwilligung gilt nicht für diesen Zweck",
               "category_not_covered": "die Einwilligung umfasst diese Datenart nicht",
               "special_category_not_named": "besonders geschützte Daten (Art. 9 DSGVO) sind in "
                                             "der Einwilligung nicht ausdrücklich genannt",
               "entruster_not_consented": "die Person, die die Information anvertraut hat, hat "
                                          "nicht eingewilligt (§65 SGB VIII)",
               "guardian_required": "bei Minderjährigen muss ein Sorgeberechtigter einwilligen",
               "not_yet_valid": "die Einwilligung gilt noch nicht",
               "expired": "die Einwilligung ist abgelaufen",
               "withdrawn": "die Einwilligung wurde widerrufen",
               "identity_not_covered": "die Identität durfte nicht übermittelt werden, daher "
                                       "wurde nichts übermittelt",
               "required_category_missing": "eine für diese Übermittlung nötige Datenart fehlte, "
                                            "daher wurde nichts übermittelt"},
        "en": {"unknown_client": "the person is not known to casebridge",
               "no_consent": "there is no consent",
               "sender_not_covered": "the consent does not let this sender disclose",
               "recipient_not_covered": "the consent does not name this recipient",
               "purpose_not_covered": "the consent does not cover this purpose",
               "category_not_covered": "the consent does not cover this kind of data",
               "special_category_not_named": "specially protected data (Art. 9 GDPR) is not "
                                             "named explicitly in the consent",
               "entruster_not_consented": "the person who entrusted the information has not "
                                          "consented (§65 SGB VIII)",
               "guardian_required": "for a minor a parent or guardian must consent",
               "not_yet_valid": "the consent is not yet valid",
               "expired": "the consent has expired",
               "withdrawn": "the consent was withdrawn",
               "identity_not_covered": "the identity could not be passed on, so nothing was",
               "required_category_missing": "a kind of data this transfer needs was missing, "
                                            "so nothing was passed on"},
    },
    "relation": {
        "de": {"self": "die Person selbst", "mother": "Mutter", "father": "Vater",
               "parent": "Elternteil", "legal_guardian": "Vormund/Sorgeberechtigte",
               "other": "andere Person"},
        "en": {"self": "the person themself", "mother": "mother", "father": "father",
               "parent": "parent", "legal_guardian": "legal guardian", "other": "another person"},
    },
    "agency_kind": {
        "de": {"jobcenter": "Jobcenter", "social_office": "Sozialamt",
               "youth_office": "Jugendamt", "provider": "Träger"},
        "en": {"jobcenter": "job centre", "social_office": "social office",
               "youth_office": "youth office", "provider": "service provider"},
    },
    "status": {
        "de": {"active": "aktiv", "inactive": "inaktiv", "rejected": "abgelehnt",
               "draft": "Entwurf", "proposed": "vorgeschlagen"},
        "en": {"active": "active", "inactive": "inactive", "rejected": "rejected",
               "draft": "draft", "proposed": "proposed"},
    },
    "form": {
        "de": {"written": "schriftlich", "electronic": "elektronisch"},
        "en": {"written": "written", "electronic": "electronic"},
    },
}


def normalise(lang: str | None) -> str | None:
    """``lang`` if it is a supported language code (``de-DE`` counts as ``de``), else None."""
    if not lang:
        return None
    code = lang.strip().lower()[:2]
    return code if code in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most, from ``Accept-Language``."""
    if not header:
        return None
    ranked = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = normalise(tag)
        if code is not None and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else None


def translate(lang: str, key: str, **values: object) -> str:
    """The label ``key`` in ``lang`` with ``{placeholders}`` filled in."""
    text = LABELS.get(lang, {}).get(key) or LABELS["en"].get(key) or key
    return text.format(**values) if values else text


def term(lang: str, vocabulary: str, code: str | None) -> str:
    """A vocabulary code in words (the code itself if it is not in the table)."""
    if code is None:
        return "–"
    return VOCABULARY.get(vocabulary, {}).get(lang, {}).get(code, code)
