"""The consent gate: the one place every transfer passes.

``ConsentGate.check`` resolves the message's client in the registry, loads that client's
consents, lets the pure engine decide, appends one audit entry per recipient, and only then hands
out the minimised envelope for each recipient that may receive anything. Routing calls it when a
message comes in and again at delivery (``check_recipient``), so a withdrawal in between blocks a
queued message (rule 6). If the audit append fails, nothing is released: the exception
propagates and no envelope leaves the gate.

``evaluate`` is the same decision without the audit entry; ``preview`` adds the copies the
recipients would receive (released exactly as ``check`` releases them) and records a ``preview``
event instead of decisions. Both serve dry runs only (``casebridge decide``/``preview``, the
gateway's preview endpoint): what they hand out is shown, never published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from casebridge.canonical_model import Outcome, TransferEnvelope
from casebridge.codes import AuditKind, AuditStage
from casebridge.consent.audit import AuditDraft, AuditEntry, AuditTrail, draft_for_decision
from casebridge.consent.claims import record_claims
from casebridge.consent.decision import MessageDecisions
from casebridge.consent.engine import ClientFacts, ConsentState, decide, release
from casebridge.consent.policy import TransferPolicy
from casebridge.consent.registry import (
    Resolution,
    ResolvedClient,
    envelope_identifiers,
    resolve_with_consents,
)
from casebridge.consent.subjects import index_subjects
from casebridge.db import Database
from casebridge.errors import InputError
from casebridge.logging import get_logger

log = get_logger(__name__)
#: The identifiers an envelope names its client by: envelopes with the same set resolve alike.
_ClientKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A decision with the client it was taken for (no audit entry yet)."""

    decisions: MessageDecisions
    client: ResolvedClient


@dataclass(frozen=True, slots=True)
class GateResult:
    """What passed the gate: the decisions, the released envelopes and their audit entries."""

    decisions: MessageDecisions
    #: recipient → minimised envelope addressed to that recipient only; blocked ones are absent.
    released: dict[str, TransferEnvelope]
    client_id: str | None
    audit: tuple[AuditEntry, ...] = field(default=())

    @property
    def audit_seqs(self) -> tuple[int, ...]:
        """Sequence numbers of the audit entries written for this check."""
        return tuple(e.seq for e in self.audit)


