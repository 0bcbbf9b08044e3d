"""Reviewing a statutory override: recorded as an appended audit event, once, never edited."""

from __future__ import annotations

import threading

import pytest

from casebridge.consent.audit import AuditTrail
from casebridge.consent.claims import justification_digest
from casebridge.db import get_database
from casebridge.errors import ConflictError, InputError, NotFound
from casebridge.gateway.console import data
from tests.console.conftest import SignIn, audit_count, csrf_token
from tests.console.html import page, text
from tests.console.seed import JUSTIFICATION, Seeded

COMMENT = "Voraussetzungen des §4 KKG dokumentiert; Übermittlung verhältnismäßig."


def test_review_is_appended_and_shown(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    trail = AuditTrail(get_database(seeded.database_url))
    before = [e.as_json() for e in trail.entries()]
    token = csrf_token(client.get("/console/overrides").text)
    answer = client.post("/console/overrides/15/review",
                         data={"csrf_token": token, "comment": COMMENT})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/overrides?notice=done#o15"
    after = list(trail.entries())
    # nothing before was touched; exactly one event was appended
    assert [e.as_json() for e in after[:-1]] == before
    event = after[-1]
    assert event.kind == "dpo_review" and event.seq == len(before) + 1
    assert event.details == {
        "reviewed_seq": 15, "reviewer": "dana-dpo", "comment": COMMENT,
        "legal_basis": "kkg-4", "justification_sha256": justification_digest(JUSTIFICATION),
    }
    assert (event.sender, event.recipient, event.message_id) == (
        "jobcenter-duisburg", "jugendamt-duisburg", "JC-DU-2026-000377")
    assert trail.verify().ok
    shown = client.get("/console/overrides?notice=done").text
    assert "Awaiting review (0)" in text(shown) and "Reviewed (1)" in text(shown)
    card = page(shown).get_element_by_id("o15")
    assert COMMENT in card.text_content()
    assert "Reviewed by dana-dpo" in card.text_content()
    assert card.xpath(".//form") == []  # a reviewed override offers no form any more


def test_a_second_review_is_refused(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    token = csrf_token(client.get("/console/overrides").text)
    client.post("/console/overrides/15/review", data={"csrf_token": token, "comment": COMMENT})
    count = audit_count(seeded)
    again = client.post("/console/overrides/15/review",
                        data={"csrf_token": token, "comment": "changed my mind"})
    assert again.headers["location"] == "/console/overrides?notice=already#o15"
    assert audit_count(seeded) == count
    shown = client.get(again.headers["location"]).text
    assert "already been reviewed" in text(shown)
    assert "changed my mind" not in shown


def test_an_empty_comment_is_refused_without_an_entry(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    token = csrf_token(client.get("/console/overrides").text)
    count = audit_count(seeded)
    answer = client.post("/console/overrides/15/review", data={"csrf_token": token,
                                                                "comment": "   "})
    assert answer.status_code == 422
    assert "Please enter a comment" in text(answer.text)
    too_long = client.post("/console/overrides/15/review",
                           data={"csrf_token": token, "comment": "x" * 501})
    assert too_long.status_code == 422
    assert audit_count(seeded) == count


def test_only_overrides_can_be_reviewed(signed_in: SignIn, seeded: Seeded) -> None:
    client = signed_in("dana-dpo")
    token = csrf_token(client.get("/console/overrides").text)
    count = audit_count(seeded)
    for seq in ("3", "16", "999"):  # a block; the delivery re-check of 15; no entry
        answer = client.post(f"/console/overrides/{seq}/review",
                             data={"csrf_token": token, "comment": COMMENT})
        assert answer.status_code == 404, seq
    assert audit_count(seeded) == count


def test_racing_reviews_record_exactly_one(seeded: Seeded) -> None:
    db = get_database(seeded.database_url)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def review(n: int) -> None:
        barrier.wait()
        try:
            data.review_override(db, 15, reviewer=f"dpo-{n}", comment=f"review {n}")
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
    reviews = [e for e in AuditTrail(db).entries() if e.kind == "dpo_review"]
    assert len(reviews) == 1


def test_review_override_validates_its_input(seeded: Seeded) -> None:
    db = get_database(seeded.database_url)
    with pytest.raises(InputError):
        data.review_override(db, 15, reviewer="d", comment="")
    with pytest.raises(NotFound):
        data.review_override(db, 1, reviewer="d", comment="ok")
