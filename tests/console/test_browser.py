"""End to end in a real headless browser: Debian's chromium driven by Playwright, against the
real gateway served by uvicorn on 127.0.0.1, holding the demo data the real pipeline produced.

Screenshots of every page land in ``test-artifacts/console/`` (gitignored). Skipped, with the
reason, only where no chromium executable exists; CI installs it (see .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from casebridge.consent.store import ConsentStore
from casebridge.db import get_database
from tests.conftest import REPO_ROOT
from tests.console.seed import PASSWORD, Seeded

CHROMIUM = next((p for p in (os.environ.get("CASEBRIDGE_CHROMIUM"), shutil.which("chromium"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium executable (install Debian's: apt-get install -y chromium); "
           "the browser tests drive the system browser, never a downloaded one",
)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = REPO_ROOT / "test-artifacts" / "console"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(seeded: Seeded, tmp: Path) -> Iterator[str]:
    """``casebridge serve`` (uvicorn) on a copy of ``seeded``; yields its base URL."""
    data = seeded.clone(tmp)
    port = _free_port()
    env = {**os.environ,
           "CASEBRIDGE_DATA_DIR": str(data.data_dir), "CASEBRIDGE_DATABASE_URL": data.database_url,
           "CASEBRIDGE_BROKER_URL": data.broker_url, "CASEBRIDGE_BROKER_PREFIX": "casebridge-demo",
           "CASEBRIDGE_ROUTE_TABLE": str(data.routes_file),
           "CASEBRIDGE_CONSOLE_COOKIE_SECURE": "false", "CASEBRIDGE_LOG_FORMAT": "json",
           "CASEBRIDGE_LOG_LEVEL": "warning"}
    log = (tmp / f"uvicorn-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "casebridge", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the gateway did not start; see " + log.name)
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(demo_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway on a copy of the demo data."""
    with _serve(demo_data, tmp_path_factory.mktemp("browser-data")) as base:
        yield base


