"""Alembic migrations of the casebridge store (run by :func:`casebridge.db.migrate`)."""
