"""Consent gate look-up + decide latency at growing store sizes; audit append and verify rates.

For each backend (a SQLite file; PostgreSQL in a schema of its own, dropped afterwards) the store
is bulk-loaded to 10^3, 10^5 and 10^6 consents (quick: 10^3 and 10^4), two per client, and a
5-part envelope is decided for randomly chosen clients: registry resolution, the consent
look-up and the engine's ``decide`` (``ConsentGate.evaluate``, no audit). The baseline of every
latency row is the 10^3 run of the same backend, so the ratio shows how look-ups scale.

Audit: single-entry appends with durable commits (SQLite WAL + synchronous=FULL; PostgreSQL
default fsync) against plain one-row insert commits on the same database, and ``verify`` over a
chain of 10^5 entries (quick: 2·10^4) against the raw rate of fetching the same rows.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from bench.common import Row, percentiles
from casebridge.canonical_model import CLIENT_ID_SYSTEM, ConsentDirective, Identifier
from casebridge.consent.audit import AuditDraft, AuditTrail
from casebridge.consent.gate import ConsentGate
from casebridge.consent.store import canonical_json
from casebridge.db import Database, create_db_engine, utc_text

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KUNDENNUMMER = "urn:casebridge:id:jobcenter-duisburg:kundennummer"
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_EXAMPLE = (
    Path(__file__).resolve().parent.parent / "canonical_model/examples/referral-envelope.json"
)


def _template(consent_id: str, number: str, recipient: str) -> dict[str, Any]:
    return ConsentDirective.model_validate({
        "consent_id": consent_id, "status": "active",
        "client_identifiers": [{"system": KUNDENNUMMER, "value": number}],
        "client_birth_date": date(1988, 4, 12), "grantor": {"relation": "self"},
        "recorded_by": "jobcenter-duisburg", "given_at": datetime(2026, 11, 5, tzinfo=UTC),
        "form": "written", "evidence": {"title": "Blatt 1", "content_type": "application/pdf"},
        "disclosers": ["jobcenter-duisburg"], "recipients": [recipient],
        "purposes": ["referral"],
        "categories": ["identity", "contact", "addiction", "support_plan"],
    }, strict=False).model_dump(mode="json")


_COVERING = _template("x", "x", "suchtberatung-diakonie-du")
_OTHER = _template("x", "x", "sozialamt-duisburg")


def _rows(first_client: int, clients: int) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(client row, identifier rows, consent rows) per client, two consents each."""
    now = utc_text(datetime.now(UTC))
    given = utc_text(datetime(2026, 11, 5, tzinfo=UTC))
    for n in range(first_client, first_client + clients):
        cid, number = f"c-{n:016x}", f"K{n:09d}"
        consents = []
        for k, template in enumerate((_COVERING, _OTHER)):
            doc = dict(template)
            doc["consent_id"] = f"b-{n}-{k}"
            doc["client_identifiers"] = [{"system": KUNDENNUMMER, "value": number}]
            body = canonical_json(doc)
            consents.append((doc["consent_id"], cid, "active", given, given, None, now,
                             hashlib.sha256(body.encode()).hexdigest(), body, "bench"))
        yield (
            (cid, "1988-04-12", now),
            ((cid, CLIENT_ID_SYSTEM, cid, now, "bench"), (cid, KUNDENNUMMER, number, now, "bench")),
            tuple(consents),
        )


