"""Every stored code fits its column: each word of each vocabulary is stored in PostgreSQL.

PostgreSQL enforces ``varchar(n)`` (SQLite does not), so these run on the real server: a code
column too narrow for one word of its vocabulary (``retries_exhausted`` in a ``varchar(16)``)
killed workers in production. The vocabularies come from the columns themselves
(:func:`casebridge.db.code_column`), so a new word or a new code column is covered without
touching this file; a code-like column declared without its vocabulary fails here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import String, text

from casebridge.canonical_model import Outcome, WithholdReason
from casebridge.codes import AuditKind, AuditStage, DeadReason, ReplayResult, code_width
from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.db import Base, Database, create_db_engine, migrate
from tests.consent.legacy_audit import append_legacy
from tests.consent.store_fixtures import pg_schema_url
from tests.consent.test_store_db import MODEL_MODULES

#: Column names that always hold a code of a closed vocabulary.
CODE_NAMES = frozenset({
    "kind", "role", "state", "status", "outcome", "reason", "effect", "stage", "purpose",
    "message_type", "system",
})
#: Code-named columns that hold something else on purpose: an identifier system is a URI, and
#: adapter systems are an open set (plugins register them by entry point).
NOT_CODES = frozenset({("client_identifiers", "system"), ("data_subject_identifiers", "system"),
                       ("gateway_inbound", "system")})


def _code_columns() -> list[tuple[str, str, int, frozenset[str]]]:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return [
        (table.name, column.name, int(column.type.length), column.info["vocabulary"])
        for table in Base.metadata.sorted_tables for column in table.columns
        if "vocabulary" in column.info
    ]


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_schema_url()


def test_every_code_named_column_declares_its_vocabulary() -> None:
    declared = {(t, c) for t, c, _, _ in _code_columns()}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.name in CODE_NAMES and (table.name, column.name) not in NOT_CODES:
                assert isinstance(column.type, String)
                assert (table.name, column.name) in declared, (
                    f"{table.name}.{column.name} is a code column without a vocabulary: "
                    "declare it with casebridge.db.code_column")


def test_each_vocabulary_fits_its_width_with_room() -> None:
    for table, column, width, words in _code_columns():
        assert words, f"{table}.{column} has an empty vocabulary"
        longest = max(words, key=len)
        assert len(longest) + 4 <= width, f"{table}.{column}: '{longest}' in varchar({width})"


def test_audit_outcome_holds_every_routing_reason_and_result() -> None:
    words = {c: w for t, c, _, w in _code_columns() if t == "audit_entries"}
    assert set(DeadReason) | set(ReplayResult) | set(Outcome) <= words["outcome"]
    assert set(AuditKind) <= words["kind"] and set(AuditStage) <= words["stage"]
    reasons = next(w for t, c, _, w in _code_columns() if (t, c) == (
        "routing_deliveries", "reason"))
    assert set(DeadReason) | set(WithholdReason) <= reasons


def test_width_rule() -> None:
    assert code_width(["retries_exhausted"]) == 32
    assert code_width(["ok"]) == 16
    assert code_width(["x" * 28]) == 32 and code_width(["x" * 29]) == 48
    assert code_width(["ok"], minimum=64) == 64


@pytest.mark.postgres
def test_every_word_round_trips_through_postgresql(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    try:
        Database(engine).migrate()
        with engine.begin() as conn:
            for n, (table, column, width, words) in enumerate(_code_columns()):
                # a column of the migrated type (varchar(n) as the migrations made it)
                conn.execute(text(
                    f'CREATE TEMP TABLE code_{n} AS SELECT "{column}" AS v FROM "{table}" '
                    "WITH NO DATA"))
                made = conn.execute(text(
                    "SELECT character_maximum_length FROM information_schema.columns "
                    "WHERE table_name = :t AND column_name = :c AND table_schema = "
                    "current_schema()"), {"t": table, "c": column}).scalar_one()
                assert made == width, f"{table}.{column}: migrated {made}, declared {width}"
                for word in sorted(words):
                    conn.execute(text(f"INSERT INTO code_{n} (v) VALUES (:w)"), {"w": word})
                stored = set(conn.execute(text(f"SELECT v FROM code_{n}")).scalars())
                assert stored == set(words), f"{table}.{column}"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_upgrade_from_previous_revision_keeps_the_chain_and_widens(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    try:
        migrate(engine, "0005_dpo_console")
        db = Database(engine)
        trail = AuditTrail(db)
        at = datetime(2026, 12, 1, tzinfo=UTC)
        # entries as the single-chain appender of that time wrote them
        append_legacy(engine, [AuditDraft(at=at, kind="decision", stage="inbound",
                                          outcome="permit")])
        with pytest.raises(Exception, match="too long"):
            append_legacy(engine, [AuditDraft(at=at, kind="dead_letter", stage="delivery",
                                              outcome=str(DeadReason.RETRIES_EXHAUSTED))])
        migrate(engine)
        for reason in DeadReason:
            trail.append([AuditDraft(at=at, kind="dead_letter", stage="delivery",
                                     outcome=str(reason))])
        result = trail.verify()
        assert result.ok and result.checked == 1 + len(DeadReason)
        with engine.connect() as conn:
            assert conn.scalar(text(
                "SELECT character_maximum_length FROM information_schema.columns WHERE "
                "table_name = 'audit_entries' AND column_name = 'outcome' AND "
                "table_schema = current_schema()")) == 32
    finally:
        engine.dispose()
