"""A generated region of 12 agencies and 40 routes, with traffic decided by the real pipeline:
the flow diagram must stay legible at that size (issue 17)."""

from __future__ import annotations

from pathlib import Path

import yaml

from casebridge.canonical_model import Purpose
from casebridge.db import get_database
from casebridge.gateway.cli.demo import deliver
from casebridge.gateway.principals import PrincipalKind, Role, issue_key, set_password
from casebridge.routing.routes import load_route_table
from casebridge.routing.runtime import Routing
from casebridge.settings import Settings
from tests.console.seed import _NOTICE, PASSWORD, PREFIX, Seeded

CITIES = ("duisburg", "essen", "oberhausen")
KINDS = (  # kind, system, id prefix, name pattern
    ("jobcenter", "jobcenter", "jobcenter", "Jobcenter {city}"),
    ("social_office", "sozialamt", "sozialamt", "Sozialamt {city}"),
    ("youth_office", "jugendamt", "jugendamt", "Jugendamt {city}"),
    ("provider", "provider-fhir", "beratung", "Sucht- und Schuldnerberatung {city}"),
)
#: recipient offsets per round of 12 routes: 5 and 7 make pairs in both directions
OFFSETS = (1, 5, 3, 7)


def region_table() -> dict[str, object]:
    """The route table: 12 agencies, 40 routes (one sender → one recipient each)."""
    agencies = [
        {"id": f"{prefix}-{city}", "name": name.format(city=city.capitalize()), "kind": kind,
         "system": system, "delivery": {"mode": "pull"}}
        for kind, system, prefix, name in KINDS for city in CITIES
    ]
    routes = []
    for k in range(40):
        sender = agencies[k % 12]
        recipient = agencies[(k % 12 + OFFSETS[k // 12]) % 12]
        routes.append({
            "sender": sender["id"], "recipients": [recipient["id"]],
            "purposes": ["referral", "child_protection"],
            "statutory_bases": ["kkg-4"] if recipient["kind"] == "youth_office" else [],
        })
    return {"version": 1, "agencies": agencies, "routes": routes}


def seed_region(data_dir: Path) -> Seeded:
    """Route messages on every route of the region (1–3 per route) through the real router and
    consent gate: to youth offices as §4 KKG notices (overrides), else referrals about a client
    nobody registered (blocked). Creates the DPO user."""
    data_dir.mkdir(parents=True, exist_ok=True)
    routes_file = data_dir / "routes.yaml"
    routes_file.write_text(yaml.safe_dump(region_table(), allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=data_dir)
    table = load_route_table(routes_file)
    db = get_database(settings.effective_database_url)
    routing = Routing(routes=table, db=db, url=settings.effective_broker_url, prefix=PREFIX)
    template = _NOTICE
    try:
        router = routing.router()
        for k, route in enumerate(table.config.routes):
            recipient = route.recipients[0]
            statutory = bool(route.statutory_bases)
            for n in range(k % 3 + 1):
                envelope = template.model_copy(update={
                    "message_id": f"region-{k:02d}-{n}", "sender": route.senders[0],
                    "recipients": [recipient],
                    "purpose": Purpose.CHILD_PROTECTION if statutory else Purpose.REFERRAL,
                    "statutory": template.statutory if statutory else None,
                })
                router.route(envelope)
        deliver(routing)
    finally:
        routing.close()
    with db.session() as session:
        issue_key(session, name="dana-dpo", kind=PrincipalKind.USER, role=Role.DPO)
        set_password(session, name="dana-dpo", password=PASSWORD)
    return Seeded(data_dir, settings.effective_database_url, settings.effective_broker_url,
                  routes_file, client_id="", override_message_id="region-00-0")
