"""Alembic environment: runs on the connection :func:`casebridge.db.migrate` hands over.

There is no alembic.ini and no URL here: casebridge builds the Config in code and passes an open
connection (already in a transaction, holding the migration lock), so migrations run the same way
from a source checkout and from an installed wheel.
"""

from __future__ import annotations

from alembic import context

from casebridge.db import Base, create_db_engine
from casebridge.settings import get_settings


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # `alembic` run by hand (e.g. `alembic revision --autogenerate` during development).
    engine = create_db_engine(get_settings().effective_database_url)
    with engine.begin() as conn:
        _run(conn)
