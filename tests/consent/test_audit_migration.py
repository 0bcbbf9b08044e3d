"""Revision 0010: a single-chain trail becomes chain 0's legacy segment and stays verifiable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from casebridge.consent.audit import AuditDraft, AuditTrail, chain_of
from casebridge.db import Database, alembic_config, create_db_engine, migrate
from tests.consent.legacy_audit import append_legacy
from tests.consent.store_fixtures import *  # noqa: F403

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _draft(i: int, client: str) -> AuditDraft:
    return AuditDraft(at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
                      recipient="suchtberatung-diakonie-du", purpose="referral",
                      client_id=client, message_id=f"M-{i}", outcome="permit",
                      released=("identity",), consents=("cons-1",))


@pytest.fixture
def upgraded(fresh_db_url):
    """A store with five entries written at revision 0009, then upgraded to the newest."""
    engine = create_db_engine(fresh_db_url)
    migrate(engine, "0009_data_subjects")
    hashes = append_legacy(engine, [_draft(i, f"c-{i}") for i in range(5)])
    migrate(engine)
    try:
        yield Database(engine), hashes
    finally:
        engine.dispose()


def _sql(db: Database, *statements: str) -> None:
    with db.connection() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_old_entries_become_chain_zero_and_verify(upgraded) -> None:
    db, hashes = upgraded
    trail = AuditTrail(db, chains=4)
    old = list(trail.entries())
    assert [(e.seq, e.chain, e.chain_seq, e.legacy) for e in old] == [
        (i, 0, i, True) for i in range(1, 6)]
    assert [e.hash for e in old] == hashes  # nothing rehashed
    assert trail.heads() == {0: (5, hashes[-1])}
    result = trail.verify()
    assert result.ok and result.checked == 5 and result.last_seq == 5


def test_new_entries_follow_in_every_chain_including_zero(upgraded) -> None:
    db, hashes = upgraded
    trail = AuditTrail(db, chains=4)
    clients = [f"c-new-{n}" for n in range(40)]
    zero = next(c for c in clients if chain_of(_draft(0, c), 4) == 0)
    new = trail.append([_draft(100, zero)]) + trail.append([_draft(101 + n, c)
                                                            for n, c in enumerate(clients[:8])])
    assert new[0].chain == 0 and new[0].chain_seq == 6 and new[0].prev_hash == hashes[-1]
    assert not new[0].legacy and min(e.seq for e in new) == 6
    trail.checkpoint()
    result = trail.verify()
    assert result.ok and result.checked == 5 + 9 + 1 and result.checkpoints == 1
    assert result.chains == len({e.chain for e in new}) + 1


@pytest.mark.parametrize("tampering", ["legacy entry", "legacy end lowered", "legacy end raised"])
def test_tampering_with_the_legacy_segment_is_found(upgraded, tampering) -> None:
    db, _ = upgraded
    trail = AuditTrail(db, chains=1)
    trail.append([_draft(100, "c-x"), _draft(101, "c-y")])
    assert trail.verify().ok
    _sql(db, {
        "legacy entry": "UPDATE audit_entries SET recipient = 'x-y' WHERE seq = 3",
        "legacy end lowered": "UPDATE audit_head SET legacy_end = 4 WHERE id = 0",
        "legacy end raised": "UPDATE audit_head SET legacy_end = 6 WHERE id = 0",
    }[tampering])
    result = AuditTrail(Database(db.engine), chains=1).verify()
    assert not result.ok
    assert result.first_broken_seq == {"legacy entry": 3, "legacy end lowered": 5,
                                       "legacy end raised": 6}[tampering]


def test_downgrade_back_to_one_chain_only_while_nothing_new_was_written(upgraded) -> None:
    db, hashes = upgraded
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009_data_subjects")
        assert conn.execute(text("SELECT id, seq, hash FROM audit_head")).one() == (
            1, 5, hashes[-1])
    migrate(db.engine)
    AuditTrail(db, chains=2).append([_draft(100, "c-z")])
    with pytest.raises(RuntimeError, match="chained form"), db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009_data_subjects")
