"""The console's queries and the review guard on PostgreSQL (the production store)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.consent.audit import AuditTrail
from casebridge.db import get_database
from casebridge.errors import ConflictError
from casebridge.gateway.app import create_app
from casebridge.gateway.console import data
from tests.consent.store_fixtures import pg_schema_url
from tests.console.conftest import csrf_token, sign_in
from tests.console.html import table
from tests.console.seed import Seeded, seed_demo
from tests.console.test_pages import EXPECTED_FLOWS, flow_counts

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_seeded(tmp_path: Path) -> Iterator[Seeded]:
    """The demo data in a private PostgreSQL schema."""
    for url in pg_schema_url():
        yield seed_demo(tmp_path / "data", database_url=url)


def test_pages_and_review_on_postgresql(pg_seeded: Seeded) -> None:
    app = create_app(pg_seeded.settings())
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "dana-dpo")
        assert flow_counts(client.get("/console/flows").text) == EXPECTED_FLOWS
        withdrawn = table(client.get("/console/withheld?reason=withdrawn").text,
                          "What was withheld")
        assert [r[0] for r in withdrawn[1:]] == ["#14", "#13"]
        token = csrf_token(client.get("/console/overrides").text)
        answer = client.post("/console/overrides/15/review",
                             data={"csrf_token": token, "comment": "geprüft"})
        assert answer.status_code == 303
        report = client.get(f"/console/report?client_id={pg_seeded.client_id}")
        assert report.status_code == 200
    assert AuditTrail(get_database(pg_seeded.database_url)).verify().ok


def test_racing_reviews_on_postgresql(pg_seeded: Seeded) -> None:
    db = get_database(pg_seeded.database_url)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def review(n: int) -> None:
        barrier.wait()
        try:
            data.review_override(db, 15, reviewer=f"dpo-{n}", comment="ok")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
        except Exception as exc:  # noqa: BLE001 - any other failure must show in the assert
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=review, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
