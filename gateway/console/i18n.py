"""German and English wording of the console, and the choice of language per request.

Labels are looked up by key (:func:`translate`); the closed vocabularies of the domain (outcomes,
purposes, categories, withhold reasons, relations) have their own tables so that a DPO — and a
client reading the Art. 15 report — reads words, not codes. A key missing in one language falls
back to English and then to the key itself, so a page never fails over a label;
tests/console/test_i18n.py checks that both languages are complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casebridge.errors import InputError, NotFound

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
        "login.locked": "Zu viele fehlgeschlagene Anmeldungen. Bitte später erneut versuchen.",
        "nav.locks": "Sperren",
        "locks.title": "Gesperrte Zugänge",
        "locks.intro": "Nach zu vielen fehlgeschlagenen Anmeldungen ist ein Konto oder eine "
                       "Absenderadresse eine Weile gesperrt. Adressen erscheinen nur als "
                       "Prüfsumme.",
        "locks.none": "Derzeit ist nichts gesperrt.",
        "locks.scope": "Art",
        "locks.subject": "Konto oder Adresse",
        "locks.auth": "Anmeldeweg",
        "locks.since": "gesperrt seit",
        "locks.until": "gesperrt bis",
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
        "error.input": "Die Eingabe ist ungültig.",
        "error.method": "Diese Seite nimmt diese Art von Anfrage nicht an.",
        "error.period.format": "Von/Bis: bitte ein Datum im Format JJJJ-MM-TT angeben.",
        "error.period.order": "Von/Bis: der Zeitraum beginnt nach seinem Ende.",
        "error.period.long": "Von/Bis: höchstens zehn Jahre auf einmal.",
        "error.number": "{name}: bitte eine positive ganze Zahl angeben.",
        "error.too_long": "{name}: höchstens {limit} Zeichen.",
        "error.choice": "{name}: dieser Wert steht nicht zur Auswahl.",
        "error.edge_needs_both": "Absender und Empfänger: beide werden benötigt.",
        "error.no_entry": "Es gibt keinen Protokolleintrag {seq}.",
        "error.not_override": "Protokolleintrag {seq} ist keine gesetzliche Übermittlung.",
        "error.not_first_override": "Protokolleintrag {seq} ist nicht die erste gesetzliche "
                                    "Entscheidung dieser Übermittlung; bitte jene prüfen.",
        "error.no_routes": "Es ist keine Routentabelle konfiguriert "
                           "(CASEBRIDGE_ROUTE_TABLE).",
        "error.export_format": "Format: csv oder json.",
        "presets": "Schnellauswahl",
        "preset.this_week": "Diese Woche",
        "preset.last_30": "Letzte 30 Tage",
        "nav.incidents": "Abgewiesen & unzustellbar",
        "nav.records": "Verarbeitungsverzeichnis",
        "incidents.title": "Abgewiesene und unzustellbare Nachrichten",
        "incidents.intro": "Nachrichten mit gefälschtem Absender, an der Tür abgewiesene "
                           "Nachrichten (keine Route) und unzustellbare Nachrichten, wie das "
                           "Prüfprotokoll sie festhält.",
        "incidents.kind": "Art",
        "incidents.list": "Ereignisse",
        "incidents.caller": "Aufrufer",
        "incidents.why": "Grund",
        "incidents.claimed": "angeblicher Absender",
        "incidents.forged_why": "die Nachricht nennt eine andere Stelle als Absender als die, "
                                "die sie einlieferte",
        "records.title": "Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO)",
        "records.intro": "Je Route der Routentabelle: Zwecke, Datenarten, Absender, Empfänger und "
                         "Rechtsgrundlagen. Quelle: {source}.",
        "records.route": "Route {n}",
        "records.senders": "Absender",
        "records.recipients": "Empfänger",
        "records.purposes": "Zwecke",
        "records.message_types": "Nachrichtenarten",
        "records.all_types": "alle",
        "records.categories": "Datenarten",
        "records.special": "besondere Kategorie (Art. 9 DSGVO)",
        "records.required": "für die Übermittlung erforderlich",
        "records.legal_bases": "Rechtsgrundlagen",
        "records.response_days": "Antwortfrist",
        "records.days": "{days} Arbeitstage",
        "records.export": "Exportieren",
        "records.export_csv": "Als CSV herunterladen",
        "records.export_json": "Als JSON herunterladen",
        "records.none": "Die Routentabelle enthält keine Route.",
        "overrides.comment_personal": "Der Kommentar enthält personenbezogene Daten ({found}) "
                                      "und wurde nicht gespeichert: Das Prüfprotokoll kann "
                                      "später nicht mehr geändert werden. Bitte ohne Namen und "
                                      "Geburtsdaten formulieren.",
        "personal.name": "einen Namen der betroffenen Person",
        "personal.birth_date": "ein Geburtsdatum der betroffenen Person",
        "personal.birth_marker": "eine Geburtsangabe",
        "withheld.outcome_all": "gesperrt, teilweise und gesetzlich",
        "labels": "Merkmale",
        "entry.seq": "Laufende Nummer",
        "field.before": "Seitenanfang",
        "kind": "Art",
        "job": "Prüflauf",
        "id": "Kennung",
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
        "login.locked": "Too many failed sign-ins. Please try again later.",
        "nav.locks": "Locks",
        "locks.title": "Locked accounts",
        "locks.intro": "After too many failed sign-ins an account or a client address is locked "
                       "for a while. Addresses appear as a checksum only.",
        "locks.none": "Nothing is locked at the moment.",
        "locks.scope": "Kind",
        "locks.subject": "Account or address",
        "locks.auth": "Sign-in method",
        "locks.since": "locked since",
        "locks.until": "locked until",
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
        "error.input": "The input is invalid.",
        "error.method": "This page does not take this kind of request.",
        "error.period.format": "From/to: a date as YYYY-MM-DD, please.",
        "error.period.order": "From/to: the period starts after it ends.",
        "error.period.long": "From/to: at most ten years at once.",
        "error.number": "{name}: a positive whole number, please.",
        "error.too_long": "{name}: at most {limit} characters.",
        "error.choice": "{name}: this value is not one of the choices.",
        "error.edge_needs_both": "Sender and recipient: both are needed.",
        "error.no_entry": "There is no audit entry {seq}.",
        "error.not_override": "Audit entry {seq} is not a statutory override.",
        "error.not_first_override": "Audit entry {seq} is not the first override decision of its "
                                    "transfer; review that one.",
        "error.no_routes": "No route table is configured (CASEBRIDGE_ROUTE_TABLE).",
        "error.export_format": "Format: csv or json.",
        "presets": "Quick choice",
        "preset.this_week": "This week",
        "preset.last_30": "Last 30 days",
        "nav.incidents": "Refused & dead letters",
        "nav.records": "Records of processing",
        "incidents.title": "Refused and undeliverable messages",
        "incidents.intro": "Messages with a forged sender, messages refused at the door (no "
                           "route) and dead letters, as the audit trail records them.",
        "incidents.kind": "Kind",
        "incidents.list": "Events",
        "incidents.caller": "Caller",
        "incidents.why": "Reason",
        "incidents.claimed": "claimed sender",
        "incidents.forged_why": "the message names another agency as sender than the one that "
                                "posted it",
        "records.title": "Records of processing activities (Art. 30 GDPR)",
        "records.intro": "Per route of the route table: purposes, categories, senders, "
                         "recipients and legal bases. Source: {source}.",
        "records.route": "Route {n}",
        "records.senders": "Senders",
        "records.recipients": "Recipients",
        "records.purposes": "Purposes",
        "records.message_types": "Message types",
        "records.all_types": "all",
        "records.categories": "Categories of data",
        "records.special": "special category (Art. 9 GDPR)",
        "records.required": "required for the transfer",
        "records.legal_bases": "Legal bases",
        "records.response_days": "Response time",
        "records.days": "{days} working days",
        "records.export": "Export",
        "records.export_csv": "Download as CSV",
        "records.export_json": "Download as JSON",
        "records.none": "The route table has no route.",
        "overrides.comment_personal": "The comment contains personal data ({found}) and was not "
                                      "stored: the audit trail cannot be changed later. Please "
                                      "word it without names and birth dates.",
        "personal.name": "a name of the person concerned",
        "personal.birth_date": "a birth date of the person concerned",
        "personal.birth_marker": "a statement of birth",
        "withheld.outcome_all": "blocked, partial and statutory",
        "labels": "Labels",
        "entry.seq": "Sequence number",
        "field.before": "Page start",
        "kind": "Kind",
        "job": "Verification job",
        "id": "Id",
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
    "stage": {
        "de": {"inbound": "bei Eingang", "delivery": "bei Zustellung",
               "replay": "bei Wiederholung", "dry_run": "Probelauf", "gateway": "am Gateway",
               "dpo": "Datenschutz", "cli": "über die Kommandozeile"},
        "en": {"inbound": "on arrival", "delivery": "at delivery", "replay": "on replay",
               "dry_run": "dry run", "gateway": "at the gateway", "dpo": "data protection",
               "cli": "on the command line"},
    },
    "entry_kind": {
        "de": {"decision": "Entscheidung", "forged_sender": "gefälschter Absender",
               "message_refused": "an der Tür abgewiesen", "dead_letter": "unzustellbar",
               "dead_letter_replayed": "unzustellbare Nachricht erneut zugestellt",
               "replay_skipped": "erneute Zustellung ausgelassen (schon zugestellt)",
               "dpo_review": "Prüfung durch die/den Datenschutzbeauftragte/n",
               "chain_verified": "Prüfung der Kette", "consent_recorded": "Einwilligung erfasst",
               "consent_withdrawn": "Einwilligung widerrufen",
               "checkpoint": "Kontrollpunkt (bindet die Enden aller Ketten)"},
        "en": {"decision": "decision", "forged_sender": "forged sender",
               "message_refused": "refused at the door", "dead_letter": "dead letter",
               "dead_letter_replayed": "dead letter replayed",
               "replay_skipped": "replay skipped (already delivered)",
               "dpo_review": "review by the data-protection officer",
               "chain_verified": "chain verification", "consent_recorded": "consent recorded",
               "consent_withdrawn": "consent withdrawn",
               "checkpoint": "checkpoint (binds the heads of all chains)"},
    },
    "incident": {
        "de": {"forged_sender": "gefälschter Absender", "message_refused": "abgewiesen",
               "dead_letter": "unzustellbar", "dead_letter_replayed": "erneut zugestellt"},
        "en": {"forged_sender": "forged sender", "message_refused": "refused",
               "dead_letter": "dead letter", "dead_letter_replayed": "dead letter replayed"},
    },
    "refusal": {
        "de": {"no_route": "keine Route erlaubt diese Übermittlung",
               "wrong_system": "die Stelle sendet in einem anderen Format",
               "unknown_agency": "die Stelle steht nicht in der Routentabelle"},
        "en": {"no_route": "no route admits this transfer",
               "wrong_system": "the agency sends in another format",
               "unknown_agency": "the agency is not in the route table"},
    },
    #: why routing gave a message up (the ``outcome`` of a ``dead_letter`` entry)
    "dead_reason": {
        "de": {"refused": "der Empfänger hat die Nachricht abgelehnt",
               "retries_exhausted": "der Empfänger war bis zum Ende aller Zustellversuche nicht "
                                    "erreichbar",
               "no_route": "keine Route erlaubt diese Zustellung mehr",
               "render_failed": "die Nachricht ließ sich nicht in das Format des Empfängers "
                                "übertragen",
               "undecodable": "die Nachricht war nicht lesbar",
               "not_single_recipient": "die Nachricht nannte nicht genau einen Empfänger"},
        "en": {"refused": "the recipient refused the message",
               "retries_exhausted": "the recipient stayed unreachable through every attempt",
               "no_route": "no route admits this delivery any more",
               "render_failed": "the message could not be rendered in the recipient's format",
               "undecodable": "the message could not be read",
               "not_single_recipient": "the message did not name exactly one recipient"},
    },
    #: legal bases as route tables name them (``statutory_bases``) and the consent bases of
    #: Art. 30 records; a code not listed here is shown as it is
    "legal_basis": {
        "de": {"kkg-4": "§ 4 KKG – Mitteilung an das Jugendamt zum Schutz eines Kindes",
               "sgb-viii-8a": "§ 8a SGB VIII – Schutzauftrag bei Kindeswohlgefährdung",
               "gdpr-6-1-a": "Art. 6 Abs. 1 lit. a DSGVO – Einwilligung der betroffenen Person",
               "gdpr-9-2-a": "Art. 9 Abs. 2 lit. a DSGVO – ausdrückliche Einwilligung, die "
                             "besondere Kategorien nennt",
               "sgb-x-67b": "§ 67b SGB X – Einwilligung in die Übermittlung von Sozialdaten"},
        "en": {"kkg-4": "§ 4 KKG – notifying the youth office to protect a child",
               "sgb-viii-8a": "§ 8a SGB VIII – protection mandate where a child is endangered",
               "gdpr-6-1-a": "Art. 6(1)(a) GDPR – consent of the data subject",
               "gdpr-9-2-a": "Art. 9(2)(a) GDPR – explicit consent naming special categories",
               "sgb-x-67b": "§ 67b SGB X – consent to the transfer of social data"},
    },
    "message_type": {
        "de": {"referral": "Zuweisung", "case_conference": "Einladung zur Fallkonferenz",
               "plan_update": "Hilfeplan-Fortschreibung", "case_export": "Fallakte",
               "status_update": "Rückmeldung"},
        "en": {"referral": "referral", "case_conference": "case conference invitation",
               "plan_update": "support plan update", "case_export": "case file",
               "status_update": "status update"},
    },
}


class WordedInputError(InputError):
    """Bad console input whose message the error page words in the reader's language."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(translate("en", key, **values))
        self.key, self.values = key, values


class WordedNotFound(NotFound):
    """A console look-up that found nothing, worded in the reader's language."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(translate("en", key, **values))
        self.key, self.values = key, values


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
