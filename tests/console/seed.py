"""Demo data for the console tests, made by the real pipeline (no row written by hand).

:func:`seed_demo` runs ``casebridge demo``'s scenario (consents, referral, blocked conference
invitation, youth-office case file, status update, withdrawal during delivery) into a data
directory; its last step is the job centre's statutory child-protection notification (rule 8),
so that the console has an override to review.
"""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path

from casebridge.adapters import get_adapter
from casebridge.consent.registry import ClientRegistry
from casebridge.db import get_database
from casebridge.gateway.cli.demo import PUSH_AGENCIES, deliver, run_scenario, scenario_clock
from casebridge.gateway.demo import sample_bytes
from casebridge.gateway.principals import PrincipalKind, Role, issue_key, set_password
from casebridge.routing.routes import demo_route_table, demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.standin import StandIn
from casebridge.settings import Settings

PREFIX = "casebridge-demo"
PASSWORD = "correct horse battery staple"
USERS = {"dana-dpo": Role.DPO, "adam-admin": Role.ADMIN, "desk-clerk": Role.CONSENT_DESK}
#: The demo's statutory transfer is the job centre's § 4 KKG notification (native sample).
NOTIFICATION = "jobcenter/kinderschutz-001.xml"
_NOTICE = get_adapter("jobcenter").parse(sample_bytes(NOTIFICATION), source="seed")[0]
assert _NOTICE.statutory is not None
JUSTIFICATION = _NOTICE.statutory.justification


@dataclass(frozen=True)
class Seeded:
    """Where the demo data lives and what it contains."""

    data_dir: Path
    database_url: str
    broker_url: str
    routes_file: Path
    client_id: str
    override_message_id: str

    def settings(self, **overrides: object) -> Settings:
        """Settings of a gateway on this data (route table, broker prefix, plain-http cookies)."""
        values: dict[str, object] = {
            "data_dir": self.data_dir, "database_url": self.database_url,
            "broker_url": self.broker_url, "broker_prefix": PREFIX,
            "route_table": self.routes_file, "console_cookie_secure": False,
            "log_format": "json", "log_level": "warning",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def clone(self, target: Path) -> Seeded:
        """A copy of the data in ``target`` (the databases must be closed: reset_databases)."""
        target.mkdir(parents=True, exist_ok=True)
        for item in self.data_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, target / item.name)
        return replace(
            self, data_dir=target,
            database_url=self.database_url.replace(str(self.data_dir), str(target)),
            broker_url=self.broker_url.replace(str(self.data_dir), str(target)),
            routes_file=target / self.routes_file.name,
        )


def seed_demo(data_dir: Path, database_url: str | None = None) -> Seeded:
    """Run the demo scenario and one statutory transfer into ``data_dir`` (or the database at
    ``database_url``, with the embedded broker in ``data_dir``); create users."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, database_url=database_url)
    routes_file = data_dir / "routes.yaml"
    routes_file.write_text(demo_route_table_text(), encoding="utf-8")
    stand_ins = {a: StandIn(a) for a in PUSH_AGENCIES}
    db = get_database(settings.effective_database_url)
    routing = Routing(routes=demo_route_table({a: s.url for a, s in stand_ins.items()}), db=db,
                      url=settings.effective_broker_url, prefix=PREFIX, clock=scenario_clock())
    try:
        with redirect_stdout(io.StringIO()):
            run_scenario(routing, stand_ins, settings)
    finally:
        routing.close()
        for stand_in in stand_ins.values():
            stand_in.close()
    with db.session() as session:
        for name, role in USERS.items():
            issue_key(session, name=name, kind=PrincipalKind.USER, role=role)
            set_password(session, name=name, password=PASSWORD)
    client_id = ClientRegistry(db).find(
        "urn:casebridge:id:jobcenter-duisburg:kundennummer", "962D123456")
    assert client_id is not None
    return Seeded(data_dir, settings.effective_database_url, settings.effective_broker_url,
                  routes_file, client_id, _NOTICE.message_id)


# --- incidents: a dead letter, a forged sender, a refused message ------------------------------

FORGED_SENDER = "sozialamt-duisburg"
UNKNOWN_RECIPIENT = "jobcenter-essen"


def add_incidents(seeded: Seeded) -> None:
    """Append, by the real components, one of each incident the DPO's incidents page lists:

    - a dead letter: a second child-protection notice, refused (422) by the youth office's
      endpoint, dead-lettered by the real worker;
    - a forged sender: the job centre's key posts a referral naming the social office as sender
      (the gateway answers 403 and records it);
    - a refused message: the job centre posts a referral to an agency on no route (NoRoute).
    """
    from fastapi.testclient import TestClient

    from casebridge.gateway.app import create_app

    db = get_database(seeded.database_url)
    youth = StandIn("jugendamt-duisburg")
    youth.mode = "refuse"
    # the job centre hears of the dead letter (sender feedback, a message of its own)
    centre = StandIn("jobcenter-duisburg")
    routing = Routing(
        routes=demo_route_table({"jugendamt-duisburg": youth.url,
                                 "jobcenter-duisburg": centre.url}),
        db=db, url=seeded.broker_url, prefix=PREFIX)
    try:
        notice = _NOTICE.model_copy(update={"message_id": "kinderschutz-2026-0002"})
        routing.router().route(notice)
        counts = deliver(routing)
        assert counts.get("dead") == 1, counts
    finally:
        routing.close()
        youth.close()
        centre.close()
    with db.session() as session:
        key = issue_key(session, name="jobcenter-duisburg", kind=PrincipalKind.AGENCY,
                        role=Role.AGENCY).secret
    referral = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    forged = referral.replace('Absender dienststelle="jobcenter-duisburg"',
                              f'Absender dienststelle="{FORGED_SENDER}"')
    nowhere = referral.replace('Empfaenger dienststelle="suchtberatung-diakonie-du"',
                               f'Empfaenger dienststelle="{UNKNOWN_RECIPIENT}"')
    assert forged != referral and nowhere != referral
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    with TestClient(create_app(seeded.settings()), raise_server_exceptions=True) as client:
        assert client.post("/v1/inbound/jobcenter", content=forged.encode(),
                           headers=headers).status_code == 403
        refused = client.post("/v1/inbound/jobcenter", content=nowhere.encode(), headers=headers)
        assert refused.status_code in (403, 404, 409, 422), refused.text
