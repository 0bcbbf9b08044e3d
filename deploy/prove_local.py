# ruff: noqa: S603, S607 - runs the fixed tools rabbitmqctl and casebridge, never user input
"""Prove the production topology on this machine: real RabbitMQ, real PostgreSQL, real processes.

``python deploy/prove_local.py`` (or ``deploy/prove-local.sh``) creates a dedicated RabbitMQ user
and vhost and a dedicated PostgreSQL database, writes a production settings file
(``CASEBRIDGE_ENVIRONMENT=production``, secrets in ``*_FILE`` files), migrates with
``casebridge db upgrade``, provisions agency keys and the sample consents with the CLI, starts two
gateways (``casebridge serve``) and two workers (``casebridge worker``) as separate processes,
posts the demo samples to the gateways over HTTP with the agencies' keys, waits until every queued
message has reached its recipient (stand-in HTTP endpoints on 127.0.0.1 for the push agencies,
the gateway's outbox for the pull agency), checks that nothing arrived twice, that the status
update moved the referral, and that ``casebridge audit verify`` accepts the chain -- then removes
everything it created. Exit 0 when all checks hold.

The sample consents are valid from November 2026 to February 2027; outside that window the
transfers are (correctly) blocked and the proof reports it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg import sql

from casebridge.canonical_model import CLIENT_ID_SYSTEM
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.standin import StandIn

HERE = Path(__file__).resolve().parent
CASEBRIDGE = str(Path(sys.executable).parent / "casebridge")
PG_ADMIN = os.environ.get("PROVE_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
REDIS_URL = os.environ.get("PROVE_REDIS_URL", "redis://127.0.0.1:6379/0")
PULL_AGENCY = "suchtberatung-diakonie-du"

#: (sample, adapter system, sending agency), in the order of the demo's story.
TRAFFIC = (
    ("jobcenter/zuweisung-001.xml", "jobcenter", "jobcenter-duisburg"),
    ("sozialamt/fallmitteilung-001.xml", "sozialamt", "sozialamt-duisburg"),
    ("jugendamt/fall-001.json", "jugendamt", "jugendamt-duisburg"),
    ("provider-fhir/task-update-001.json", "provider-fhir", PULL_AGENCY),
)
MEDIA = {"jobcenter": "application/xml", "sozialamt": "application/xml",
         "jugendamt": "application/json", "provider-fhir": "application/fhir+json"}


def log(text: str) -> None:
    """One progress line."""
    print(f"[prove] {text}", flush=True)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl (the broker's own administration tool)."""
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Proof:
    """What the run observed; ``problems`` empty means the topology is proven."""

    posted: int = 0
    queued: int = 0
    not_sent: int = 0
    delivered_push: int = 0
    delivered_outbox: int = 0
    duplicates: int = 0
    referral_status: str = ""
    queue_types: dict[str, str] = field(default_factory=dict)
    audit_verify: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """All checks held."""
        return not self.problems


