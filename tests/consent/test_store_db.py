"""The store on SQLite and PostgreSQL: migrations, recording, idempotence, withdrawal."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from casebridge.consent.store import ConsentRow, ConsentStore, WithdrawalRow, states_for_client
from casebridge.db import (
    Base,
    Database,
    create_db_engine,
    current_revisions,
    get_database,
    head_revisions,
    reset_databases,
)
from casebridge.errors import ConfigError, ConflictError, ConsentImportError, InputError, NotFound
from tests.consent.store_fixtures import *  # noqa: F403
from tests.consent.store_fixtures import KUNDENNUMMER, directive

#: Every module that declares tables on the shared metadata. The migrations must create exactly
#: what they declare; a module missing here would let its tables drift unnoticed.
MODEL_MODULES = (
    "casebridge.consent.store",
    "casebridge.consent.claims",
    "casebridge.routing.store",
    "casebridge.gateway.intake",
    "casebridge.gateway.principals",
    "casebridge.gateway.console.store",
)


def test_migrations_reach_head_and_match_all_models(any_db: Database) -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    assert current_revisions(any_db.engine) == head_revisions()
    with any_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_table_module_is_checked() -> None:
    root = Path(__file__).resolve().parents[2]
    declaring = set()
    for folder, package in (("casebridge", "casebridge"), ("consent", "casebridge.consent"),
                            ("routing", "casebridge.routing"), ("gateway", "casebridge.gateway")):
        for path in (root / folder).rglob("*.py"):
            if "(Base)" in path.read_text(encoding="utf-8"):
                rel = path.relative_to(root / folder).with_suffix("")
                declaring.add(".".join([package, *rel.parts]))
    assert declaring == set(MODEL_MODULES)


def test_get_database_creates_and_migrates_on_first_use(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'cb.db'}"
    try:
        db = get_database(url)
        assert (tmp_path / "nested" / "dir" / "cb.db").exists()
        assert current_revisions(db.engine) == head_revisions()
        assert get_database(url) is db
    finally:
        reset_databases()


def test_migrating_twice_is_harmless(any_db: Database) -> None:
    any_db.migrate()
    with any_db.connection() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert conn.execute(text("SELECT seq FROM audit_head")).scalar_one() == 0


def test_unsupported_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        create_db_engine("mysql://nobody@localhost/x")
    with pytest.raises(ConfigError):
        create_db_engine("not a url")


def test_record_is_idempotent_and_a_change_is_refused(any_db: Database) -> None:
    store = ConsentStore(any_db)
    first = store.record(directive())
    again = store.record(directive())
    assert first.created and not again.created
    assert again.client_id == first.client_id
    with pytest.raises(ConflictError, match="withdrawal plus a new consent"):
        store.record(directive(purposes=["referral", "service_delivery"]))
    with any_db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRow)) == 1


def test_withdrawal_is_a_new_row_and_cannot_happen_twice(any_db: Database) -> None:
    store = ConsentStore(any_db)
    store.record(directive())
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    store.withdraw("cons-1", at=at, by="Servicecenter")
    record = store.require("cons-1")
    assert record.withdrawal is not None and record.withdrawal.at == at
    assert record.withdrawal.by == "Servicecenter"
    assert [e["event"] for e in record.history()] == ["given", "recorded", "withdrawn"]
    # the directive itself is untouched: still "active" as given, withdrawn by a separate row
    assert str(record.directive.status) == "active"
    with pytest.raises(ConflictError):
        store.withdraw("cons-1", at=at, by="x")
    with pytest.raises(NotFound):
        store.withdraw("nope", at=at, by="x")
    with pytest.raises(InputError):
        store.withdraw("cons-1", at=datetime(2026, 11, 20, 10, 0), by="x")
    with any_db.session() as s:
        assert s.scalar(select(func.count()).select_from(WithdrawalRow)) == 1


def test_list_and_states_for_client(any_db: Database) -> None:
    store = ConsentStore(any_db)
    a = store.record(directive("cons-a"))
    store.record(directive("cons-b", identifiers=((KUNDENNUMMER, "K-1"),), purposes=["referral"]))
    store.record(directive("cons-other", identifiers=((KUNDENNUMMER, "K-2"),)))
    store.withdraw("cons-b", at=datetime(2026, 11, 21, tzinfo=UTC), by="desk")
    listed = store.list_for_client(a.client_id)
    assert sorted(r.consent_id for r in listed) == ["cons-a", "cons-b"]
    with any_db.session() as s:
        states = {st.directive.consent_id: st for st in states_for_client(s, a.client_id)}
    assert set(states) == {"cons-a", "cons-b"}
    assert states["cons-a"].withdrawn_at is None
    assert states["cons-b"].withdrawn_at == datetime(2026, 11, 21, tzinfo=UTC)


def test_import_fhir_samples(any_db: Database, sample) -> None:
    store = ConsentStore(any_db)
    self_ = store.import_fhir(sample("consent_self"), source="consent-self-001.json")
    guardian = store.import_fhir(sample("consent_guardian"), source="consent-guardian-001.json")
    assert [r.consent_id for r in self_] == ["cons-jc-2026-0815"]
    assert [r.consent_id for r in guardian] == ["cons-ja-2026-0311"]
    assert self_[0].client_id != guardian[0].client_id  # mother and son are different clients
    again = store.import_fhir(sample("consent_self"), source="again.json")
    assert not again[0].created


def test_import_refuses_the_whole_file_if_one_consent_is_invalid(any_db: Database, sample) -> None:
    import json

    good = json.loads(sample("consent_self"))
    bad = json.loads(sample("consent_guardian"))
    bad["provision"]["purpose"][0]["code"] = "marketing"
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": good}, {"resource": bad}]}
    with pytest.raises(ConsentImportError):
        ConsentStore(any_db).import_fhir(json.dumps(bundle).encode(), source="bundle.json")
    with any_db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRow)) == 0


def test_a_failing_record_in_a_batch_stores_nothing(any_db: Database) -> None:
    store = ConsentStore(any_db)
    store.record(directive("cons-x", identifiers=((KUNDENNUMMER, "K-9"),)))
    with pytest.raises(ConflictError):
        store.record_many([
            directive("cons-new"),
            directive("cons-x", identifiers=((KUNDENNUMMER, "K-9"),), purposes=["joint_planning"]),
        ])
    assert store.get("cons-new") is None
