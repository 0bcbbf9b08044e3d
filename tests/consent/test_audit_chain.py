"""The hash-chained audit trail: pure hashing, tampering found, concurrent appenders."""

from __future__ import annotations

import dataclasses
import multiprocessing
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from casebridge.consent import audit as audit_module
from casebridge.consent.audit import (
    GENESIS_HASH,
    HASHED_FIELDS,
    AuditDraft,
    AuditEntry,
    AuditTrail,
    entry_hash,
    verify_chain,
)
from casebridge.db import Database, create_db_engine
from casebridge.errors import AuditError
from tests.consent.store_fixtures import *  # noqa: F403

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, params=["sequential", "parallel"])
def verify_mode(request, monkeypatch) -> str:
    """Every verification test runs once sequentially and once split over worker processes."""
    if request.param == "parallel":
        monkeypatch.setattr(audit_module, "PARALLEL_VERIFY_MIN", 1)
    return request.param


def _draft(i: int = 0, **changes) -> AuditDraft:
    base = AuditDraft(
        at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
        recipient="suchtberatung-diakonie-du", purpose="referral", client_id="c-1",
        message_id=f"M-{i}", outcome="partial", released=("contact", "identity"),
        withheld=(("case_notes", "category_not_covered"),), consents=("cons-1",),
    )
    return dataclasses.replace(base, **changes)


def _chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        fields = {name: None for name in HASHED_FIELDS} | {
            "seq": seq, "recorded_at": "2026-11-20T08:00:00.000000Z",
            "at": "2026-11-20T08:00:00.000000Z", "kind": "decision", "released": ["identity"],
            "withheld": [], "consents": [], "review_required": False, "details": {},
        }
        digest = entry_hash(fields, prev)
        entries.append(AuditEntry(**fields, prev_hash=prev, hash=digest))
        prev = digest
    return entries


# --- pure functions ---------------------------------------------------------------------------


def test_entry_hash_covers_every_field_and_the_predecessor() -> None:
    entry = _chain(1)[0]
    fields = entry.fields()
    assert entry_hash(fields, GENESIS_HASH) == entry.hash
    assert entry_hash(fields, "1" * 64) != entry.hash
    for name in HASHED_FIELDS:
        changed = dict(fields)
        changed[name] = ["x"] if isinstance(fields[name], list) else "tampered"
        assert entry_hash(changed, GENESIS_HASH) != entry.hash, name
    with pytest.raises(ValueError, match="missing"):
        entry_hash({"seq": 1}, GENESIS_HASH)


def test_verify_chain_pure() -> None:
    chain = _chain(5)
    assert verify_chain(chain, head=(5, chain[-1].hash)).ok
    altered = [*chain[:2], dataclasses.replace(chain[2], recipient="elsewhere"), *chain[3:]]
    assert verify_chain(altered).first_broken_seq == 3
    removed = chain[:2] + chain[3:]
    assert verify_chain(removed).first_broken_seq == 3
    reordered = [chain[0], chain[2], chain[1], *chain[3:]]
    assert verify_chain(reordered).first_broken_seq == 2
    cut = verify_chain(chain[:4], head=(5, chain[-1].hash))
    assert not cut.ok and cut.first_broken_seq == 5
    assert verify_chain([]).ok


# --- stored chain and tampering ---------------------------------------------------------------


@pytest.fixture
def trail(any_db: Database) -> AuditTrail:
    trail = AuditTrail(any_db)
    for i in range(5):
        trail.append([_draft(i)])
    return trail


def _sql(db: Database, *statements: str) -> None:
    with db.connection() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_append_and_verify(trail: AuditTrail) -> None:
    event = trail.append_event("forged_sender", at=AT, sender="jobcenter-duisburg",
                               details={"claimed": "sozialamt-duisburg", "status_code": 403})
    assert event.seq == 6
    result = trail.verify(batch=2)
    assert result.ok and result.checked == 6 and result.last_seq == 6
    stored = list(trail.entries())
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    assert event.prev_hash == stored[4].hash and stored[0].prev_hash == GENESIS_HASH
    assert stored[-1].details == {"claimed": "sozialamt-duisburg", "status_code": 403}
    # the fast stored-row path and the pure path agree
    assert verify_chain(stored, head=trail.head()) == result
    with pytest.raises(AuditError):
        trail.append_event("decision", at=AT)


def test_edit_is_found(trail: AuditTrail) -> None:
    _sql(trail.db, "UPDATE audit_entries SET recipient = 'jugendamt-duisburg' WHERE seq = 3")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 3 and "altered" in str(result.problem)


def test_edit_of_released_categories_is_found(trail: AuditTrail) -> None:
    _sql(trail.db, """UPDATE audit_entries SET released = '["identity"]' WHERE seq = 4""")
    assert trail.verify().first_broken_seq == 4


def test_delete_is_found(trail: AuditTrail) -> None:
    _sql(trail.db, "DELETE FROM audit_entries WHERE seq = 2")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 2


def test_delete_of_the_newest_entry_is_found(trail: AuditTrail) -> None:
    _sql(trail.db, "DELETE FROM audit_entries WHERE seq = 5")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 5 and "missing" in str(result.problem)


def test_reorder_is_found(trail: AuditTrail) -> None:
    _sql(
        trail.db,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 1000",
    )
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 2


def test_insert_at_the_end_with_a_correct_hash_is_found(trail: AuditTrail) -> None:
    last = list(trail.entries())[-1]
    forged = dataclasses.replace(last, seq=6, message_id="FORGED", prev_hash=last.hash)
    digest = entry_hash(forged.fields(), last.hash)
    _sql(trail.db, f"""
        INSERT INTO audit_entries (seq, recorded_at, at, kind, stage, sender, recipient, purpose,
            client_id, message_id, outcome, released, withheld, consents, legal_basis,
            review_required, details, prev_hash, hash)
        SELECT 6, recorded_at, at, kind, stage, sender, recipient, purpose, client_id, 'FORGED',
            outcome, released, withheld, consents, legal_basis, review_required, details,
            '{last.hash}', '{digest}'
        FROM audit_entries WHERE seq = 5""")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 6


def test_insert_in_the_middle_is_found(trail: AuditTrail) -> None:
    _sql(
        trail.db,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000",
        """INSERT INTO audit_entries (seq, recorded_at, at, kind, stage, sender, recipient,
            purpose, client_id, message_id, outcome, released, withheld, consents, legal_basis,
            review_required, details, prev_hash, hash)
           SELECT 3, recorded_at, at, kind, stage, sender, recipient, purpose, client_id, 'NEW',
            outcome, released, withheld, consents, legal_basis, review_required, details,
            prev_hash, hash FROM audit_entries WHERE seq = 2""",
    )
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 3


# --- concurrent writers -----------------------------------------------------------------------


def _append_worker(url: str, worker: int, count: int) -> None:
    db = Database(create_db_engine(url))
    trail = AuditTrail(db)
    for i in range(count):
        trail.append([_draft(i, message_id=f"W{worker}-{i}"),
                      _draft(i, message_id=f"W{worker}-{i}b")])
    db.dispose()


def test_two_processes_appending_at_once_yield_one_valid_chain(any_db, fresh_db_url) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_worker, args=(fresh_db_url, w, 40)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    trail = AuditTrail(any_db)
    result = trail.verify()
    assert result.ok, result
    assert result.checked == 3 * 40 * 2
    ids = [e.message_id for e in trail.entries()]
    assert len(set(ids)) == len(ids) == 240
    # each append's two entries are adjacent: one transaction, one lock
    for first, second in zip(ids[::2], ids[1::2], strict=True):
        assert second == f"{first}b"

