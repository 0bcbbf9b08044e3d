"""The sender hears back: a copy blocked at delivery or dead-lettered is reported to its sender.

Where the sender's format has a feedback message, the worker sends one in that format: the job
centre gets a ``Rueckmeldung`` with ``Status`` ``abgelehnt``, a provider a FHIR ``Task`` with
``status: rejected`` and a ``statusReason``, each naming the message it answers
(``BezugNachrichtenID``/``focus``) and the recipient on whose behalf it reports. The social and
youth offices' formats have no feedback message; for every sender the outcome is also on the
status API (``GET /v1/status/messages/{id}``) with its reason code.

A :class:`Feedback` holds only ids, the state and the reason code, and the document made from it
carries one sentence of casebridge's own (which message, which recipient, why), never data of
the client: it is not a transfer of personal data and does not pass the consent gate. It travels
over the broker to the sender's queue like any message (retried, dead-lettered), so a sender that
is unreachable for a while still gets it; a status update is never answered by feedback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from casebridge.canonical_model import MessageType, TransferEnvelope
from casebridge.routing.routes import RouteTable
from casebridge.routing.store import delivery_id

#: Systems whose format has a message that reports on an earlier message, and the native status
#: code of a rejection in it.
FEEDBACK_SYSTEMS = {"jobcenter": "abgelehnt", "provider-fhir": "rejected"}
CONTENT_TYPE = "application/vnd.casebridge.feedback+json"
#: Broker header marking a feedback message (its body is a Feedback, not an envelope).
HEADER = "casebridge_feedback"

#: Plain words for the reason codes a copy is blocked or dead-lettered with.
_REASONS = {
    "withdrawn": "Die Einwilligung wurde widerrufen.",
    "expired": "Die Einwilligung ist abgelaufen.",
    "no_consent": "Es liegt keine Einwilligung vor.",
    "no_route": "Für diese Übermittlung besteht kein Übermittlungsweg mehr.",
    "refused": "Das empfangende System hat die Nachricht abgewiesen.",
    "retries_exhausted": "Das empfangende System war wiederholt nicht erreichbar.",
    "render_failed": "Die Nachricht lässt sich im Format des Empfängers nicht darstellen.",
}


class Feedback(BaseModel):
    """What the sender learns about one copy of its message: ids, state and reason only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#\-]{0,127}$")
    sender: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
    recipient: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
    state: Literal["blocked", "dead"]
    reason: str = Field(pattern=r"^[A-Za-z0-9_:.-]{1,64}$")
    at: AwareDatetime

    @property
    def feedback_id(self) -> str:
        """The feedback message's own id (stable: the same copy's feedback is sent once)."""
        return f"cb-{delivery_id(self.sender, self.message_id, self.recipient)[2:]}-{self.state}"

    def sentence(self) -> str:
        """One plain German sentence for the sender's case worker (no client data)."""
        why = _REASONS.get(self.reason) or (
            "Die Einwilligung deckt die Übermittlung nicht ab." if self.state == "blocked"
            else "Die Zustellung ist gescheitert.")
        return (f"casebridge: Die Nachricht {self.message_id} wurde {self.recipient} nicht "
                f"zugestellt. {why} (Grund: {self.reason}) Es wurden keine Daten an "
                f"{self.recipient} übermittelt.")


def feedback_for(
    routes: RouteTable, envelope: TransferEnvelope | None, *, recipient: str | None, state: str,
    reason: str | None, at: datetime,
) -> Feedback | None:
    """The feedback owed for a copy that ended ``blocked`` or ``dead``; None where the sender's
    format has no feedback message, or the copy was itself a status update."""
    if envelope is None or state not in ("blocked", "dead"):
        return None
    if envelope.message_type == MessageType.STATUS_UPDATE:
        return None
    agency = routes.agencies.get(envelope.sender)
    if agency is None or agency.system not in FEEDBACK_SYSTEMS:
        return None
    return Feedback(
        message_id=envelope.message_id, sender=envelope.sender,
        recipient=recipient or envelope.recipients[0], state=state,
        reason=(reason or state)[:64], at=at,
    )


def feedback_envelope(feedback: Feedback, routes: RouteTable) -> TransferEnvelope:
    """The status update the sender's adapter renders as its feedback message."""
    system = routes.agency(feedback.sender).system
    return TransferEnvelope.model_validate({
        "message_id": feedback.feedback_id,
        "correlation_id": feedback.message_id,
        "message_type": "status_update",
        "sender": feedback.recipient,
        "recipients": [feedback.sender],
        "purpose": "service_delivery",
        "created_at": feedback.at,
        "source_system": system,
        "status": {"status": "rejected", "native_status": FEEDBACK_SYSTEMS[system],
                   "effective_on": feedback.at.date()},
        "parts": [{"id": "status-reason", "category": "case_notes", "source": "/statusReason",
                   "content": {"kind": "note", "text": feedback.sentence()}}],
    })
