"""Alembic revisions of the consent store and audit trail; later packages add theirs on top."""
