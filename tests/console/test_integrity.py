"""Verifying the audit chain from the console: background run, progress, stored result."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import update

from casebridge.consent.audit import AuditTrail
from casebridge.consent.store import AuditEntryRow
from casebridge.db import get_database
from casebridge.gateway.console.verify import Verifications
from tests.console.conftest import SignIn, csrf_token
from tests.console.html import text
from tests.console.seed import Seeded


def _run(client: TestClient, token: str) -> str:
    answer = client.post("/console/integrity/verify", data={"csrf_token": token})
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/console/integrity?job=")
    for _ in range(100):
        page = client.get(location)
        if "Verification running" not in page.text:
            return page.text
        assert '<meta http-equiv="refresh" content="1">' in page.text
        time.sleep(0.05)
    raise AssertionError("the verification did not finish")


def test_verification_runs_and_its_result_is_kept(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    first = client.get("/console/integrity")
    assert "has not yet been verified" in text(first.text)
    done = _run(client, csrf_token(first.text))
    shown = text(done)
    assert "Unaltered: 16 entries checked, up to entry 16." in shown
    assert "Verified by dana-dpo" in shown
    assert "refresh" not in done
    events = [e for e in AuditTrail(get_database(seeded.database_url)).entries()
              if e.kind == "chain_verified"]
    assert [e.details["ok"] for e in events] == [True]
    # the stored result is what a fresh page (any process) shows
    assert "Unaltered: 16 entries checked" in text(client.get("/console/integrity").text)


def test_a_tampered_chain_is_reported_broken(signed_in: SignIn, seeded: Seeded) -> None:
    db = get_database(seeded.database_url)
    with db.session() as session:
        session.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 5)
                        .values(recipient="sozialamt-duisburg"))
    client = signed_in("dana-dpo")
    done = _run(client, csrf_token(client.get("/console/integrity").text))
    assert "BROKEN from entry 5: hash does not match the entry's content (altered)" in text(done)


def test_progress_is_reported_per_batch(seeded: Seeded) -> None:
    jobs = Verifications(get_database(seeded.database_url), batch=4)
    job = jobs.start("tester")
    assert jobs.start("someone else") is job or job.done.is_set()
    assert job.done.wait(10)
    assert job.result is not None and job.result.ok
    assert (job.checked, job.percent) == (16, 100)
    assert jobs.get(job.id) is job and jobs.get("unknown") is None


def test_a_job_of_another_gateway_process_is_awaited_until_its_result_appears(
    signed_in: SignIn, seeded: Seeded
) -> None:
    client = signed_in("dana-dpo")
    other = Verifications(get_database(seeded.database_url))  # "another process"
    job = other.start("dana-dpo")
    assert job.done.wait(10)
    ours = client.get(f"/console/integrity?job={job.id}")
    assert "refresh" not in ours.text  # its result event names the job: nothing to wait for
    assert "Unaltered: 16 entries checked" in text(ours.text)
    waiting = client.get(f"/console/integrity?job={int(time.time())}-elsewhere")
    assert '<meta http-equiv="refresh" content="1">' in waiting.text
    stale = client.get("/console/integrity?job=1000000000-long-ago")
    assert "refresh" not in stale.text
