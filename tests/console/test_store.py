"""The console's tables and the statutory claims: migrated as modelled; justifications kept."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from casebridge.consent.claims import claims_for, justification_digest
from casebridge.db import Base, get_database
from casebridge.gateway.console import store  # noqa: F401 - registers the console tables
from tests.console.seed import JUSTIFICATION, Seeded

OURS = {"console_sessions", "console_review_claims", "statutory_claims"}


def _ours_reflected(name, type_, parent_names) -> bool:
    # include_name filters what is reflected from the database ...
    if type_ == "schema":
        return True
    return (name if type_ == "table" else parent_names.get("table_name")) in OURS


def _ours_modelled(obj, name, type_, reflected, compare_to) -> bool:
    # ... include_object what the models declare (other packages' tables are theirs to check)
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in OURS


def test_migration_matches_the_models(seeded: Seeded) -> None:
    db = get_database(seeded.database_url)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": _ours_reflected, "include_object": _ours_modelled,
                        "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_gate_kept_the_justification_of_each_override(seeded: Seeded) -> None:
    claims = claims_for(get_database(seeded.database_url), [15, 16, 1])
    assert sorted(claims) == [15, 16]
    for claim in claims.values():
        assert claim.justification == JUSTIFICATION
        assert claim.justification_sha256 == justification_digest(JUSTIFICATION)
        assert (claim.sender, claim.recipient, claim.legal_basis) == (
            "jobcenter-duisburg", "jugendamt-duisburg", "kkg-4")
