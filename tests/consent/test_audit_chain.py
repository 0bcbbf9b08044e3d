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
    chain_of,
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


@pytest.fixture(params=[1, 4], ids=["one-chain", "four-chains"])
def chains(request) -> int:
    """Every stored-trail test runs with one chain and with entries spread over four."""
    return request.param


def _clients(chains: int) -> tuple[str, str]:
    """Two client ids whose entries go to different chains (when there is more than one)."""
    first = "c-1"
    for n in range(2, 100):
        other = f"c-{n}"
        if chains == 1 or chain_of(_draft(client_id=other), chains) != chain_of(
                _draft(client_id=first), chains):
            return first, other
    raise AssertionError("no two clients in different chains")


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
            "seq": seq, "chain": 0, "chain_seq": seq, "recorded_at": "2026-11-20T08:00:00.000000Z",
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


#: Which of the two clients entries 1..5 are about: chain A holds 1 and 4, chain B 2, 3 and 5.
LAYOUT = (0, 1, 1, 0, 1)


@pytest.fixture
def trail(any_db: Database, chains: int) -> AuditTrail:
    trail = AuditTrail(any_db, chains=chains)
    clients = _clients(chains)
    for i, who in enumerate(LAYOUT):
        trail.append([_draft(i, client_id=clients[who])])
    return trail


def _entry(trail: AuditTrail, seq: int) -> AuditEntry:
    [found] = [e for e in trail.entries() if e.seq == seq]
    return found


def _broken_at(trail: AuditTrail, result, seq: int) -> None:
    """Broken at ``seq`` exactly with one chain; with several, in the right chain, at or before
    ``seq`` (a missing entry is reported one past the last intact entry of its chain)."""
    assert not result.ok
    if trail.chains == 1:
        assert result.first_broken_seq == seq, result
    else:
        assert result.chain == chain_of(_draft(client_id=_entry_client(seq, trail)),
                                        trail.chains), result
        assert result.first_broken_seq <= seq, result


def _entry_client(seq: int, trail: AuditTrail) -> str:
    return _clients(trail.chains)[LAYOUT[seq - 1]]


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
    before = [e for e in stored[:5] if e.chain == event.chain]  # all of them with one chain
    assert event.prev_hash == (before[-1].hash if before else GENESIS_HASH)
    assert stored[0].prev_hash == GENESIS_HASH
    assert stored[-1].details == {"claimed": "sozialamt-duisburg", "status_code": 403}
    # the fast stored-row path and the pure path agree
    assert verify_chain(stored, heads=trail.heads()) == result
    if trail.chains == 1:
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
    _broken_at(trail, trail.verify(), 2)


def test_delete_of_the_newest_entry_is_found(trail: AuditTrail) -> None:
    _sql(trail.db, "DELETE FROM audit_entries WHERE seq = 5")
    result = trail.verify()
    _broken_at(trail, result, 5)
    assert "missing" in str(result.problem)


def test_reorder_is_found(trail: AuditTrail) -> None:
    _sql(
        trail.db,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 1000",
    )
    result = trail.verify()
    # seq is hashed: whichever of the two is met first in its chain is found altered
    assert not result.ok and result.first_broken_seq in (2, 3)


def test_reorder_within_a_chain_is_found(trail: AuditTrail) -> None:
    # entries 2 and 3 are in one chain (the same client): swap their places in it
    second, third = _entry(trail, 2), _entry(trail, 3)
    assert second.chain == third.chain
    _sql(
        trail.db,
        "UPDATE audit_entries SET chain_seq = 1000 WHERE seq = 2",
        f"UPDATE audit_entries SET chain_seq = {second.chain_seq} WHERE seq = 3",
        f"UPDATE audit_entries SET chain_seq = {third.chain_seq} WHERE seq = 2",
    )
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 3 and result.chain == second.chain