class ConsentGate:
    """Decide, audit, then release — in that order, for every transfer."""

    def __init__(self, db: Database, *, minor_age: int = 15) -> None:
        self.db = db
        self.minor_age = minor_age
        self.audit = AuditTrail(db)

    def evaluate(
        self,
        envelope: TransferEnvelope,
        *,
        at: datetime,
        policies: Mapping[str, TransferPolicy] | None = None,
    ) -> Evaluation:
        """Decide for every recipient without recording anything (dry run only)."""
        if at.tzinfo is None:
            raise InputError("at: the decision time needs a UTC offset")
        with self.db.snapshot_read() as conn:
            client, states = resolve_with_consents(conn, envelope_identifiers(envelope))
        facts = (
            ClientFacts(client.client_id, birth_date=client.birth_date)
            if client.resolution == Resolution.RESOLVED and client.client_id is not None
            else None
        )
        decisions = decide(
            envelope, client=facts, consents=states, at=at, policies=policies,
            minor_age=self.minor_age,
        )
        return Evaluation(decisions, client)

    def check(
        self,
        envelope: TransferEnvelope,
        *,
        at: datetime,
        stage: str,
        policies: Mapping[str, TransferPolicy] | None = None,
        along: Callable[[Connection, MessageDecisions, Mapping[str, TransferEnvelope]], None]
        | None = None,
    ) -> GateResult:
        """Decide for every recipient, append one audit entry each, then release.

        ``along(conn, decisions, released)`` is written in the audit entries' transaction (see
        ``AuditTrail.append``): what must exist exactly when the decisions do, such as the
        gateway's idempotency claim and the released envelopes waiting to be published.
        """
        evaluation = self.evaluate(envelope, at=at, policies=policies)
        released = _released(envelope, evaluation)
        subjects = index_subjects(self.db, envelope, client_id=evaluation.client.client_id, at=at)
        entries = self.audit.append_decisions(
            envelope, evaluation.decisions, stage=stage, at=at,
            client_id=evaluation.client.client_id, subjects=subjects,
            along=None if along is None else (
                lambda conn: along(conn, evaluation.decisions, released)),
        )
        overrides = [(d.recipient, e.seq) for d, e in zip(
            evaluation.decisions.decisions, entries, strict=True) if d.outcome == Outcome.OVERRIDE]
        if overrides:
            # The justification is personal data: kept beside the chain for the DPO, not in it.
            record_claims(self.db, envelope, overrides)
        log.info(
            "consent gate",
            message_id=envelope.message_id,
            outcome=[str(d.outcome) for d in evaluation.decisions.decisions],
            recipients=sorted(released),
            seq=[e.seq for e in entries],
        )
        return GateResult(
            evaluation.decisions, released, evaluation.client.client_id, tuple(entries)
        )

    def preview(
        self,
        envelope: TransferEnvelope,
        *,
        at: datetime,
        policies: Mapping[str, TransferPolicy] | None = None,
        audit_as: str | None = None,
    ) -> GateResult:
        """What :meth:`check` would release now, without deciding it for real.

        No decision is recorded and nothing may be published from the result. With
        ``audit_as`` (who asked), one ``preview`` event records that the copies were shown.
        """
        evaluation = self.evaluate(envelope, at=at, policies=policies)
        entries: tuple[AuditEntry, ...] = ()
        if audit_as is not None:
            entries = (self.audit.append_event(
                str(AuditKind.PREVIEW), at=at, stage=str(AuditStage.PREVIEW),
                sender=envelope.sender, purpose=str(envelope.purpose),
                client_id=evaluation.client.client_id, message_id=envelope.message_id,
                details={"requested_by": audit_as, "outcomes": " ".join(
                    f"{d.recipient}:{d.outcome}" for d in evaluation.decisions.decisions)},
            ),)
        return GateResult(evaluation.decisions, _released(envelope, evaluation),
                          evaluation.client.client_id, entries)

    def check_recipient(
        self,
        envelope: TransferEnvelope,
        recipient: str,
        *,
        at: datetime,
        stage: str = "delivery",
        policies: Mapping[str, TransferPolicy] | None = None,
    ) -> GateResult:
        """Re-check one recipient (delivery time): the envelope addressed to it alone."""
        try:
            single = envelope.for_recipient(recipient)
        except ValueError:
            raise InputError(
                f"recipient '{recipient}' is not a recipient of message '{envelope.message_id}'"
            ) from None
        return self.check(single, at=at, stage=stage, policies=policies)


    def evaluate_batch(
        self,
        envelopes: Sequence[TransferEnvelope],
        *,
        at: datetime,
        policies: Sequence[Mapping[str, TransferPolicy] | None],
    ) -> list[Evaluation]:
        """:meth:`evaluate` for many envelopes: one connection, and each client's consents
        resolved once however many of the envelopes are about that client (a worker's batch).

        Nothing is recorded; the caller appends :meth:`drafts` (with whatever must be written
        in the same transaction) and only then hands out :meth:`released` copies.
        """
        if at.tzinfo is None:
            raise InputError("at: the decision time needs a UTC offset")
        resolved: dict[_ClientKey, tuple[ResolvedClient, list[ConsentState]]] = {}
        keys: list[_ClientKey] = []
        with self.db.snapshot_read() as conn:
            for envelope in envelopes:
                identifiers = envelope_identifiers(envelope)
                key = tuple(sorted({(i.system, i.value) for i in identifiers}))
                if key not in resolved:
                    resolved[key] = resolve_with_consents(conn, identifiers)
                keys.append(key)
        evaluations = []
        for envelope, key, policy in zip(envelopes, keys, policies, strict=True):
            client, states = resolved[key]
            facts = (
                ClientFacts(client.client_id, birth_date=client.birth_date)
                if client.resolution == Resolution.RESOLVED and client.client_id is not None
                else None
            )
            decisions = decide(envelope, client=facts, consents=states, at=at, policies=policy,
                               minor_age=self.minor_age)
            evaluations.append(Evaluation(decisions, client))
        return evaluations

    def drafts(
        self, envelope: TransferEnvelope, evaluation: Evaluation, *, stage: str, at: datetime,
    ) -> list[AuditDraft]:
        """The audit drafts :meth:`check` would append for ``evaluation`` (subjects indexed)."""
        subjects = index_subjects(self.db, envelope, client_id=evaluation.client.client_id,
                                  at=at)
        return [draft_for_decision(envelope, d, stage=stage, at=at,
                                   client_id=evaluation.client.client_id, subjects=subjects)
                for d in evaluation.decisions.decisions]

    @staticmethod
    def released(
        envelope: TransferEnvelope, evaluation: Evaluation
    ) -> dict[str, TransferEnvelope]:
        """recipient → the minimised copy it may receive; hand out only after the audit append."""
        return _released(envelope, evaluation)

    def record_overrides(
        self, envelope: TransferEnvelope, evaluation: Evaluation, entries: Sequence[AuditEntry],
    ) -> None:
        """Keep the justification of each override among ``entries`` (see :meth:`check`)."""
        overrides = [(d.recipient, e.seq) for d, e in zip(
            evaluation.decisions.decisions, entries, strict=True)
            if d.outcome == Outcome.OVERRIDE]
        if overrides:
            record_claims(self.db, envelope, overrides)


def _released(envelope: TransferEnvelope, evaluation: Evaluation) -> dict[str, TransferEnvelope]:
    """recipient → the minimised copy it may receive (blocked recipients are absent)."""
    released: dict[str, TransferEnvelope] = {}
    for decision in evaluation.decisions.decisions:
        copy = release(envelope, decision)
        if copy is not None:
            released[decision.recipient] = copy
    return released
