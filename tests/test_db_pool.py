"""The PostgreSQL pool after a database restart: no request pays for a stale connection.

Stops and starts a private PostgreSQL cluster (port 5437) that the test starts itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from casebridge import db as db_module
from tests.private_pg import PrivatePostgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(5437)
    try:
        yield server
    finally:
        server.close()


def _fill_pool(engine, n: int = 3) -> None:  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(engine.connect()).execute(text("SELECT 1"))


def test_connections_of_a_restarted_server_are_replaced_at_checkout_however_recent(
    pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only the hang-up check may save these connections: none has been idle long enough to ping
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
    engine = db_module.create_db_engine(pg.url)
    try:
        _fill_pool(engine)
        pg.stop()
        pg.start()
        for _ in range(3):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_without_the_hang_up_check_the_first_statement_fails(
    pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the case above is real (a recent, stale connection fails its statement)."""
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
    monkeypatch.setattr(db_module, "_server_hung_up", lambda _c: False)
    engine = db_module.create_db_engine(pg.url)
    try:
        _fill_pool(engine)
        pg.stop()
        pg.start()
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_a_healthy_idle_connection_is_kept(pg: PrivatePostgres) -> None:
    engine = db_module.create_db_engine(pg.url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        for _ in range(5):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
    finally:
        engine.dispose()