def test_insert_at_the_end_with_a_correct_hash_is_found(trail: AuditTrail) -> None:
    last = _entry(trail, 5)
    forged = dataclasses.replace(last, seq=6, chain_seq=last.chain_seq + 1,
                                 message_id="FORGED", prev_hash=last.hash)
    digest = entry_hash(forged.fields(), last.hash)
    _sql(trail.db, f"""
        INSERT INTO audit_entries (seq, chain, chain_seq, recorded_at, at, kind, stage, sender,
            recipient, purpose, client_id, message_id, outcome, released, withheld, consents,
            legal_basis, review_required, details, prev_hash, hash)
        SELECT 6, chain, chain_seq + 1, recorded_at, at, kind, stage, sender, recipient,
            purpose, client_id, 'FORGED', outcome, released, withheld, consents, legal_basis,
            review_required, details, '{last.hash}', '{digest}'
        FROM audit_entries WHERE seq = 5""")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 6


def test_insert_in_the_middle_is_found(trail: AuditTrail) -> None:
    second = _entry(trail, 2)
    _sql(
        trail.db,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000",
        f"""UPDATE audit_entries SET chain_seq = chain_seq + 1000
            WHERE chain = {second.chain} AND chain_seq > {second.chain_seq}""",
        f"""UPDATE audit_entries SET chain_seq = chain_seq - 999
            WHERE chain = {second.chain} AND chain_seq >= 1000""",
        """INSERT INTO audit_entries (seq, chain, chain_seq, recorded_at, at, kind, stage,
            sender, recipient, purpose, client_id, message_id, outcome, released, withheld,
            consents, legal_basis, review_required, details, prev_hash, hash)
           SELECT 3, chain, chain_seq + 1, recorded_at, at, kind, stage, sender, recipient,
            purpose, client_id, 'NEW', outcome, released, withheld, consents, legal_basis,
            review_required, details, prev_hash, hash FROM audit_entries WHERE seq = 2""",
    )
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 3


# --- chains and checkpoints -------------------------------------------------------------------


def test_entries_of_one_client_share_a_chain_and_others_spread(trail: AuditTrail) -> None:
    stored = list(trail.entries())
    by_client: dict[str | None, set[int]] = {}
    for e in stored:
        by_client.setdefault(e.client_id, set()).add(e.chain)
    assert all(len(c) == 1 for c in by_client.values())
    assert len({e.chain for e in stored}) == min(trail.chains, 2)
    # within a chain, places and global numbers grow together
    for chain in {e.chain for e in stored}:
        mine = [e for e in stored if e.chain == chain]
        assert [e.chain_seq for e in mine] == list(range(1, len(mine) + 1))


def test_a_tail_cut_off_together_with_its_head_is_found_by_a_checkpoint(
    trail: AuditTrail,
) -> None:
    checkpoint = trail.checkpoint()
    assert checkpoint.kind == "checkpoint" and checkpoint.chain == -1
    assert trail.verify().ok and trail.verify().checkpoints == 1
    fifth = _entry(trail, 5)
    [before] = [e for e in trail.entries()
                if (e.chain, e.chain_seq) == (fifth.chain, fifth.chain_seq - 1)]
    # what a careful tamperer does: remove the newest entry and rewind the head to match
    _sql(trail.db, "DELETE FROM audit_entries WHERE seq = 5",
         f"UPDATE audit_head SET seq = {before.chain_seq}, hash = '{before.hash}' "
         f"WHERE id = {fifth.chain}")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == checkpoint.seq
    assert result.chain == fifth.chain and "checkpoint" in str(result.problem)


def test_an_altered_checkpoint_is_found(trail: AuditTrail) -> None:
    checkpoint = trail.checkpoint()
    trail.append([_draft(9, client_id="c-1")])
    first = _entry(trail, 1)
    heads = f'{{"heads":[[{first.chain},0,"{GENESIS_HASH}"]]}}'
    _sql(trail.db, f"UPDATE audit_entries SET details = '{heads}' WHERE seq = {checkpoint.seq}")
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == checkpoint.seq