class Topology:
    """The resources and processes of one proof run, torn down by :meth:`close`."""

    def __init__(self, workdir: Path, gateways: int, workers: int) -> None:
        suffix = secrets.token_hex(4)
        self.workdir = workdir
        self.n_gateways, self.n_workers = gateways, workers
        self.vhost = f"casebridge_prove_{suffix}"
        self.mq_user = f"casebridge_prove_{suffix}"
        # Hex, not urlsafe: a password starting with '-' is read by rabbitmqctl as an option.
        self.mq_password = secrets.token_hex(24)
        self.database = f"casebridge_prove_{suffix}"
        self.db_user = f"casebridge_prove_{suffix}"
        self.db_password = secrets.token_urlsafe(24)
        self.stand_ins: dict[str, StandIn] = {}
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.gateway_urls: list[str] = []
        self.env: dict[str, str] = {}
        self._created: list[str] = []

    # --- resources ------------------------------------------------------------------------------

    def create_broker_and_database(self) -> None:
        """A dedicated RabbitMQ user and vhost, a dedicated PostgreSQL role and database."""
        rabbitmqctl("add_vhost", self.vhost)
        self._created.append("vhost")
        rabbitmqctl("add_user", self.mq_user, self.mq_password)
        self._created.append("user")
        rabbitmqctl("set_permissions", "-p", self.vhost, self.mq_user, ".*", ".*", ".*")
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.db_user), sql.Literal(self.db_password)))
            self._created.append("role")
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(self.database), sql.Identifier(self.db_user)))
            self._created.append("database")
        log(f"created RabbitMQ vhost/user {self.vhost} and PostgreSQL database {self.database}")

    def write_settings(self) -> None:
        """The production settings file, the secret files, and the route table."""
        secret_dir = self.workdir / "secrets"
        secret_dir.mkdir(mode=0o700)
        db_url = (f"postgresql+psycopg://{self.db_user}:{self.db_password}"
                  f"@127.0.0.1:5432/{self.database}")
        broker_url = f"amqp://{self.mq_user}:{self.mq_password}@127.0.0.1:5672/{self.vhost}"
        for name, value in (("database_url", db_url), ("broker_url", broker_url)):
            path = secret_dir / name
            path.write_text(value + "\n")
            path.chmod(0o600)
        table = yaml.safe_load((HERE / "config" / "routes.yaml").read_text())
        signing = secret_dir / "signing_secret"
        signing.write_text("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
        signing.chmod(0o600)
        for agency in table["agencies"]:
            if agency["delivery"]["mode"] == "push":
                stand_in = StandIn(agency["id"])
                self.stand_ins[agency["id"]] = stand_in
                # the stand-ins listen on loopback over plain http, which production refuses
                # unless the route table allows it for that recipient
                agency["delivery"].update(url=stand_in.url, allow_insecure_http=True,
                                          signing_secret_files=[str(signing)])
        routes = self.workdir / "routes.yaml"
        routes.write_text(yaml.safe_dump(table, sort_keys=False))
        env_file = self.workdir / "casebridge.env"
        env_file.write_text(
            "CASEBRIDGE_ENVIRONMENT=production\n"
            f"CASEBRIDGE_ROUTE_TABLE={routes}\n"
            f"CASEBRIDGE_DATA_DIR={self.workdir / 'data'}\n"
            "CASEBRIDGE_LOG_FORMAT=json\n"
            # the gateways share their failed-login counters, as in production; this machine's
            # Redis has no password (a production one has, in CASEBRIDGE_RATE_LIMIT_STORAGE_FILE)
            f"CASEBRIDGE_RATE_LIMIT_STORAGE={REDIS_URL}\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
        self.env.update({
            "CASEBRIDGE_ENV_FILE": str(env_file),
            "CASEBRIDGE_DATABASE_URL_FILE": str(secret_dir / "database_url"),
            "CASEBRIDGE_BROKER_URL_FILE": str(secret_dir / "broker_url"),
        })

    # --- commands and processes -----------------------------------------------------------------

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        """Run one casebridge command with the production settings; its stdout."""
        result = subprocess.run([CASEBRIDGE, *args], env=self.env, input=stdin,
                                capture_output=True, timeout=120, cwd=self.workdir)
        if result.returncode != 0:
            raise RuntimeError(f"casebridge {args[0]} {args[1] if len(args) > 1 else ''} exited "
                               f"{result.returncode}: {result.stderr.decode()[-800:]}")
        return result.stdout.decode()

    def start(self, name: str, *args: str) -> None:
        """Start a long-running casebridge process, its output in a log file."""
        out = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen([CASEBRIDGE, *args], env=self.env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=self.workdir)
        self.processes.append((name, proc))

    def start_processes(self) -> None:
        """Gateways and workers, each a process of its own as in a deployment."""
        for i in range(self.n_gateways):
            port = free_port()
            self.start(f"gateway-{i + 1}", "serve", "--host", "127.0.0.1", "--port", str(port))
            self.gateway_urls.append(f"http://127.0.0.1:{port}")
        for i in range(self.n_workers):
            self.start(f"worker-{i + 1}", "worker")
        deadline = time.monotonic() + 60
        for url in self.gateway_urls:
            while True:
                self.check_alive()
                with suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}/health/ready did not become ready")
                time.sleep(0.3)
        log(f"{self.n_gateways} gateways ready ({', '.join(self.gateway_urls)}), "
            f"{self.n_workers} workers started")

    def queue_types(self) -> dict[str, str]:
        """Queue name -> type in the proof's vhost, as the broker reports them."""
        listing = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "type",
             "--no-table-headers"], check=True, capture_output=True, text=True, timeout=60)
        return dict(line.split("\t")[:2] for line in listing.stdout.splitlines() if "\t" in line)

    def check_alive(self) -> None:
        """Fail early (with its log) if a process died."""
        for name, proc in self.processes:
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def close(self) -> None:
        """Stop the processes (SIGTERM, as an orchestrator would), remove what was created."""
        for _name, proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stand_in in self.stand_ins.values():
            stand_in.close()
        if "database" in self._created or "role" in self._created:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                if "database" in self._created:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                    sql.Identifier(self.db_user)))
        if "user" in self._created:
            rabbitmqctl("delete_user", self.mq_user)
        if "vhost" in self._created:
            rabbitmqctl("delete_vhost", self.vhost)
        log("removed the processes, the database, the vhost and the broker user")


