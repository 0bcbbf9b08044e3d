"""Records of processing (Art. 30 GDPR): one record per route, on the page and exported."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from casebridge.gateway.api.audit import ProcessingRecords, processing_records
from casebridge.gateway.console.records import records_csv
from casebridge.routing.routes import (
    RouteTable,
    RouteTableConfig,
    demo_route_table,
    load_route_table,
)
from tests.console.conftest import SignIn
from tests.console.html import page, text
from tests.console.seed import Seeded


def test_the_page_shows_every_route_with_purposes_categories_recipients_and_bases(
    signed_in: SignIn, seeded: Seeded
) -> None:
    answer = signed_in("dana-dpo", lang="de").get("/console/records")
    assert answer.status_code == 200
    routes = load_route_table(seeded.routes_file).config.routes
    cards = page(answer.text).xpath("//section[contains(@class, 'record')]")
    assert len(cards) == len(routes) == 4
    child_protection = " ".join(cards[3].text_content().split())
    assert "Zwecke Kinderschutz" in child_protection
    # recipients by name, id beside; legal bases in words, code beside
    assert "Empfänger Jugendamt Duisburg jugendamt-duisburg (Jugendamt)" in child_protection
    assert "§ 4 KKG – Mitteilung an das Jugendamt zum Schutz eines Kindes kkg-4" in \
        child_protection
    assert "§ 8a SGB VIII – Schutzauftrag bei Kindeswohlgefährdung" in child_protection
    assert "Gesundheit besondere Kategorie (Art. 9 DSGVO)" in child_protection
    referral = " ".join(cards[1].text_content().split())
    assert "Name, Geburtsdatum und Kennungen für die Übermittlung erforderlich" in referral
    assert "Schuldnerberatung der Caritas Duisburg schuldnerberatung-caritas-du" in referral
    # statutory bases appear on the route that admits them, and only there
    assert "kkg-4" not in referral


def test_csv_export_is_worded_one_line_per_route(signed_in: SignIn) -> None:
    answer = signed_in("dana-dpo", lang="de").get("/console/records/export?format=csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="verarbeitungsverzeichnis-')
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    body = answer.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0][:4] == ["Strecke", "Absender", "Empfänger", "Zwecke"]
    assert len(rows) == 5
    last = dict(zip(rows[0], rows[4], strict=True))
    assert last["Empfänger"] == "Jugendamt Duisburg (jugendamt-duisburg)"
    assert "§ 4 KKG – Mitteilung an das Jugendamt zum Schutz eines Kindes" in last[
        "Rechtsgrundlagen"]
    assert last["Antwortfrist"] == "3 Arbeitstage"


def test_json_export_is_the_apis_document(signed_in: SignIn, seeded: Seeded) -> None:
    answer = signed_in("dana-dpo").get("/console/records/export?format=json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = json.loads(answer.content)
    expected = [r.model_dump(mode="json")
                for r in processing_records(load_route_table(seeded.routes_file))]
    assert document["records"] == expected
    assert document["records"][0]["senders"][0]["name"] == "Suchtberatung der Diakonie Duisburg"
    assert document["source"] == str(seeded.routes_file)


def test_a_bad_export_format_and_other_roles_are_refused(signed_in: SignIn) -> None:
    bad = signed_in("dana-dpo", lang="de").get("/console/records/export?format=pdf")
    assert bad.status_code == 422
    assert "Format: csv oder json." in text(bad.text)
    admin = signed_in("adam-admin")
    assert admin.get("/console/records").status_code == 403
    assert admin.get("/console/records/export?format=csv").status_code == 403


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    data = demo_route_table().config.model_dump()
    data["agencies"][0]["name"] = "=HYPERLINK(\"http://x\")"
    hostile = RouteTable(RouteTableConfig.model_validate(data))
    found = ProcessingRecords(source="t", generated_at=datetime.now(UTC),
                              records=processing_records(hostile))
    rows = list(csv.reader(io.StringIO(records_csv(found, "en"))))
    cells = [c for row in rows for c in row]
    assert not any(c.startswith("=") for c in cells)
    assert any(c.startswith("'=HYPERLINK") for c in cells)