def test_swapped_chains_are_found(trail: AuditTrail) -> None:
    a, b = _entry(trail, 1).chain, _entry(trail, 2).chain
    if a == b:  # one chain: move it to another number instead
        b = 7
    _sql(
        trail.db,
        f"UPDATE audit_entries SET chain = 1000 WHERE chain = {a}",
        f"UPDATE audit_entries SET chain = {a} WHERE chain = {b}",
        f"UPDATE audit_entries SET chain = {b} WHERE chain = 1000",
        f"UPDATE audit_head SET id = 1000 WHERE id = {a}",
        f"UPDATE audit_head SET id = {a} WHERE id = {b}",
        f"UPDATE audit_head SET id = {b} WHERE id = 1000",
    )
    result = trail.verify()
    assert not result.ok and result.first_broken_seq == 1


def test_a_removed_chain_head_is_found(trail: AuditTrail) -> None:
    second = _entry(trail, 2)
    _sql(trail.db, f"DELETE FROM audit_head WHERE id = {second.chain}")
    result = trail.verify()
    assert not result.ok and result.chain == second.chain
    assert result.first_broken_seq == (1 if trail.chains == 1 else 2)
    with pytest.raises(AuditError, match="missing"):
        AuditTrail(Database(trail.db.engine), chains=trail.chains).append(
            [_draft(7, client_id=second.client_id)])


def test_a_removed_chain_is_found_by_a_checkpoint(trail: AuditTrail) -> None:
    trail.checkpoint()
    second = _entry(trail, 2)
    _sql(trail.db, f"DELETE FROM audit_entries WHERE chain = {second.chain}",
         f"DELETE FROM audit_head WHERE id = {second.chain}")
    result = trail.verify()
    assert not result.ok and result.chain == second.chain


def test_checkpoints_are_written_every_n_entries(any_db: Database, chains: int) -> None:
    trail = AuditTrail(any_db, chains=chains, checkpoint_every=4, checkpoint_seconds=3600)
    for i in range(9):
        trail.append([_draft(i, client_id=f"c-{i}")])
    kinds = [e.kind for e in trail.entries()]
    assert kinds.count("checkpoint") == 2
    result = trail.verify()
    assert result.ok and result.checkpoints == 2 and result.checked == 11


# --- concurrent writers -----------------------------------------------------------------------


def _append_worker(url: str, worker: int, count: int, chains: int) -> None:
    db = Database(create_db_engine(url))
    trail = AuditTrail(db, chains=chains)
    for i in range(count):
        trail.append([_draft(i, message_id=f"W{worker}-{i}", client_id=f"c-{worker}-{i % 5}"),
                      _draft(i, message_id=f"W{worker}-{i}b", client_id=f"c-{worker}-{i % 5}")])
    db.dispose()


def test_three_processes_appending_at_once_yield_valid_chains(
    any_db, fresh_db_url, chains
) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_worker, args=(fresh_db_url, w, 40, chains))
               for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    trail = AuditTrail(any_db, chains=chains)
    result = trail.verify()
    assert result.ok, result
    assert result.checked == 3 * 40 * 2
    stored = list(trail.entries())
    ids = [e.message_id for e in stored]
    assert len(set(ids)) == len(ids) == 240
    # each append's two entries are adjacent in their chain: one transaction, one head lock
    place = {e.message_id: (e.chain, e.chain_seq, e.recorded_at) for e in stored}
    for mid in ids:
        if not mid.endswith("b"):
            chain, chain_seq, recorded_at = place[mid]
            assert place[f"{mid}b"] == (chain, chain_seq + 1, recorded_at)
    # a client's entries come in the order they were appended
    for w in range(3):
        mine = [e.message_id for e in stored if e.client_id == f"c-{w}-0"]
        assert mine == [m for i in range(0, 40, 5) for m in (f"W{w}-{i}", f"W{w}-{i}b")]
