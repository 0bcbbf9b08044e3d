"""The backup and restore procedure of docs/operations.md, run for real on PostgreSQL.

pg_dump (custom format) of a store with an audit trail, pg_restore into a new database, then
`casebridge audit verify` on the restored copy: the chain verifies and ends at the head recorded
at backup time; an entry altered after the restore is detected.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from casebridge.gateway.demo import sample_bytes

pytestmark = [pytest.mark.postgres]

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CASEBRIDGE = str(Path(sys.executable).parent / "casebridge")


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.fail("pg_dump/pg_restore are needed")
    suffix = secrets.token_hex(4)
    names = (f"cb_backup_src_{suffix}", f"cb_backup_dst_{suffix}")
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield names
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _cli(database: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    env["CASEBRIDGE_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    return subprocess.run([CASEBRIDGE, *args], env=env, input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=120)


def _audit_some_events(database: str, n: int) -> None:
    from casebridge.consent.audit import AuditTrail
    from casebridge.db import Database, create_db_engine

    db = Database(create_db_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"))
    try:
        trail = AuditTrail(db)
        for i in range(n):
            trail.append_event("dpo_review", at=datetime.now(UTC), message_id=f"BACKUP-{i}",
                               details={"note_code": "backup-test"})
    finally:
        db.dispose()


def _head(database: str) -> tuple[int, str]:
    """(entries, every chain head) as recorded by the appenders."""
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as conn:
        count = conn.execute("SELECT count(*) FROM audit_entries").fetchone()
        heads = conn.execute("SELECT id, seq, hash FROM audit_head ORDER BY id").fetchall()
    assert count is not None
    return int(count[0]), " ".join(f"{c}:{s}:{h}" for c, s, h in heads)


def test_dump_restore_and_verify_the_audit_chain(databases, tmp_path) -> None:
    source, target = databases
    for name in ("consent-fhir/consent-self-001.json", "consent-fhir/consent-guardian-001.json"):
        assert _cli(source, "consent", "import", "-", stdin=sample_bytes(name)).returncode == 0
    _audit_some_events(source, 25)
    seq, digest = _head(source)
    assert seq > 0, "the source store has no audit entries to protect"

    dump = tmp_path / "casebridge.dump"
    subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--format=custom",
                    "--no-owner", "--file", str(dump), source], check=True, timeout=120)
    subprocess.run(["pg_restore", "-h", "127.0.0.1", "-U", "postgres", "--no-owner",
                    "--exit-on-error", "--dbname", target, str(dump)], check=True, timeout=120)

    status = _cli(target, "db", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    verified = _cli(target, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"audit chain ok: {seq} entries" in verified.stdout
    assert _head(target) == (seq, digest)  # the head recorded at backup time

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={target}") as conn:
        # What a tamperer would do: change what an entry says, leave its hashes alone.
        conn.execute("UPDATE audit_entries SET recipient = 'somebody-else' WHERE seq = 1")
    broken = _cli(target, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at entry 1" in broken.stdout