def provision(top: Topology) -> dict[str, str]:
    """Schema, agency keys, the sample consents and the provider's client-id link."""
    log(top.cli("db", "upgrade").strip())
    keys = {}
    for _sample, _system, agency in TRAFFIC:
        if agency not in keys:
            keys[agency] = top.cli("keys", "issue", agency, "--label", "prove-local").strip()
    for name in ("consent-fhir/consent-self-001.json", "consent-fhir/consent-guardian-001.json"):
        top.cli("consent", "import", "-", stdin=sample_bytes(name))
    scenario = files("casebridge.gateway.demo").joinpath("scenario")
    top.cli("consent", "import", "-",
            stdin=scenario.joinpath("consent-report-back-001.json").read_bytes())
    client = json.loads(top.cli("clients", "show", "--identifier",
                                "urn:casebridge:id:jobcenter-duisburg:kundennummer=962D123456"))
    top.cli("clients", "link", client["client_id"], CLIENT_ID_SYSTEM, "c-7f3e9a", "--by", "prove")
    log(f"migrated, {len(keys)} agency keys issued, 3 consents imported, 1 identifier linked")
    return keys


def post(top: Topology, keys: dict[str, str], n: int, sample: str, system: str,
         sender: str, proof: Proof) -> dict[str, Any]:
    """POST one sample to gateway ``n % gateways`` as its sending agency."""
    url = f"{top.gateway_urls[n % len(top.gateway_urls)]}/v1/inbound/{system}"
    response = httpx.post(url, content=sample_bytes(sample), timeout=30, headers={
        "Authorization": f"Bearer {keys[sender]}", "Content-Type": MEDIA[system]})
    if response.status_code == 422 and response.json().get("code") == "nothing_sent":
        # wholly blocked at the door (e.g. no consent): answered, nothing queued
        proof.posted += 1
        for error in response.json()["errors"]:
            if error["detail"] == "block":  # {message_id}/{recipient}: its outcome
                proof.not_sent += 1
                log(f"{sample} -> {error['location'].rsplit('/', 1)[1]}: block, not sent")
        return {}
    if response.status_code != 202:
        proof.problems.append(f"{sample}: HTTP {response.status_code} {response.text[:300]}")
        return {}
    body: dict[str, Any] = response.json()
    proof.posted += 1
    for message in body["messages"]:
        for r in message["recipients"]:
            proof.queued += r["queued"]
            proof.not_sent += not r["queued"]
            log(f"{sample} -> {r['recipient']}: {r['outcome']}, "
                f"{'queued' if r['queued'] else 'not sent'}")
    return body


