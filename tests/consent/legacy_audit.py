"""Write audit entries as casebridge did before revision 0010 (one chain, head row 1, no chain
columns), for tests of the upgrade: the code of that time is gone, its stored form is not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from casebridge.consent import audit
from casebridge.consent.audit import LEGACY_HASHED_FIELDS, AuditDraft, entry_hash
from casebridge.db import utc_text

_COLUMNS = (*LEGACY_HASHED_FIELDS, "prev_hash", "hash")
_INSERT = text(
    f"INSERT INTO audit_entries ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _COLUMNS)})"
)


def append_legacy(engine: Engine, drafts: Sequence[AuditDraft]) -> list[str]:
    """Append ``drafts`` to a pre-0010 store as its appender did; returns their hashes."""
    recorded_at = utc_text(datetime.now(UTC))
    hashes = []
    with engine.begin() as conn:
        seq, prev = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        for draft in drafts:
            seq += 1
            fields = audit._fields_of(draft, seq, 0, seq, recorded_at)
            legacy = {k: v for k, v in fields.items() if k in LEGACY_HASHED_FIELDS}
            digest = entry_hash(legacy, prev, legacy=True)
            row = {k: v for k, v in audit._encode_row(fields, prev, digest).items()
                   if k in _COLUMNS}
            conn.execute(_INSERT, row)
            prev = digest
            hashes.append(digest)
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                     {"s": seq, "h": prev})
    return hashes
