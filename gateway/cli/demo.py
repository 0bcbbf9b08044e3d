"""``casebridge demo``: the README's main command -- the whole referral exchange in one process.

It runs on the embedded defaults (a SQLite store and the SQLite-backed broker) in a temporary data
directory unless ``CASEBRIDGE_DATA_DIR``/``CASEBRIDGE_DATABASE_URL``/``CASEBRIDGE_BROKER_URL`` are
set, with stand-in recipient endpoints on 127.0.0.1 for the push agencies and the addiction
counselling service pulling from its outbox. It records the sample clients' consents, links the
provider's client id to the client as a case worker would (never by guessing), feeds the agencies'
interface samples through the gateway's pipeline, lets a worker deliver, and prints what each
recipient received, what was withheld and why, the status flow back, one blocked transfer, one
withdrawal that stops a queued message, the consent desk confirming that the mother in the youth
office's file is the job centre's client and printing her access report, and finally verifies
the audit chain.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import typer
from sqlalchemy import select

from casebridge.adapters import get_adapter
from casebridge.canonical_model import CLIENT_ID_SYSTEM
from casebridge.consent.audit import AuditTrail
from casebridge.consent.registry import ClientRegistry
from casebridge.consent.store import ConsentStore
from casebridge.consent.subjects import SubjectIndex
from casebridge.db import Database, get_database
from casebridge.gateway.access_report import produce_report, render_text
from casebridge.gateway.api.persons import confirm_link
from casebridge.gateway.cli import app
from casebridge.gateway.console.data import overrides
from casebridge.gateway.demo import sample_bytes
from casebridge.logging import configure_logging
from casebridge.routing.pipeline import Accepted
from casebridge.routing.routes import demo_route_table, demo_route_table_text
from casebridge.routing.runtime import Routing
from casebridge.routing.standin import Received, StandIn
from casebridge.routing.store import DeliveryRow
from casebridge.routing.worker import Worker
from casebridge.settings import Settings

PUSH_AGENCIES = ("jobcenter-duisburg", "sozialamt-duisburg", "jugendamt-duisburg",
                 "schuldnerberatung-caritas-du")
PULL_AGENCY = "suchtberatung-diakonie-du"
DEMO_PREFIX = "casebridge-demo"
KUNDENNUMMER = "urn:casebridge:id:jobcenter-duisburg:kundennummer"
#: The sample consents run from November 2026 to February 2027; outside that window the demo
#: plays at this moment so that it tells the same story whenever it is run.
SCENARIO_TIME = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
VALID_WINDOW = (datetime(2026, 11, 22, tzinfo=UTC), datetime(2027, 2, 27, tzinfo=UTC))


def say(text: str = "", *, indent: int = 0) -> None:
    """One line of demo output."""
    typer.echo(" " * indent + text)


def heading(n: int, text: str) -> None:
    """A numbered section."""
    typer.secho(f"\n{n}. {text}", bold=True)


def scenario_clock() -> Callable[[], datetime]:
    """Real time if the sample consents are valid now, else the fixed scenario time + elapsed."""
    now = datetime.now(UTC)
    if VALID_WINDOW[0] <= now <= VALID_WINDOW[1]:
        return lambda: datetime.now(UTC)
    start = time.monotonic()
    return lambda: SCENARIO_TIME + timedelta(seconds=time.monotonic() - start)


def scenario_bytes(name: str) -> bytes:
    """Demo-only data beside the samples (the provider's report-back consent)."""
    return files("casebridge.gateway.demo").joinpath("scenario", name).read_bytes()


def show_outcome(accepted: Accepted) -> None:
    """Per recipient: queued or not, what was released, what was withheld and why."""
    say(f"message {accepted.message_id} ({accepted.message_type}) from {accepted.sender}",
        indent=2)
    for r in accepted.recipients:
        state = "queued" if r.queued else "NOT SENT"
        say(f"-> {r.recipient}: {r.outcome.upper()}, {state}", indent=4)
        if r.released:
            say(f"released: {', '.join(r.released)}", indent=8)
        for w in r.withheld:
            say(f"withheld: {w['category']:<17} because {w['reason']}", indent=8)


def show_received(agency: str, system: str, item: Received | tuple[str, bytes]) -> None:
    """What one recipient got: its native format, the categories in it, the first lines."""
    media, body = (item.media_type, item.body) if isinstance(item, Received) else item
    try:
        envs = get_adapter(system).parse(body, source=agency)
        cats = sorted({str(c) for e in envs for c in e.categories})
        what = f"categories {', '.join(cats)}"
    except Exception as exc:  # noqa: BLE001 - the display must not stop the demo
        what = f"(could not be read back: {type(exc).__name__})"
    say(f"{agency} received {len(body)} bytes of {media}: {what}", indent=4)
    text = body.decode("utf-8", errors="replace")
    if "json" in media:
        try:
            text = json.dumps(json.loads(body), indent=1, ensure_ascii=False)
        except ValueError:
            pass
    lines = text.splitlines()
    for line in lines[:6]:
        say(f"| {line[:96]}", indent=6)
    if len(lines) > 6:
        say(f"| ... ({len(lines) - 6} more lines)", indent=6)


def deliver(routing: Routing) -> dict[str, int]:
    """Run one worker until every queue is empty; return its counts."""
    worker: Worker = routing.worker()
    try:
        worker.run(idle_timeout=0.6)
    finally:
        worker.close()
    return dict(worker.counts)


def show_kept(tmp: str, db: Database) -> None:
    """How to look at what ``demo --keep`` left behind with the ordinary commands."""
    routes = Path(tmp) / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    client = ClientRegistry(db).find(KUNDENNUMMER, "962D123456")
    say(f"\ndata kept in {tmp}; inspect it with these settings in your shell:")
    for name, value in (("DATA_DIR", tmp), ("ROUTE_TABLE", str(routes)),
                        ("BROKER_PREFIX", DEMO_PREFIX)):
        say(f"export CASEBRIDGE_{name}={shlex.quote(value)}", indent=2)
    say("then, for example:")
    say("casebridge audit verify", indent=2)
    if client is not None:
        say(f"casebridge audit report --client {client} --format text", indent=2)
    say("casebridge status JC-DU-2026-000123", indent=2)
    say("casebridge keys issue --user demo-dpo --role dpo   # a key for the API and console",
        indent=2)
    say("casebridge serve                                   # http://127.0.0.1:8000/console/",
        indent=2)


def _data_dir() -> tuple[Settings, str | None]:
    configured = any(os.environ.get(f"CASEBRIDGE_{k}") for k in
                     ("DATA_DIR", "DATABASE_URL", "BROKER_URL"))
    if configured:
        return Settings(), None
    tmp = tempfile.mkdtemp(prefix="casebridge-demo-")
    return Settings(data_dir=Path(tmp)), tmp


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data directory."),
) -> None:
    """Run the whole referral exchange on the embedded defaults and show each step."""
    settings, tmp = _data_dir()
    if "CASEBRIDGE_LOG_LEVEL" not in os.environ:
        # The demo narrates every step itself; info-level log lines would only interleave.
        configure_logging(fmt=settings.log_format, level="warning", force=True)
    stand_ins = {a: StandIn(a) for a in PUSH_AGENCIES}
    routes = demo_route_table({a: s.url for a, s in stand_ins.items()})
    db = get_database(settings.effective_database_url)
    routing = Routing(routes=routes, db=db, url=settings.effective_broker_url,
                      prefix=DEMO_PREFIX, clock=scenario_clock())
    try:
        run_scenario(routing, stand_ins, settings, access_report=True)
    finally:
        routing.close()
        for s in stand_ins.values():
            s.close()
        if tmp is not None and not keep:
            db.dispose()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            show_kept(tmp, db)


