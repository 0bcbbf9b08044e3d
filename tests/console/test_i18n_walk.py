"""Every console page and every error, read in German: no English may show (issue 17).

The walk signs in with ``lang=de`` and visits each page (with data: the demo plus a dead letter,
a forged sender and a refused message), each filter, each error page (bad input, unknown ids,
403, CSRF refusal, 404, 405, refused review comments, failed login). A page fails on an English
function word or on any English label or vocabulary text of the console. Technical values a DPO
needs verbatim are exempt: ``<code>`` (ids, hashes, metric labels), agency ids (secondary text)
and elements marked as another language (the "English" link of the language switch).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casebridge.consent.store import ConsentStore
from casebridge.db import get_database, reset_databases
from casebridge.gateway.app import create_app
from casebridge.gateway.console.i18n import LABELS, VOCABULARY
from tests.console.conftest import csrf_token, login_token, sign_in
from tests.console.html import page
from tests.console.seed import PASSWORD, Seeded

#: words of English that German never uses (German's "was", "in", "an", "die", "Kind",
#: "positive", "Report" are left out)
ENGLISH_WORDS = frozenset("""
    the of and is are not must please invalid error found there this that with only which
    should cannot could would have has been unknown missing already refused blocked released
    partial statutory consent agency sender recipient purpose reason period entry entries
    page number characters whole between from to by on at for or none yes no
    choices choice sign out more review reviewed comment comments forged dead letter
    letters flows records processing access integrity verify operations
