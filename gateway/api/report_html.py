"""The printable Art. 15 access report: one self-contained HTML page (no scripts, no fetches).

Every value is escaped; the page holds the same metadata as the JSON report — agencies,
categories, purposes, consent ids, times — and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html import escape
from typing import Any

_STYLE = """
body { font-family: sans-serif; font-size: 11pt; margin: 2em; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; }
th, td { border: 1px solid #999; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
.meta { color: #444; font-size: 9pt; }
@media print { body { margin: 0; } a { color: inherit; } }
"""

#: The report's one inline stylesheet, allowed by hash in the API's Content-Security-Policy.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value)) or "–"
    return escape(str(value))


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_access_report(report: dict[str, Any]) -> str:
    """The HTML page of an :class:`~casebridge.gateway.api.audit.AccessReport` (as JSON)."""
    client = _text(report["client_id"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="de"><head><meta charset="utf-8">',
        f"<title>Auskunft nach Art. 15 DSGVO – {client}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Auskunft nach Art. 15 DSGVO / Access report (Art. 15 GDPR)</h1>",
        f"<p>Client: <strong>{client}</strong></p>",
        f'<p class="meta">Generated {_text(report["generated_at"])} from the audit trail up to '
        f'entry {_text(report["chain_head_seq"])} (hash {_text(report["chain_head_hash"])}).</p>',
        "<h2>Recipients / Empfänger</h2>",
    ]
    recipients = report["recipients"]
    if recipients:
        parts.append(_table(
            ["Recipient", "Categories", "Purposes", "Consents", "First", "Last"],
            [[name, s["categories"], s["purposes"], s["consents"], s["first"], s["last"]]
             for name, s in recipients.items()],
        ))
    else:
        parts.append("<p>No data about this client was released to any agency.</p>")
    parts.append("<h2>Transfers / Übermittlungen</h2>")
    parts.append(_table(
        ["Time", "Message", "From", "To", "Purpose", "Outcome", "Categories", "Consents",
         "Legal basis"],
        [[d["at"], d["message_id"], d["sender"], d["recipient"], d["purpose"], d["outcome"],
          d["categories"], d["consents"], d["legal_basis"]] for d in report["disclosures"]],
    ))
    parts.append("<h2>Withheld transfers / Nicht übermittelt</h2>")
    parts.append(_table(
        ["Time", "Message", "From", "To", "Purpose", "Withheld (reason)"],
        [[d["at"], d["message_id"], d["sender"], d["recipient"], d["purpose"],
          [f"{w['category']} ({w['reason']})" for w in d["withheld"]]]
         for d in report["withheld_transfers"]],
    ))
    parts.append("</body></html>")
    return "\n".join(parts)
