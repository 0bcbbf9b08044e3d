"""Database fixtures for the store, registry, audit, gate and CLI tests (both backends).

SQLite tests use a file in ``tmp_path``; PostgreSQL tests (marked ``postgres``) use the real
server with a schema of their own (``cbt_<random>``) that is dropped afterwards, so parallel runs
never collide. Import the fixtures into a test module with
``from tests.consent.store_fixtures import *``.
"""

from __future__ import annotations

import importlib.resources
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from casebridge.canonical_model import ConsentDirective, TransferEnvelope
from casebridge.db import Database, create_db_engine, reset_databases
from casebridge.settings import get_settings

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

__all__ = [
    "PG_SERVER", "any_db", "cli_env", "directive", "example_envelope", "fresh_db_url",
    "pg_schema_url", "sqlite_url",
]
KUNDENNUMMER = "urn:casebridge:id:jobcenter-duisburg:kundennummer"
AKTENZEICHEN = "urn:casebridge:id:sozialamt-duisburg:aktenzeichen"


def directive(consent_id: str = "cons-1", *, identifiers=((KUNDENNUMMER, "K-1"),), **changes):
    """A valid self-given consent directive: job centre → addiction counselling, referral."""
    data = {
        "consent_id": consent_id,
        "status": "active",
        "client_identifiers": [{"system": s, "value": v} for s, v in identifiers],
        "client_name": {"family": "Yılmaz", "given": ["Ayşe"]},
        "client_birth_date": date(1988, 4, 12),
        "grantor": {"relation": "self"},
        "recorded_by": "jobcenter-duisburg",
        "given_at": datetime(2026, 11, 5, 9, 20, tzinfo=UTC),
        "form": "written",
        "evidence": {"title": "Einwilligung, Blatt 17", "content_type": "application/pdf"},
        "disclosers": ["jobcenter-duisburg"],
        "recipients": ["suchtberatung-diakonie-du"],
        "purposes": ["referral"],
        "categories": ["identity", "contact", "addiction", "support_plan"],
    }
    data.update(changes)
    return ConsentDirective.model_validate(data, strict=False)


def example_envelope(**changes) -> TransferEnvelope:
    """The canonical example referral (identity carries Kundennummer 962D123456)."""
    raw = (
        importlib.resources.files("casebridge.canonical_model")
        .joinpath("examples/referral-envelope.json")
        .read_bytes()
    )
    envelope = TransferEnvelope.model_validate_json(raw)
    return envelope.model_copy(update=changes) if changes else envelope


def pg_schema_url() -> Iterator[str]:
    """Create a private schema and yield a URL whose search_path points at it; drop it after."""
    schema = f"cbt_{secrets.token_hex(6)}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options={quote(f'-csearch_path={schema}')}"
    finally:
        reset_databases()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A SQLite database file of this test."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db_url(request, tmp_path) -> Iterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from pg_schema_url()


@pytest.fixture
def any_db(fresh_db_url) -> Iterator[Database]:
    """A migrated :class:`Database` on each backend."""
    db = Database(create_db_engine(fresh_db_url))
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def cli_env(tmp_path, monkeypatch) -> Iterator[str]:
    """Point the CLI at a fresh SQLite store in ``tmp_path``; yields the URL."""
    url = f"sqlite:///{tmp_path / 'cli' / 'casebridge.db'}"
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    reset_databases()
    yield url
    reset_databases()
    get_settings.cache_clear()