def run_scenario(
    routing: Routing, stand_ins: dict[str, StandIn], settings: Settings, *,
    access_report: bool = False,
) -> None:
    """The demo's story (see the module docstring); ``access_report`` adds the consent desk's
    confirmation of the mother and her report (the demo shows it; seeded test data leaves the
    confirmation to the tests)."""
    say("casebridge demo -- referral exchange of the Duisburg pilot region")
    say(f"store {settings.effective_database_url.split('///')[0]}///…, broker "
        f"{settings.effective_broker_url.split('///')[0]}///…, "
        f"{len(stand_ins)} push recipients on 127.0.0.1, {PULL_AGENCY} pulls its outbox")
    store, registry = ConsentStore(routing.db), ClientRegistry(routing.db)
    router = routing.router()
    clock = routing.clock

    heading(1, "Consents recorded at the agencies' consent desks (FHIR R4 Consent)")
    for rel, source in (("consent-fhir/consent-self-001.json", "sample"),
                        ("consent-fhir/consent-guardian-001.json", "sample"),
                        ("consent-report-back-001.json", "scenario")):
        raw = sample_bytes(rel) if source == "sample" else scenario_bytes(rel)
        for res in store.import_fhir(raw, source=rel):
            d = store.require(res.consent_id).directive
            say(f"{d.consent_id} (client {res.client_id}): {', '.join(sorted(d.disclosers))} -> "
                f"{', '.join(sorted(d.recipients))} for {', '.join(sorted(map(str, d.purposes)))}"
                f"; categories {', '.join(sorted(map(str, d.categories or []))) or 'all ordinary'}",
                indent=2)

    heading(2, "A case worker links the provider's client id to the client (never guessed)")
    client = registry.find(KUNDENNUMMER, "962D123456")
    if client is not None:
        registry.link(client, CLIENT_ID_SYSTEM, "c-7f3e9a", by="demo case worker")
        say(f"{CLIENT_ID_SYSTEM} c-7f3e9a -> client {client} (the client the job centre's "
            "Kundennummer 962D123456 belongs to)", indent=2)

    heading(3, "Job centre refers the client to addiction counselling (Zuweisung, XML)")
    [referral] = router.submit(sample_bytes("jobcenter/zuweisung-001.xml"), system="jobcenter",
                               sender="jobcenter-duisburg")
    show_outcome(referral)
    say(f"worker: {deliver(routing)}", indent=2)
    outbox = routing.outbox()
    for item in outbox.pending(PULL_AGENCY):
        meta, body = outbox.fetch(PULL_AGENCY, item.item_id)
        show_received(PULL_AGENCY, "provider-fhir", (meta.media_type, body))
        outbox.ack(PULL_AGENCY, item.item_id)
        say(f"{PULL_AGENCY} fetched outbox item {item.item_id} and acknowledged it", indent=4)

    heading(4, "Social office invites to a case conference -- a BLOCKED transfer")
    [blocked] = router.submit(sample_bytes("sozialamt/fallmitteilung-001.xml"),
                              system="sozialamt", sender="sozialamt-duisburg")
    show_outcome(blocked)
    say("no consent lets the social office disclose: nothing was published, the sender is "
        "told which categories were withheld and why", indent=2)

    heading(5, "Youth office shares its case file for the conference (JSON, minor client)")
    [fall] = router.submit(sample_bytes("jugendamt/fall-001.json"), system="jugendamt",
                           sender="jugendamt-duisburg")
    show_outcome(fall)
    say(f"worker: {deliver(routing)}", indent=2)
    for agency in ("jobcenter-duisburg", "sozialamt-duisburg"):
        for got in stand_ins[agency].received:
            if got.message_id == fall.message_id:
                show_received(agency, routes_system(routing, agency), got)

    heading(6, "The provider reports back (FHIR Task) -- the status flows to the job centre")
    [task] = router.submit(sample_bytes("provider-fhir/task-update-001.json"),
                           system="provider-fhir", sender=PULL_AGENCY)
    show_outcome(task)
    say(f"worker: {deliver(routing)}", indent=2)
    for got in stand_ins["jobcenter-duisburg"].received:
        if got.message_id == task.message_id:
            show_received("jobcenter-duisburg", "jobcenter", got)
    view = routing.referrals().require(referral.message_id)
    say(f"referral {referral.message_id}: requested -> {view.referral.status} "
        f"(reported by {task.sender} in {task.message_id}); answer was due "
        f"{view.due_at.date()}, overdue: {view.overdue(clock())}", indent=2)

    heading(7, "Youth office sends an update; the mother WITHDRAWS her consent while it waits")
    update = sample_bytes("jugendamt/fall-001.json").replace(
        b"2026-11-21T11:30:00+01:00", b"2026-11-24T08:10:00+01:00")
    [queued] = router.submit(update, system="jugendamt", sender="jugendamt-duisburg")
    show_outcome(queued)
    if store.require("cons-ja-2026-0311").withdrawal is None:  # a kept store may have it
        store.withdraw("cons-ja-2026-0311", by="Ayşe Yılmaz (mother)", at=clock())
    say("consent cons-ja-2026-0311 withdrawn before the worker picked the message up", indent=2)
    counts = deliver(routing)
    say(f"worker: {counts} -- re-checked at delivery, stopped, audited", indent=2)
    late = [r for s in stand_ins.values() for r in s.received if r.message_id == queued.message_id]
    say(f"recipients received {len(late)} copies of the update", indent=2)
    with routing.db.session() as session:
        for row in session.scalars(select(DeliveryRow).where(
                DeliveryRow.message_id == queued.message_id)):
            say(f"-> {row.recipient}: {row.state} ({row.reason})", indent=4)

    heading(8, "Job centre notifies the youth office of a child at risk (§ 4 KKG, no consent)")
    [notice] = router.submit(sample_bytes("jobcenter/kinderschutz-001.xml"), system="jobcenter",
                             sender="jobcenter-duisburg")
    show_outcome(notice)
    say(f"worker: {deliver(routing)}", indent=2)
    for got in stand_ins["jugendamt-duisburg"].received:
        if got.message_id == notice.message_id:
            show_received("jugendamt-duisburg", "jugendamt", got)
    for o in overrides(routing.db):
        if o.entry.message_id == notice.message_id and o.claim is not None:
            say(f"DPO console /console/overrides, entry #{o.entry.seq}: {o.entry.sender} -> "
                f"{o.entry.recipient} under {o.entry.legal_basis}, justification "
                f"sha256 {o.claim.justification_sha256[:16]}…, awaiting review", indent=2)

    if access_report:
        heading(9, "The consent desk finds the mother and prints her access report (Art. 15)")
        show_mother_report(routing)

    heading(10 if access_report else 9, "Audit trail")
    trail = AuditTrail(routing.db)
    for e in trail.entries():
        say(f"#{e.seq:<3} {e.kind:<21} {e.stage or '':<9} {e.sender or '':<26} -> "
            f"{e.recipient or '':<26} {e.outcome or ''}", indent=2)
    result = trail.verify()
    dupes = sum(s.duplicates() for s in stand_ins.values())
    say(f"audit chain: {'VERIFIED' if result.ok else 'BROKEN'} ({trail.count()} entries); "
        f"duplicate deliveries: {dupes}", indent=2)
    if not result.ok:
        raise typer.Exit(1)