_INSERTS = {
    "clients": "INSERT INTO clients (client_id, birth_date, created_at) VALUES (?, ?, ?)",
    "client_identifiers": "INSERT INTO client_identifiers (client_id, system, value, linked_at, "
                          "linked_by) VALUES (?, ?, ?, ?, ?)",
    "consents": "INSERT INTO consents (consent_id, client_id, status, given_at, valid_from, "
                "valid_until, recorded_at, content_hash, directive_json, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}
_COPY = {
    "clients": "COPY clients (client_id, birth_date, created_at) FROM STDIN",
    "client_identifiers": "COPY client_identifiers (client_id, system, value, linked_at, "
                          "linked_by) FROM STDIN",
    "consents": "COPY consents (consent_id, client_id, status, given_at, valid_from, valid_until, "
                "recorded_at, content_hash, directive_json, source) FROM STDIN",
}


def bulk_load(db: Database, first_client: int, clients: int) -> None:
    """Add ``clients`` clients with two consents each (executemany on SQLite, COPY on PG)."""
    chunk = 20_000
    for start in range(first_client, first_client + clients, chunk):
        size = min(chunk, first_client + clients - start)
        batch = {"clients": [], "client_identifiers": [], "consents": []}  # type: ignore[var-annotated]
        for client, idents, consents in _rows(start, size):
            batch["clients"].append(client)
            batch["client_identifiers"].extend(idents)
            batch["consents"].extend(consents)
        with db.engine.begin() as conn:
            raw = conn.connection.driver_connection
            for table in ("clients", "client_identifiers", "consents"):
                if db.dialect == "postgresql":
                    with raw.cursor() as cur, cur.copy(_COPY[table]) as copy:  # type: ignore[union-attr]
                        for row in batch[table]:
                            copy.write_row(row)
                else:
                    raw.executemany(_INSERTS[table], batch[table])  # type: ignore[union-attr]
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


@contextmanager
def backend(name: str) -> Iterator[Database]:
    """A migrated, empty database of the named backend, removed afterwards."""
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(create_db_engine(f"sqlite:///{tmp}/bench.db"))
            db.migrate()
            try:
                yield db
            finally:
                db.dispose()
        return
    schema = f"cbbench_{secrets.token_hex(4)}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(create_db_engine(f"{PG_SERVER}?options={quote(f'-csearch_path={schema}')}"))
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _envelopes(clients: int, count: int) -> list[Any]:
    from casebridge.canonical_model import TransferEnvelope

    base = TransferEnvelope.model_validate_json(_EXAMPLE.read_bytes())
    identity = base.parts[0]
    rng = random.Random(7)
    out = []
    for _ in range(count):
        n = rng.randrange(clients)
        content = identity.content.model_copy(
            update={"identifiers": [Identifier(system=KUNDENNUMMER, value=f"K{n:09d}")]}
        )
        parts = [identity.model_copy(update={"content": content}), *base.parts[1:]]
        out.append(base.model_copy(update={"parts": parts}))
    return out


def measure_decide(db: Database, clients: int, samples: int) -> tuple[float, float, float]:
    """(decisions/s, p50 ms, p99 ms) of look-up + decide for random clients."""
    gate = ConsentGate(db)
    envelopes = _envelopes(clients, samples)
    for envelope in envelopes[:50]:  # warm the pool and the plan caches
        gate.evaluate(envelope, at=AT)
    durations = []
    start = time.perf_counter()
    for envelope in envelopes:
        t0 = time.perf_counter()
        decisions = gate.evaluate(envelope, at=AT)
        durations.append(time.perf_counter() - t0)
        assert decisions.decisions.decisions[0].outcome == "partial"
    total = time.perf_counter() - start
    p50, p99 = percentiles(durations)
    return samples / total, p50, p99


def measure_audit(db: Database, appends: int, chain: int) -> dict[str, float]:
    """Durable single-entry appends/s vs. plain insert commits/s; verify vs. raw fetch rate."""
    trail = AuditTrail(db)
    draft = AuditDraft(at=AT, kind="decision", stage="inbound", sender="jobcenter-duisburg",
                       recipient="suchtberatung-diakonie-du", purpose="referral",
                       client_id="c-1", message_id="M-1", outcome="partial",
                       released=("contact", "identity"),
                       withheld=(("case_notes", "category_not_covered"),), consents=("b-1-0",))
    start = time.perf_counter()
    for _ in range(appends):
        trail.append([draft])
    append_rate = appends / (time.perf_counter() - start)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bench_commit (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for i in range(appends):
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_commit (id, v) VALUES (:i, 'x')"), {"i": i})
    commit_rate = appends / (time.perf_counter() - start)
    while trail.head()[0] < chain:
        trail.append([draft] * min(2000, chain - trail.head()[0]))
    start = time.perf_counter()
    result = trail.verify()
    verify_rate = result.checked / (time.perf_counter() - start)
    assert result.ok
    start = time.perf_counter()
    fetched = sum(len(rows) for rows in trail._raw_batches(batch=20000))
    fetch_rate = fetched / (time.perf_counter() - start)
    return {"append": append_rate, "commit": commit_rate, "verify": verify_rate,
            "fetch": fetch_rate, "chain": float(result.checked)}


def run(quick: bool) -> list[Row]:
    """The benchmark rows (see the module docstring)."""
    sizes = [10**3, 10**4] if quick else [10**3, 10**5, 10**6]
    samples = 500 if quick else 2000
    rows: list[Row] = []
    for name in ("sqlite", "postgresql"):
        with backend(name) as db:
            loaded = 0
            baseline_p99 = baseline_p50 = baseline_rate = 0.0
            for size in sizes:
                clients = size // 2
                bulk_load(db, loaded, clients - loaded)
                loaded = clients
                rate, p50, p99 = measure_decide(db, clients, samples)
                if size == sizes[0]:
                    baseline_p99, baseline_p50, baseline_rate = p99, p50, rate
                label = f"consent gate {name} 10^{len(str(size)) - 1} consents"
                target = "p99 < 2 ms; ratio <= 2" if name == "postgresql" else "ratio <= 2"
                rows.append(Row(label, "p99 ms", p99, "p99 at 10^3", baseline_p99, target))
                rows.append(Row(label, "p50 ms", p50, "p50 at 10^3", baseline_p50))
                rows.append(Row(label, "decisions/s", rate, "at 10^3", baseline_rate))
            audit = measure_audit(db, 200 if quick else 1000, 20_000 if quick else 100_000)
            rows.append(Row(f"audit {name}", "appends/s (durable)", audit["append"],
                            "plain insert commits/s", audit["commit"]))
            rows.append(Row(f"audit {name}", "verify entries/s", audit["verify"],
                            "raw row fetch/s", audit["fetch"], ">= 100000",
                            note=f"chain of {int(audit['chain']):,} entries"))
    return rows
