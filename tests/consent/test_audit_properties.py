"""Properties of the chained trail: any interleaving of appends over K chains verifies, and any
single changed character in any stored entry is found."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from casebridge.consent.audit import AuditDraft, AuditTrail, _encode_json, verify_chain
from casebridge.consent.store import AuditEntryRow, canonical_json  # noqa: F401 - tables
from casebridge.db import Base, Database, create_db_engine

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TEXT_COLUMNS = ("recorded_at", "at", "kind", "stage", "sender", "recipient", "purpose",
                "client_id", "message_id", "outcome", "released", "withheld", "consents",
                "legal_basis", "details", "prev_hash", "hash")
NUMBER_COLUMNS = ("seq", "chain", "chain_seq")

#: appends: each a list of client numbers (None: an event without a client)
appends = st.lists(st.lists(st.one_of(st.none(), st.integers(0, 7)), min_size=1, max_size=4),
                   min_size=1, max_size=12)


def _draft(n: int, client: int | None) -> AuditDraft:
    return AuditDraft(
        at=AT, kind="decision" if client is not None else "forged_sender", stage="inbound",
        sender="jobcenter-duisburg", recipient="suchtberatung-diakonie-du", purpose="referral",
        client_id=None if client is None else f"c-{client}", message_id=f"M-{n}",
        outcome="partial", released=("contact", "identity"),
        withheld=(("case_notes", "category_not_covered"),), consents=("cons-1",),
        legal_basis="Art. 6 (1) a", details={"n": n, "note": "ä"},
    )


def _fill(chains: int, plan: list[list[int | None]]) -> tuple[AuditTrail, str]:
    folder = tempfile.mkdtemp(prefix="cb-audit-prop-")
    db = Database(create_db_engine(f"sqlite:///{folder}/s.db"))
    Base.metadata.create_all(db.engine)  # no migrations: chain heads are made on first use
    trail = AuditTrail(db, chains=chains, checkpoint_every=5, checkpoint_seconds=3600)
    n = 0
    for clients in plan:
        drafts = []
        for client in clients:
            drafts.append(_draft(n, client))
            n += 1
        trail.append(drafts)
    return trail, folder


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains=st.integers(1, 5), plan=appends)
def test_any_interleaving_of_appends_verifies(chains: int, plan) -> None:
    trail, folder = _fill(chains, plan)
    try:
        result = trail.verify(workers=1)
        total = sum(len(c) for c in plan)
        assert result.ok, result
        assert result.checked == total + result.checkpoints
        assert verify_chain(list(trail.entries()), heads=trail.heads()) == result
        assert trail.verify(workers=3) == result
    finally:
        trail.db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains=st.integers(1, 5), plan=appends, data=st.data())
def test_any_single_changed_character_is_found(chains: int, plan, data) -> None:
    trail, folder = _fill(chains, plan)
    try:
        stored = list(trail.entries())
        victim = data.draw(st.sampled_from(stored), label="entry")
        column = data.draw(st.sampled_from(TEXT_COLUMNS + NUMBER_COLUMNS), label="column")
        value = getattr(victim, column) if column not in (
            "released", "withheld", "consents", "details") else None
        with trail.db.connection() as conn:
            if value is None:
                value = conn.execute(text(f"SELECT {column} FROM audit_entries WHERE seq = :s"),
                                     {"s": victim.seq}).scalar_one()
        if value is None:
            return  # a NULL column has no character to change
        if column in NUMBER_COLUMNS:
            changed: object = value + data.draw(st.sampled_from([-1, 1, 10]), label="delta")
        else:
            position = data.draw(st.integers(0, len(value) - 1), label="position")
            original = value[position]
            replacement = data.draw(st.sampled_from(
                [c for c in "0123456789abcdefz-:_ \"" if c != original]), label="character")
            changed = value[:position] + replacement + value[position + 1:]
        with trail.db.connection() as conn:
            clash = column == "seq" and conn.execute(
                text("SELECT count(*) FROM audit_entries WHERE seq = :v"), {"v": changed}
            ).scalar_one()
            clash = clash or (column in ("chain", "chain_seq") and conn.execute(text(
                "SELECT count(*) FROM audit_entries WHERE chain = :c AND chain_seq = :s"),
                {"c": changed if column == "chain" else victim.chain,
                 "s": changed if column == "chain_seq" else victim.chain_seq}).scalar_one())
            if clash:
                return  # the unique keys refuse it: nothing stored changed
            conn.execute(text(f"UPDATE audit_entries SET {column} = :v WHERE seq = :s"),
                         {"v": changed, "s": victim.seq})
        result = trail.verify(workers=1)
        assert not result.ok, (column, victim.seq, changed)
        assert trail.verify(workers=3).first_broken_seq == result.first_broken_seq
    finally:
        trail.db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12,
)


@given(st.one_of(st.lists(st.text(), max_size=5), st.lists(st.lists(st.text(), max_size=3)),
                 json_values))
def test_the_fast_json_encoding_is_canonical_json(value) -> None:
    assert _encode_json(value) == canonical_json(value)
