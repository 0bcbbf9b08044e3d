"""Alembic revisions of routing's tables (on top of the consent store's; one linear history)."""
