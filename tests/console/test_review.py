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
        "jobcenter-duisburg", "jugendamt-duisburg", "kinderschutz-2026-0001")
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


@pytest.mark.parametrize("comment, found", [
    ("Gespräch mit Frau Yilmaz bestätigt die Gefährdung.", ["personal.name"]),
    ("Ayşe wurde informiert.", ["personal.name"]),
    ("AYSE YILMAZ", ["personal.name"]),
    ("Mutter Ayse, Kind geboren 2019", ["personal.name", "personal.birth_marker"]),
    ("Klientin (12.04.1988) informiert", ["personal.birth_date"]),
    ("Stand 12.4.88, Meldung korrekt", ["personal.birth_date"]),
    ("Am 12. April 1988 geborene Klientin", ["personal.birth_date", "personal.birth_marker"]),
    ("Datum 1988-04-12 im Vermerk", ["personal.birth_date"]),
    ("Kind * 03.05.2019 gefährdet", ["personal.birth_marker"]),
])
def test_a_comment_with_personal_data_is_refused_before_the_chain(
    signed_in: SignIn, seeded: Seeded, comment: str, found: list[str]
) -> None:
    db = get_database(seeded.database_url)
    client_id = data.override(db, 15).entry.client_id
    assert data_found(db, comment, client_id) == found
    client = signed_in("dana-dpo", lang="de")
    count = audit_count(seeded)
    token = csrf_token(client.get("/console/overrides").text)
    answer = client.post("/console/overrides/15/review",
                         data={"csrf_token": token, "comment": comment})
    assert answer.status_code == 422
    assert audit_count(seeded) == count  # nothing entered the chain
    card = page(answer.text).get_element_by_id("o15")
    message = " ".join(card.get_element_by_id("err-15").text_content().split())
    assert message.startswith("Der Kommentar enthält personenbezogene Daten (")
    assert "wurde nicht gespeichert" in message
    # given back for rewording, and marked invalid for assistive technology
    area = card.get_element_by_id("comment-15")
    assert area.text_content() == comment and area.get("aria-invalid") == "true"


def data_found(db: object, comment: str, client_id: str | None) -> list[str]:
    from casebridge.gateway.console.personal import personal_data_in

    return personal_data_in(db, comment, client_id)  # type: ignore[arg-type]


def test_a_comment_without_personal_data_passes_dates_and_words_included(
    signed_in: SignIn, seeded: Seeded
) -> None:
    db = get_database(seeded.database_url)
    client_id = data.override(db, 15).entry.client_id
    fine = ("Voraussetzungen des §4 KKG erfüllt; Frist bis 15.12.2026, Rückmeldung des "
            "Jugendamts am 1988-04-13 nicht relevant. Kindeswohl gewichtet.")
    assert data_found(db, fine, client_id) == []
    event = data.review_override(db, 15, reviewer="dana-dpo", comment=fine)
    assert event.details["comment"] == fine


def test_the_check_knows_only_the_person_concerned(seeded: Seeded) -> None:
    db = get_database(seeded.database_url)
    # without a client (an override about nobody known) only statements of birth are refused
    assert data_found(db, "Frau Yilmaz", None) == []
    assert data_found(db, "geb. am 1.1.2000", None) == ["personal.birth_marker"]
