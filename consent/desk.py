"""Recording and withdrawing consents with their audit events: the one path for API and CLI.

The gateway's consent desk and ``casebridge consent import|withdraw`` both come here, so a
consent recorded or withdrawn by either leaves the same audit entries: one ``consent_recorded``
per newly recorded consent (none for an identical one already on record) and one
``consent_withdrawn`` per withdrawal, naming the client, the consent and who acted; the stage
says where (``gateway`` or ``cli``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from casebridge.canonical_model import ConsentWithdrawal
from casebridge.codes import AuditKind, AuditStage
from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.consent.store import ConsentStore, RecordResult
from casebridge.db import Database


def _event(
    kind: AuditKind, at: datetime, consent_id: str, client_id: str, by: str, stage: AuditStage
) -> AuditDraft:
    return AuditDraft(
        at=at, kind=str(kind), stage=str(stage), client_id=client_id, consents=(consent_id,),
        details={"by": by},
    )


def import_consents(
    db: Database, raw: bytes, *, source: str, by: str, stage: AuditStage
) -> list[RecordResult]:
    """Import a FHIR Consent or Bundle (all or nothing) and audit each consent it recorded."""
    return _audited(db, ConsentStore(db).import_fhir(raw, source=source), by, stage)


def import_consent_files(
    db: Database, files: Sequence[tuple[str, bytes]], *, by: str, stage: AuditStage
) -> list[RecordResult]:
    """Import several files in one transaction (all or nothing) and audit each recorded one."""
    return _audited(db, ConsentStore(db).import_fhir_files(files), by, stage)


def _audited(
    db: Database, results: list[RecordResult], by: str, stage: AuditStage
) -> list[RecordResult]:
    now = datetime.now(UTC)
    created = [r for r in results if r.created]
    if created:
        AuditTrail(db).append([
            _event(AuditKind.CONSENT_RECORDED, now, r.consent_id, r.client_id, by, stage)
            for r in created
        ])
    return results


def withdraw_consent(
    db: Database, consent_id: str, *, by: str, stage: AuditStage, at: datetime | None = None,
) -> ConsentWithdrawal:
    """Withdraw a consent (NotFound if unknown, ConflictError if withdrawn) and audit it."""
    store = ConsentStore(db)
    record = store.require(consent_id)
    withdrawal = store.withdraw(consent_id, at=at, by=by)
    AuditTrail(db).append([_event(AuditKind.CONSENT_WITHDRAWN, withdrawal.at, consent_id,
                                  record.client_id, by, stage)])
    return withdrawal
