"""Group commit: concurrent appenders of one process share transactions, each answers only
after its own entries are durable, and one caller's failing ``along`` fails only that caller."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import IntegrityError

from casebridge.consent import audit as audit_module
from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.db import Database
from tests.consent.store_fixtures import *  # noqa: F403

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _draft(name: str, client: str | None = None) -> AuditDraft:
    return AuditDraft(at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
                      recipient="suchtberatung-diakonie-du", purpose="referral",
                      client_id=client or f"c-{name}", message_id=name, outcome="permit",
                      released=("identity",))


@pytest.fixture
def claims(any_db: Database) -> Database:
    """A table standing in for the gateway's idempotency claims."""
    with any_db.connection() as conn:
        conn.execute(text("CREATE TABLE test_claims (k VARCHAR(32) PRIMARY KEY)"))
    return any_db


def _claim(key: str):
    def along(conn: Connection) -> None:
        conn.execute(text("INSERT INTO test_claims (k) VALUES (:k)"), {"k": key})
    return along


def _wait_queued(db: Database, n: int) -> None:
    committer = audit_module._committer(db)
    deadline = time.monotonic() + 20
    while len(committer.queue) < n:
        assert time.monotonic() < deadline, "appenders did not queue"
        time.sleep(0.005)


@pytest.mark.parametrize("chains", [1, 4])
def test_queued_appenders_commit_together_and_a_failing_along_fails_only_its_caller(
    claims: Database, chains: int
) -> None:
    trail = AuditTrail(claims, chains=chains)
    trail.append([_draft("first")], along=_claim("taken"))
    release = threading.Event()
    results: dict[str, object] = {}

    def blocking(conn: Connection) -> None:
        release.wait(20)  # the leader is busy: the others queue behind it
        _claim("leader")(conn)

    def run(name: str, along) -> None:
        try:
            results[name] = trail.append([_draft(name), _draft(name + "-2")], along=along)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            results[name] = exc

    leader = threading.Thread(target=run, args=("leader", blocking))
    leader.start()
    _wait_queued_leader(claims)
    followers = [
        threading.Thread(target=run, args=("dup", _claim("taken"))),  # a duplicate claim
        threading.Thread(target=run, args=("fresh", _claim("fresh"))),
        threading.Thread(target=run, args=("plain", None)),
    ]
    for t in followers:
        t.start()
    _wait_queued(claims, 3)
    release.set()
    for t in (leader, *followers):
        t.join(30)
    assert isinstance(results["dup"], IntegrityError)
    for name in ("leader", "fresh", "plain"):
        assert [e.message_id for e in results[name]] == [name, name + "-2"]
    # the three queued callers went in one transaction (one recorded_at), the leader before
    group = {e.recorded_at for name in ("fresh", "plain") for e in results[name]}
    assert len(group) == 1 and group != {e.recorded_at for e in results["leader"]}
    stored = [e.message_id for e in trail.entries()]
    assert "dup" not in stored and len(stored) == 7
    with claims.connection() as conn:
        keys = set(conn.execute(text("SELECT k FROM test_claims")).scalars())
    assert keys == {"taken", "leader", "fresh"}  # the duplicate's savepoint was rolled back
    assert trail.verify().ok


def _wait_queued_leader(db: Database) -> None:
    committer = audit_module._committer(db)
    deadline = time.monotonic() + 20
    while not committer.leading:
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_many_threads_share_few_transactions(any_db: Database) -> None:
    trail = AuditTrail(any_db, chains=4)
    commits = []
    event.listen(any_db.engine, "commit", lambda conn: commits.append(1))
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(25):
                [entry] = trail.append([_draft(f"T{w}-{i}", client=f"c-{w}")])
                assert entry.message_id == f"T{w}-{i}"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    stored = list(trail.entries())
    assert len(stored) == 200
    for w in range(8):  # each thread's entries in its order, in its client's chain
        mine = [e for e in stored if e.client_id == f"c-{w}"]
        assert [e.message_id for e in mine] == [f"T{w}-{i}" for i in range(25)]
        assert [e.chain_seq for e in mine] == sorted(e.chain_seq for e in mine)
    assert trail.verify().ok
    # grouping happened: fewer commits than appends (ensure_heads adds at most a few)
    assert len(commits) < 200


def test_a_failing_commit_fails_every_caller_of_the_group_and_the_next_group_works(
    any_db: Database, monkeypatch
) -> None:
    trail = AuditTrail(any_db, chains=2)
    real = audit_module.write_entries
    calls = []

    def failing(conn, drafts, recorded_at):
        calls.append(len(drafts))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(conn, drafts, recorded_at)

    monkeypatch.setattr(audit_module, "write_entries", failing)
    with pytest.raises(RuntimeError, match="went away"):
        trail.append([_draft("lost")])
    assert [e.message_id for e in trail.append([_draft("kept")])] == ["kept"]
    assert [e.message_id for e in trail.entries()] == ["kept"]
    assert trail.verify().ok