def show_mother_report(routing: Routing) -> None:
    """Find the mother by name and birth date, confirm that the person in the youth office's
    file is the job centre's client (a deliberate act), then print her report."""
    index = SubjectIndex(routing.db)
    found = index.by_name("Yılmaz, Ayşe", date(1988, 4, 12))
    for m in found:
        where = ("registered client" if m.kind == "client" else
                 f"seen as {m.role} in {m.seen_by}'s file of client {m.scope_client_id}")
        say(f"candidate {m.ref}: {where}", indent=2)
    clients = [m.ref for m in found if m.kind == "client"]
    seen = [m for m in found if m.kind == "subject" and m.client_id is None]
    if len(clients) == 1:
        for m in seen:
            confirm_link(routing.db, m.ref, clients[0], by="demo consent desk", via="demo")
            say(f"consent desk confirms: {m.ref} (the mother in the youth office's file) is "
                f"client {clients[0]} -- checked in person, recorded in the audit trail",
                indent=2)
    client = index.by_identifier(KUNDENNUMMER, "962D123456")
    client_id = next(m.ref for m in client if m.kind == "client")
    produced = produce_report(routing.db, client_id, by="demo consent desk", via="demo",
                              fmt="text", lang="de", routes=routing.routes)
    for line in render_text(produced.text).splitlines():
        say(line, indent=4)


def routes_system(routing: Routing, agency: str) -> str:
    """The adapter system of an agency."""
    return routing.routes.agency(agency).system