@pytest.fixture(scope="module")
def incident_server(incident_data: Seeded,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway on the demo data plus a dead letter, a forged sender, a refused message."""
    with _serve(incident_data, tmp_path_factory.mktemp("browser-incidents")) as base:
        yield base


@pytest.fixture(scope="module")
def region_server(region_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway on the generated region of 12 agencies and 40 routes."""
    with _serve(region_data, tmp_path_factory.mktemp("browser-region")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium (the system's) through Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@contextmanager
def _page_on(browser: Any, base: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base,
                                  locale="de-DE", accept_downloads=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def new_page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) with a laptop-sized window."""
    with _page_on(browser, server) as page:
        yield page


def check_axe(page: Any, name: str) -> None:
    """axe-core on the page as it is: no critical and no serious violation.

    ``label-content-name-mismatch`` is experimental in axe (off by default), so it is switched
    on explicitly. Lesser findings are saved beside the screenshots for reading.
    """
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={
        "resultTypes": ["violations"],
        "rules": {"label-content-name-mismatch": {"enabled": True}},
    })
    violations = results.response["violations"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=1), encoding="utf-8")
    grave = [f"{v['id']} ({v['impact']}): {v['help']} – "
             + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                         for n in v["nodes"][:3])
             for v in violations if v["impact"] in ("critical", "serious")]
    assert grave == [], f"{name}: " + "\n".join(grave)


def shot(page: Any, name: str, *, full: bool = True) -> None:
    """Save a screenshot as a test artifact, and check the page with axe-core."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)
    check_axe(page, name)


def sign_in(page: Any, user: str) -> None:
    """Sign in through the login form, with the keyboard for the last step."""
    page.goto("/console/")
    assert page.url.endswith("/console/login?next=%2Fconsole%2F")
    page.get_by_label("Benutzername").fill(user)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_label("Passwort").press("Enter")
    page.wait_for_load_state()


def test_dpo_walks_through_every_page(new_page: Any, demo_data: Seeded) -> None:
    page = new_page
    page.goto("/console/login")
    assert page.locator("html").get_attribute("lang") == "de"
    shot(page, "01-login")
    sign_in(page, "dana-dpo")

    # Flows: the diagram and the table beside it
    assert page.url.endswith("/console/flows")
    assert page.locator("h1").inner_text() == "Übermittlungen zwischen Stellen"
    edges = page.locator("svg a.edge")
    assert edges.count() == 7
    total = page.locator("table tfoot tr").inner_text().split()
    assert total[-1] == "9"
    shot(page, "02-flows")

    # Follow an edge of the diagram to its decisions
    # a user clicks the counts on the arrow (the curve itself is a thin line)
    page.locator('svg a.edge[data-sender="jugendamt-duisburg"][data-recipient="jobcenter-duisburg"]'
                 ' rect').click()
    page.wait_for_load_state()
    assert "sender=jugendamt-duisburg" in page.url
    rows = page.locator("table tbody tr")
    assert rows.count() == 4
    assert "gesperrt" in rows.nth(0).inner_text()
    assert "die Einwilligung wurde widerrufen" in rows.nth(0).inner_text()
    shot(page, "03-edge-decisions")

    # An audit entry: seq, hash, previous hash
    page.get_by_role("link", name="#13").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Protokolleintrag 13"
    assert len(page.locator("code.hash").first.inner_text()) == 64
    shot(page, "04-audit-entry")

    # Blocked and partial, filtered by reason with the form
    page.get_by_role("link", name="Gesperrt & teilweise").click()
    page.get_by_label("Grund").select_option("sender_not_covered")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    assert "reason=sender_not_covered" in page.url
    seqs = [c.strip() for c in page.locator("table tbody th").all_inner_texts()]
    assert seqs == ["#4", "#3"]
    assert "die Einwilligung erlaubt diesem Absender keine Übermittlung" in page.inner_text("main")
    shot(page, "05-withheld")

    # Statutory override: justification shown, review recorded, then no form any more
    page.get_by_role("link", name="Gesetzliche Übermittlungen").click()
    card = page.locator("#o15")
    assert "kkg-4" in card.inner_text()
    assert "Beim Termin am 02.12.2026 war die Kundin" in card.inner_text()
    shot(page, "06-overrides-pending")
    card.get_by_label("Kommentar zur Prüfung").fill("Voraussetzungen des §4 KKG erfüllt.")
    card.get_by_role("button", name="Als geprüft markieren").click()
    page.wait_for_load_state()
    assert "Die Prüfung wurde im Protokoll festgehalten." in page.inner_text("main")
    reviewed = page.locator("#o15")
    assert "Geprüft von dana-dpo" in reviewed.inner_text()
    assert reviewed.locator("form").count() == 0
    shot(page, "07-overrides-reviewed")

    # Art. 15 report, on screen and as printed
    page.get_by_role("link", name="Auskunft (Art. 15)").click()
    page.get_by_label("Klienten-ID").fill(demo_data.client_id)
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    text = page.inner_text("main")
    assert "hat Jobcenter Duisburg folgende Daten über Sie an Suchtberatung der Diakonie" in text
    shot(page, "08-report")
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()
    assert page.locator("form.filters").is_hidden()
    shot(page, "09-report-print")
    page.emulate_media(media="screen")

    # Consents of the youth office's client, one of them withdrawn during the demo
    child = ConsentStore(get_database(demo_data.database_url)).require("cons-ja-2026-0311")
    page.get_by_role("link", name="Einwilligungen").click()
    page.get_by_label("Klienten-ID").fill(child.client_id)
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    assert "Kennungen bei den Stellen" in page.inner_text("main")
    assert "cons-ja-2026-0311 – widerrufen" in page.inner_text("main")
    shot(page, "10-consents")

    # Integrity: run a verification and watch it finish
    page.get_by_role("link", name="Integrität").click()
    assert "noch nie" in page.inner_text("main")
    page.get_by_role("button", name="Kette jetzt prüfen").click()
    page.locator("p.result").wait_for()
    # 16 seeded, the review, and the report viewed above (access to a report is audited)
    assert "Unverändert: 18 Einträge geprüft" in page.locator("p.result").inner_text()
    shot(page, "11-integrity")

    # English, remembered across pages
    page.get_by_role("link", name="English", exact=True).click()
    page.get_by_role("link", name="Flows", exact=True).click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Flows between agencies"
    shot(page, "12-flows-en")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "/console/login" in page.url


def test_keyboard_users_skip_to_content_and_see_focus(new_page: Any) -> None:
    page = new_page
    sign_in(page, "dana-dpo")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Zum Inhalt springen"
    assert page.locator("a.skip").is_visible()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    shot(page, "13-skip-link-focus", full=False)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # the diagram's edges are reachable by keyboard
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('class')") == "edge":
            break
    else:
        raise AssertionError("no diagram edge reached with the Tab key")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/flows/edge?**")


def test_admin_sees_the_operations_view_only(new_page: Any) -> None:
    page = new_page
    sign_in(page, "adam-admin")
    assert page.url.endswith("/console/ops")
    assert "jobcenter-duisburg" in page.locator("table").first.inner_text()
    shot(page, "14-ops")
    response = page.goto("/console/flows")
    assert response is not None and response.status == 403
    assert "Kein Zugriff" in page.inner_text("main")


def test_a_user_without_the_dpo_role_is_refused_every_page(new_page: Any) -> None:
    page = new_page
    sign_in(page, "desk-clerk")
    for path in ("/console/flows", "/console/withheld", "/console/overrides",
                 "/console/consents", "/console/integrity", "/console/audit/1", "/console/ops"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        assert "Kein Zugriff" in page.locator("h1").inner_text()
    shot(page, "15-refused")


def test_the_consent_desk_finds_the_mother_confirms_and_prints(new_page: Any) -> None:
    """Issue 17 item 3: the mother seen in the youth office's file is found by name and birth
    date beside the job centre's client, confirmed deliberately, and her report printed."""
    page = new_page
    sign_in(page, "desk-clerk")
    assert page.url.endswith("/console/persons")
    page.get_by_label("Name (Nachname, Vorname)").fill("Yılmaz, Ayşe")
    page.get_by_label("Geburtsdatum").fill("1988-04-12")
    page.locator("form", has=page.get_by_label("Geburtsdatum")).get_by_role(
        "button", name="Suchen").click()
    page.wait_for_load_state()
    rows = page.locator("table tbody tr")
    assert rows.count() == 2
    shot(page, "16-persons-candidates")
    confirm = page.locator("form[action='/console/persons/link']")
    confirm.get_by_label("Ich habe die Identität geprüft (z. B. Ausweis, Akte).").check()
    confirm.get_by_role("button", name="Verknüpfung bestätigen").click()
    page.wait_for_load_state()
    assert "/console/report?client_id=" in page.url
    text = page.inner_text("main")
    assert "Die Verknüpfung wurde bestätigt" in text
    assert "hat Jugendamt Duisburg folgende Daten über Sie an Jobcenter Duisburg übermittelt: " \
           "Haushalt und Familie" in text
    assert "nicht übermittelt (bei der Zustellung gesperrt: die Einwilligung wurde widerrufen)" \
        in text
    shot(page, "17-desk-report")
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()
    shot(page, "18-desk-report-print")
    page.emulate_media(media="screen")


def _seqs(page: Any) -> list[str]:
    return [c.strip() for c in page.locator("table tbody th").all_inner_texts()
            if c.strip().startswith("#")]


def test_outcome_filter_and_period_presets(new_page: Any) -> None:
    page = new_page
    sign_in(page, "dana-dpo")
    page.get_by_role("link", name="Gesperrt & teilweise").click()
    page.get_by_label("Ergebnis").select_option("block")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    assert "outcome=block" in page.url
    assert _seqs(page) == ["#14", "#13", "#4", "#3"]
    assert "Jugendamt Duisburg" in page.locator("table tbody").inner_text()
    shot(page, "16-withheld-outcome-blocked")
    page.get_by_label("Ergebnis").select_option("override")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    assert _seqs(page) == ["#16", "#15"]
    assert "§ 4 KKG – Mitteilung an das Jugendamt" in page.locator("table tbody").inner_text()
    shot(page, "17-withheld-outcome-statutory")
    # a preset keeps the filters and sets the period
    page.get_by_role("link", name="Diese Woche").click()
    page.wait_for_load_state()
    assert "outcome=override" in page.url and "from=" in page.url
    first = page.get_by_label("Von").input_value()
    assert date.fromisoformat(first).weekday() == 0  # this week starts on Monday
    page.get_by_role("link", name="Letzte 30 Tage").click()
    page.wait_for_load_state()
    span = date.fromisoformat(page.get_by_label("Bis (einschließlich)").input_value()) - \
        date.fromisoformat(page.get_by_label("Von").input_value())
    assert span.days == 29
    assert _seqs(page) == ["#16", "#15"]
    shot(page, "18-withheld-preset-30-days")


def test_records_of_processing_and_their_export(new_page: Any) -> None:
    page = new_page
    sign_in(page, "dana-dpo")
    page.get_by_role("link", name="Verarbeitungsverzeichnis").click()
    page.wait_for_load_state()
    assert page.locator("section.record").count() == 4
    assert "§ 8a SGB VIII – Schutzauftrag bei Kindeswohlgefährdung" in page.inner_text("main")
    shot(page, "19-records")
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Als CSV herunterladen").click()
    body = Path(csv_download.value.path()).read_text(encoding="utf-8-sig")
    assert body.splitlines()[0].startswith("Strecke,Absender,Empfänger,Zwecke")
    assert len(body.splitlines()) == 5
    with page.expect_download() as json_download:
        page.get_by_role("link", name="Als JSON herunterladen").click()
    records = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert [r["route"] for r in records["records"]] == [0, 1, 2, 3]


@pytest.fixture
def incident_page(browser: Any, incident_server: str) -> Iterator[Any]:
    """A fresh browser context on the gateway holding the incidents."""
    with _page_on(browser, incident_server) as page:
        yield page


def test_incidents_page_with_its_filters(incident_page: Any) -> None:
    page = incident_page
    sign_in(page, "dana-dpo")
    page.get_by_role("link", name="Abgewiesen & unzustellbar").click()
    page.wait_for_load_state()
    kinds = page.locator("table.incidents tbody td span.incident").all_inner_texts()
    assert kinds == ["an der Tür abgewiesen", "gefälschter Absender", "unzustellbar"]
    assert "keine Route erlaubt diese Übermittlung" in page.inner_text("main")
    shot(page, "20-incidents")
    page.get_by_label("Art").select_option("forged_sender")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    row = page.locator("table.incidents tbody tr")
    assert row.count() == 1
    assert "angeblicher Absender: Sozialamt Duisburg" in row.inner_text()
    shot(page, "21-incidents-forged")
    page.get_by_label("Art").select_option("")
    page.get_by_label("Stelle").select_option("jugendamt-duisburg")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_load_state()
    assert page.locator("table.incidents tbody td span.incident").all_inner_texts() == [
        "unzustellbar"]
    shot(page, "22-incidents-dead-letters")


def test_a_review_naming_the_person_is_refused(incident_page: Any) -> None:
    page = incident_page
    sign_in(page, "dana-dpo")
    page.get_by_role("link", name="Gesetzliche Übermittlungen").click()
    card = page.locator("#o15")
    card.get_by_label("Kommentar zur Prüfung").fill("Frau Yilmaz (geb. 12.04.1988) informiert.")
    card.get_by_role("button", name="Als geprüft markieren").click()
    page.wait_for_load_state()
    error = page.locator("#err-15")
    assert "enthält personenbezogene Daten" in error.inner_text()
    assert "einen Namen der betroffenen Person" in error.inner_text()
    # nothing was stored: the form is still there, with the text to reword
    assert page.locator("#o15 form").count() == 1
    assert "Yilmaz" in page.locator("#comment-15").input_value()
    shot(page, "23-review-refused-personal-data")


@pytest.fixture
def region_page(browser: Any, region_server: str) -> Iterator[Any]:
    """A fresh browser context on the generated region."""
    with _page_on(browser, region_server) as page:
        yield page


#: In the browser: every count label's box, its text's box, the boxes of the agencies, and how
#: far each label's centre is from its own curve (sampled along the rendered path).
_MEASURE = """() => {
  const box = r => { const b = r.getBoundingClientRect();
                     return [b.left, b.top, b.right, b.bottom]; };
  const svg = document.querySelector('svg.flow-svg');
  const ctm = svg.getScreenCTM();
  const edges = [...document.querySelectorAll('svg a.edge')].map(a => {
    const rect = a.querySelector('rect.edge-label-bg');
    const b = rect.getBoundingClientRect();
    const cx = (b.left + b.right) / 2, cy = (b.top + b.bottom) / 2;
    const path = a.querySelector('path.edge-line');
    const length = path.getTotalLength();
    let best = Infinity;
    for (let i = 0; i <= 1000; i++) {
      const p = path.getPointAtLength(length * i / 1000).matrixTransform(ctm);
      best = Math.min(best, Math.hypot(p.x - cx, p.y - cy));
    }
    return {label: box(rect), text: box(a.querySelector('text.edge-label')), off: best,
            scale: ctm.a};
  });
  const nodes = [...document.querySelectorAll('svg g.node rect')].map(box);
  const names = [...document.querySelectorAll('svg g.node')].map(
    g => [box(g.querySelector('rect')), [...g.querySelectorAll('text')].map(box)]);
  return {edges, nodes, names};
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_twelve_agencies_and_forty_routes_stay_legible(region_page: Any) -> None:
    page = region_page
    sign_in(page, "dana-dpo")
    assert page.locator("svg g.node").count() == 12
    assert page.locator("svg a.edge").count() == 40
    found = page.evaluate(_MEASURE)
    labels, nodes = [e["label"] for e in found["edges"]], found["nodes"]
    for i, edge in enumerate(found["edges"]):
        label, text = edge["label"], edge["text"]
        assert not any(_overlap(label, other) for other in labels[i + 1:]), i
        assert not any(_overlap(label, node) for node in nodes), i
        # the rendered text fits its box, and the box sits on its own curve
        assert text[0] >= label[0] - 0.5 and text[2] <= label[2] + 0.5, (i, text, label)
        assert edge["off"] < 2 * edge["scale"] + 0.5, (i, edge["off"])
    for rect, texts in found["names"]:  # every agency's name fits its box
        assert all(t[0] >= rect[0] and t[2] <= rect[2] for t in texts), (rect, texts)
    # legible: drawn at (nearly) full size at 1366 × 768
    assert found["edges"][0]["scale"] > 0.9
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("figure.diagram").screenshot(path=str(SHOTS / "flows-12-agencies-40-routes.png"))
    shot(page, "24-flows-region")
