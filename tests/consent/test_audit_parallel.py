"""Verification split over worker processes reports exactly what one sequential pass does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.db import Database
from tests.consent.store_fixtures import *  # noqa: F403

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _draft(i: int) -> AuditDraft:
    return AuditDraft(
        at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
        recipient="suchtberatung-diakonie-du", purpose="referral", client_id="c-1",
        message_id=f"M-{i}", outcome="permit", released=("identity",), withheld=(),
        consents=("cons-1",),
    )


def _sql(db: Database, *statements: str) -> None:
    with db.connection() as conn:
        for statement in statements:
            conn.execute(text(statement))




SEAM_TAMPERING = {
    "edit first of second range": ["UPDATE audit_entries SET recipient = 'x-y' WHERE seq = 22"],
    "edit last of first range": ["UPDATE audit_entries SET recipient = 'x-y' WHERE seq = 21"],
    "delete first of second range": ["DELETE FROM audit_entries WHERE seq = 22"],
    "delete last of first range": ["DELETE FROM audit_entries WHERE seq = 21"],
    "swap across the seam": [
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 21",
        "UPDATE audit_entries SET seq = 21 WHERE seq = 22",
        "UPDATE audit_entries SET seq = 22 WHERE seq = 1000",
    ],
    "delete the last entry": ["DELETE FROM audit_entries WHERE seq = 41"],
    "untouched": [],
}


@pytest.mark.parametrize("tampering", sorted(SEAM_TAMPERING))
def test_parallel_and_sequential_verification_agree(any_db, tampering) -> None:
    trail = AuditTrail(any_db)
    for i in range(41):
        trail.append([_draft(i)])
    _sql(any_db, *SEAM_TAMPERING[tampering])
    sequential = trail.verify(workers=1)
    parallel = trail.verify(workers=2)
    assert (parallel.ok, parallel.first_broken_seq) == (
        sequential.ok, sequential.first_broken_seq)
    assert parallel.ok == (tampering == "untouched")