""".split())


def _english_phrases() -> set[str]:
    """English label and vocabulary texts (fragments around placeholders) unlike the German."""
    found: set[str] = set()
    texts = [(LABELS["en"][k], LABELS["de"].get(k, "")) for k in LABELS["en"]]
    for vocabulary in VOCABULARY.values():
        texts += [(v, vocabulary["de"].get(code, "")) for code, v in vocabulary["en"].items()]
    for english, german in texts:
        if english == german:
            continue
        for fragment in re.split(r"\{\w+\}", english):
            fragment = fragment.strip(" .,:;()–-")
            if len(fragment) >= 10 and fragment not in german:
                found.add(fragment)
    return found


PHRASES = _english_phrases()


def english_in(html: str) -> list[str]:
    """English words and console phrases on the page, outside the exempt elements."""
    doc = page(html)
    for exempt in doc.xpath("//code|//*[contains(@class, 'agency-id')]|//head"
                            "|//*[@lang and @lang != 'de']"):
        exempt.drop_tree()
    shown = " ".join(doc.text_content().split())
    words = {w for w in re.findall(r"[A-Za-z]+", shown) if w.lower() in ENGLISH_WORDS}
    return sorted(words) + sorted(p for p in PHRASES if p in shown)


@pytest.fixture
def german(incident_data: Seeded, tmp_path: Path) -> Iterator[tuple[TestClient, Seeded]]:
    """A client on a copy of the incident data, signed in as the DPO in German."""
    copy = incident_data.clone(tmp_path / "walk")
    with TestClient(create_app(copy.settings()), raise_server_exceptions=False,
                    follow_redirects=False) as client:
        sign_in(client, "dana-dpo", lang="de")
        yield client, copy
    reset_databases()


def _check(client: TestClient, method: str, path: str, status: int, **kwargs: object) -> str:
    answer = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html"), path
    assert 'lang="de"' in answer.text, path
    found = english_in(answer.text)
    assert found == [], f"{method} {path}: English on a German page: {found}"
    return answer.text


def test_the_english_detector_finds_english() -> None:
    assert english_in("<p>Please enter a date</p>") == ["Please"]
    assert "From/to: at most ten years at once" in english_in(
        "<p>From/to: at most ten years at once.</p>")
    assert english_in('<p lang="de">Übermittlungen</p><a lang="en">English</a>') == []
    assert english_in("<p>Nicht gefunden <code>no_route</code></p>") == []
    assert english_in("<p>the consent was withdrawn</p>") != []


def test_every_page_and_error_is_german(german: tuple[TestClient, Seeded]) -> None:
    client, seeded = german
    db = get_database(seeded.database_url)
    child = ConsentStore(db).require("cons-ja-2026-0311").client_id
    pages = [
        "/console/flows", "/console/flows?from=2020-01-01&to=2020-01-31",
        "/console/flows/edge?sender=jugendamt-duisburg&recipient=jobcenter-duisburg",
        "/console/withheld", "/console/withheld?outcome=block&agency=sozialamt-duisburg",
        "/console/withheld?reason=withdrawn&purpose=case_conference",
        "/console/incidents", "/console/incidents?kind=forged_sender",
        "/console/incidents?kind=dead_letter&agency=jugendamt-duisburg",
        "/console/overrides", "/console/report", f"/console/report?client_id={seeded.client_id}",
        "/console/consents", f"/console/consents?client_id={child}", "/console/integrity",
        "/console/records",
    ] + [f"/console/audit/{seq}" for seq in range(1, 21)]
    for path in pages:
        _check(client, "GET", path, 200)
    errors = [
        ("/console/flows?from=gestern", 422), ("/console/flows?from=2026-02-01&to=2026-01-01", 422),
        ("/console/flows?from=1990-01-01&to=2026-01-01", 422),
        ("/console/withheld?reason=because", 422), ("/console/withheld?outcome=permit", 422),
        ("/console/withheld?agency=" + "x" * 70, 422), ("/console/withheld?before=abc", 422),
        ("/console/incidents?kind=decision", 422), ("/console/flows/edge?sender=a", 422),
        ("/console/audit/999", 404), ("/console/audit/x1", 422),
        ("/console/report?client_id=c-niemand", 404), ("/console/consents?client_id=c-nie", 404),
        ("/console/records/export?format=pdf", 422), ("/console/gibt-es-nicht", 404),
        ("/console/overrides/15/review", 405), ("/console/integrity?job=" + "j" * 50, 422),
    ]
    for path, status in errors:
        _check(client, "GET", path, status)
    token = csrf_token(client.get("/console/overrides").text)
    _check(client, "POST", "/console/integrity/verify", 403, data={"csrf_token": "falsch"})
    for comment in ("", "Frau Yilmaz informiert"):
        _check(client, "POST", "/console/overrides/15/review", 422,
               data={"csrf_token": token, "comment": comment})
    _check(client, "POST", "/console/overrides/1/review", 404,
           data={"csrf_token": token, "comment": "Prüfung ohne Befund."})
    # a review that is recorded, then the page showing it, then a second one refused
    answer = client.post("/console/overrides/15/review",
                         data={"csrf_token": token, "comment": "Prüfung ohne Befund."})
    assert answer.status_code == 303
    _check(client, "GET", answer.headers["location"], 200)
    _check(client, "GET", "/console/overrides?notice=already", 200)
    verify = client.post("/console/integrity/verify", data={"csrf_token": token})
    assert verify.status_code == 303
    _check(client, "GET", verify.headers["location"], 200)


def test_other_roles_and_the_login_are_german(german: tuple[TestClient, Seeded]) -> None:
    client, _seeded = german
    client.post("/console/logout", data={"csrf_token": csrf_token(
        client.get("/console/flows").text)})
    form = _check(client, "GET", "/console/login", 200, headers={"Accept-Language": "de"})
    _check(client, "POST", "/console/login", 401, data={
        "username": "dana-dpo", "password": "falsch-falsch-falsch", "lang": "de",
        "login_token": login_token(form), "next": "/console/"})
    _check(client, "POST", "/console/login", 403, data={
        "username": "dana-dpo", "password": PASSWORD, "lang": "de", "login_token": "alt"})
    sign_in(client, "adam-admin", lang="de")
    _check(client, "GET", "/console/ops", 200)
    _check(client, "GET", "/console/flows", 403)
    _check(client, "GET", "/console/records", 403)


def test_a_broken_chain_is_reported_in_german(german: tuple[TestClient, Seeded]) -> None:
    from sqlalchemy import update

    from casebridge.consent.store import AuditEntryRow

    client, seeded = german
    with get_database(seeded.database_url).session() as session:
        session.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 5)
                        .values(recipient="sozialamt-duisburg"))
    token = csrf_token(client.get("/console/integrity").text)
    started = client.post("/console/integrity/verify", data={"csrf_token": token})
    location = started.headers["location"]
    for _ in range(100):
        shown = _check(client, "GET", location, 200)
        if "BESCHÄDIGT ab Eintrag 5" in shown:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the verification did not finish")
    # the technical finding stays verbatim, as code
    assert "<code>hash does not match the entry&#39;s content (altered)</code>" in shown