def outbox(top: Topology, key: str, *, ack: bool) -> int:
    """Pending items of the pull agency's outbox (fetched and acknowledged if ``ack``)."""
    base = top.gateway_urls[0]
    auth = {"Authorization": f"Bearer {key}"}
    items = httpx.get(f"{base}/v1/outbox", headers=auth, timeout=10).json()["items"]
    if ack:
        for item in items:
            httpx.get(f"{base}/v1/outbox/{item['item_id']}", headers=auth, timeout=10)
            httpx.post(f"{base}/v1/outbox/{item['item_id']}/ack", headers=auth, timeout=10)
    return len(items)


def wait_for(top: Topology, count: int, key: str, fetched: int, timeout: float = 60) -> None:
    """Until ``count`` deliveries (push received + outbox items ever seen) or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        top.check_alive()
        pushed = sum(len(s.received) for s in top.stand_ins.values())
        if pushed + fetched + outbox(top, key, ack=False) >= count:
            return
        time.sleep(0.2)


def run(top: Topology) -> Proof:
    """The traffic and the checks."""
    proof = Proof()
    started = time.monotonic()
    keys = provision(top)
    top.start_processes()
    fetched = 0
    referral_id = ""
    for n, (sample, system, sender) in enumerate(TRAFFIC):
        if sender == PULL_AGENCY:
            # The provider answers after it fetched the referral from its outbox.
            wait_for(top, proof.queued, keys[PULL_AGENCY], fetched)
            fetched += outbox(top, keys[PULL_AGENCY], ack=True)
        body = post(top, keys, n, sample, system, sender, proof)
        if sample.endswith("zuweisung-001.xml") and body:
            referral_id = body["message_ids"][0]
    wait_for(top, proof.queued, keys[PULL_AGENCY], fetched)
    time.sleep(1.5)  # anything delivered twice would arrive now
    fetched += outbox(top, keys[PULL_AGENCY], ack=True)
    proof.delivered_push = sum(len(s.received) for s in top.stand_ins.values())
    proof.delivered_outbox = fetched
    proof.duplicates = sum(s.duplicates() for s in top.stand_ins.values())
    delivered = proof.delivered_push + proof.delivered_outbox
    if delivered != proof.queued:
        proof.problems.append(f"{proof.queued} messages queued, {delivered} delivered")
    if proof.duplicates:
        proof.problems.append(f"{proof.duplicates} duplicate deliveries")
    if proof.queued == 0:
        proof.problems.append("nothing was released (are the sample consents valid today?)")
    if referral_id:
        view = httpx.get(f"{top.gateway_urls[-1]}/v1/referrals/{referral_id}", timeout=10,
                         headers={"Authorization": f"Bearer {keys['jobcenter-duisburg']}"})
        proof.referral_status = view.json().get("status", f"HTTP {view.status_code}")
        if proof.referral_status == "requested":
            proof.problems.append("the provider's status update did not move the referral")
    proof.queue_types = top.queue_types()
    if not proof.queue_types or set(proof.queue_types.values()) != {"quorum"}:
        proof.problems.append(f"not every queue is a quorum queue: {proof.queue_types}")
    top.check_alive()
    try:
        proof.audit_verify = top.cli("audit", "verify").strip().splitlines()[-1]
    except RuntimeError as exc:
        proof.problems.append(f"audit verify failed: {exc}")
    proof.seconds = round(time.monotonic() - started, 1)
    return proof


@contextmanager
def topology(gateways: int = 2, workers: int = 2, keep: bool = False) -> Iterator[Topology]:
    """Create, yield and always tear down one proof topology."""
    workdir = Path(tempfile.mkdtemp(prefix="casebridge-prove-"))
    top = Topology(workdir, gateways, workers)
    try:
        top.create_broker_and_database()
        top.write_settings()
        yield top
    finally:
        top.close()
        if keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the proof, print the findings, exit 0 if proven."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=2, help="gateway processes (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and settings")
    args = parser.parse_args(argv)
    with topology(args.gateways, args.workers, args.keep) as top:
        proof = run(top)
    for key, value in proof.__dict__.items():
        if key != "problems":
            log(f"{key}: {value}")
    for problem in proof.problems:
        log(f"PROBLEM: {problem}")
    log("PROVEN" if proof.ok else "NOT PROVEN")
    return 0 if proof.ok else 1


if __name__ == "__main__":
    sys.exit(main())
