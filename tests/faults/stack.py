"""The production stack of one fault scenario, as separate processes, and its ledger.

A :class:`Stack` runs on the suite's private PostgreSQL and RabbitMQ (a database and a vhost of
its own): production settings (``CASEBRIDGE_ENVIRONMENT=production``, the production route table
``deploy/config/routes.yaml`` with its retry policy, only the push URLs pointed at the recording
recipient), ``casebridge serve`` gateways and ``casebridge worker`` workers as processes, the
recording recipient (:mod:`tests.faults.recipient`) as a process. Agencies post over HTTP with
their keys, retrying as a sending system would (bounded in count and time).

:func:`ledger` then counts: what was answered 202 (queued and blocked per recipient), what the
recipient accepted (by message id), what is dead, what the audit trail holds -- and
:meth:`Ledger.assert_nothing_lost` asserts the suite's invariants.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_bytes
from typing import Any

import httpx
import yaml

from casebridge.consent.audit import AuditEntry, AuditTrail
from casebridge.db import get_database
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.store import DeliveryRow

REPO = Path(__file__).resolve().parents[2]
CASEBRIDGE = str(Path(sys.executable).parent / "casebridge")
RECIPIENT = str(Path(__file__).with_name("recipient.py"))
SENDER = "jugendamt-duisburg"
#: The youth office's case export goes to these two push agencies (the guardian's consent).
PUSH = ("jobcenter-duisburg", "sozialamt-duisburg")
GUARDIAN_CONSENT = "cons-ja-2026-0311"
Pair = tuple[str, str]  # (message id, recipient)


def case_exports(n: int, *, offset: int = 0) -> list[bytes]:
    """``n`` distinct youth-office case exports (distinct message ids), each for two recipients."""
    raw = sample_bytes("jugendamt/fall-001.json")
    out = []
    for i in range(offset, offset + n):
        stamp = f"2026-11-21T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        out.append(raw.replace(b"2026-11-21T11:30:00", stamp.encode()))
    return out


@dataclass
class Posted:
    """The sending agency's view of one message: its final answer and what it said."""

    index: int
    status: int = 0
    message_id: str = ""
    queued: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    tries: int = 0
    conflicts: int = 0  # 409 answers on the way
    unavailable: int = 0  # 503 answers and refused connections on the way
    errors: list[str] = field(default_factory=list)  # any other answer (500, 4xx)
    first_at: float = 0.0  # time.monotonic() of the first try
    answered_at: float = 0.0  # ... and of the final answer


class Stack:
    """Gateways, workers and the recipient of one scenario (see the module docstring)."""

    def __init__(self, workdir: Path, *, database_url: str, broker_url: str,
                 prefix: str = "casebridge") -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.broker_url = broker_url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, list[str]] = {}
        self.gateway_urls: dict[str, str] = {}
        self.recipient_url = ""
        self.key = ""
        self.vhost = ""  # the scenario's RabbitMQ virtual host
        secrets = workdir / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        for name, value in (("database_url", database_url), ("broker_url", broker_url)):
            (secrets / name).write_text(value + "\n")
            (secrets / name).chmod(0o600)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
        self.env.update({
            "CASEBRIDGE_ENVIRONMENT": "production",
            "CASEBRIDGE_DATABASE_URL_FILE": str(secrets / "database_url"),
            "CASEBRIDGE_BROKER_URL_FILE": str(secrets / "broker_url"),
            "CASEBRIDGE_BROKER_PREFIX": prefix,
            "CASEBRIDGE_ROUTE_TABLE": str(workdir / "routes.yaml"),
            "CASEBRIDGE_DATA_DIR": str(workdir / "data"),
            "CASEBRIDGE_LOG_FORMAT": "json",
            "CASEBRIDGE_LOG_LEVEL": "info",
        })

    # --- processes ------------------------------------------------------------------------------

    def start_recipient(self) -> None:
        """The recording recipient; the route table's push URLs point at it."""
        proc = subprocess.Popen([sys.executable, RECIPIENT, "--lifetime", "3600"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.processes["recipient"] = proc
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().strip())
        self.recipient_url = f"http://127.0.0.1:{port}"
        table = yaml.safe_load((REPO / "deploy" / "config" / "routes.yaml").read_text())
        signing = self.workdir / "signing_secret"
        signing.write_text("whsec_" + base64.b64encode(token_bytes(32)).decode())
        signing.chmod(0o600)
        for agency in table["agencies"]:
            if agency["delivery"]["mode"] == "push":
                # production refuses plain http unless allowed for a recipient on loopback, and
                # a push recipient without a signing secret
                agency["delivery"].update(url=f"{self.recipient_url}/{agency['id']}",
                                          allow_insecure_http=True,
                                          signing_secret_files=[str(signing)])
        (self.workdir / "routes.yaml").write_text(yaml.safe_dump(table, sort_keys=False))

    def cli(self, *args: str, stdin: bytes | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """One casebridge command with the production settings."""
        result = subprocess.run([CASEBRIDGE, *args], env=self.env, input=stdin,
                                capture_output=True, timeout=timeout, cwd=self.workdir)
        if check and result.returncode != 0:
            raise AssertionError(f"casebridge {' '.join(args[:2])} exited {result.returncode}: "
                                 f"{result.stderr.decode(errors='replace')[-1500:]}")
        return result

    def provision(self) -> None:
        """Schema, the sending agency's key, the sample consents (through the CLI)."""
        self.cli("db", "upgrade")
        self.key = self.cli("keys", "issue", SENDER, "--label", "faults").stdout.decode().strip()
        for name in ("consent-guardian-001.json", "consent-self-001.json"):
            self.cli("consent", "import", "-", stdin=sample_bytes(f"consent-fhir/{name}"))

    def _spawn(self, name: str) -> None:
        out = open(self.workdir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen([CASEBRIDGE, *self.args[name]], env=self.env,
                                                stdout=out, stderr=subprocess.STDOUT,
                                                cwd=self.workdir)
        out.close()

    def start_gateway(self, *names: str) -> None:
        """``casebridge serve`` on a free port each; returns once all answer ``/health/live``."""
        for name in names:
            if name not in self.args:
                port = free_port()
                self.args[name] = ["serve", "--host", "127.0.0.1", "--port", str(port)]
                self.gateway_urls[name] = f"http://127.0.0.1:{port}"
            self._spawn(name)
        for name in names:
            url = self.gateway_urls[name]
            wait_until(lambda u=url: _answers(f"{u}/health/live"), 90, f"{name} did not start",
                       alive=lambda n=name: self.alive(n))

    def start_worker(self, name: str, threads: int = 2) -> None:
        """``casebridge worker``."""
        self.args.setdefault(name, ["worker", "--threads", str(threads)])
        self._spawn(name)

    def alive(self, name: str) -> bool:
        """Whether process ``name`` runs."""
        return self.processes[name].poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL one process (by its pid) and reap it."""
        proc = self.processes[name]
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a process's log (for failure messages)."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def workers_alive(self) -> None:
        """Workers never exit on their own (item 2): fail with the log if one did."""
        for name, proc in self.processes.items():
            if name.startswith("worker") and proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n"
                                     f"{self.log_tail(name)}")

    def print_logs(self, chars: int = 4000) -> None:
        """The end of every process's log on stdout (pytest shows it for a failed test)."""
        for name in self.processes:
            if name != "recipient":
                errors = [line for line in self.log_tail(name, 10**7).splitlines()
                          if '"level": "error"' in line or "Error" in line][-20:]
                print(f"----- {name}.log: errors -----", *errors, sep="\n")
                print(f"----- {name}.log (end) -----\n{self.log_tail(name, chars)}")

    def close(self) -> None:
        """Finaliser: SIGTERM every process, SIGKILL what does not stop."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    # --- the recipient --------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every push the recipient got, with its answer."""
        result: list[dict[str, Any]] = httpx.get(f"{self.recipient_url}/_records",
                                                 timeout=10).json()
        return result

    def wait_delivering(self, count: int = 2, seconds: float = 120) -> None:
        """Until the recipient accepted ``count`` pushes: workers consume, messages flow."""
        wait_until(lambda: self.workers_alive() or sum(
            1 for r in self.records() if 200 <= r["status"] < 300) >= count, seconds,
            f"fewer than {count} deliveries")

    def inflight(self) -> int:
        """Pushes the recipient is answering right now."""
        return int(httpx.get(f"{self.recipient_url}/_inflight", timeout=10).json())

    def recipient_mode(self, mode: str) -> None:
        """``accept`` or ``fail`` (503 to every push)."""
        httpx.put(f"{self.recipient_url}/_mode", content=mode, timeout=10).raise_for_status()

    def recipient_delay(self, seconds: float) -> None:
        """Seconds each accepted push takes."""
        httpx.put(f"{self.recipient_url}/_delay", content=str(seconds),
                  timeout=10).raise_for_status()

    # --- the sending agency ---------------------------------------------------------------------

    def post(self, index: int, raw: bytes, *, deadline: float, gateways: list[str]) -> Posted:
        """POST one message until it is answered 202 (or 200, already routed) or the deadline;
        refused connections go to the next gateway, 503 and 409 are retried after a pause."""
        posted = Posted(index, first_at=time.monotonic())
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        while time.monotonic() < deadline and posted.tries < 400:
            url = self.gateway_urls[gateways[(index + posted.tries) % len(gateways)]]
            posted.tries += 1
            try:
                r = httpx.post(f"{url}/v1/inbound/jugendamt", content=raw, headers=headers,
                               timeout=30)
            except httpx.HTTPError:
                posted.unavailable += 1
                time.sleep(0.3)
                continue
            posted.status = r.status_code
            posted.answered_at = time.monotonic()
            if r.status_code in (200, 202):
                [message] = r.json()["messages"]
                posted.message_id = message["message_id"]
                for rec in message["recipients"]:
                    (posted.queued if rec["queued"] else posted.blocked).add(rec["recipient"])
                return posted
            if r.status_code == 409:
                posted.conflicts += 1
            elif r.status_code == 503:
                posted.unavailable += 1
            else:  # never expected; kept for the ledger, retried as a sending system would
                posted.errors.append(f"HTTP {r.status_code} {r.text[:300]}")
            time.sleep(min(float(r.headers.get("Retry-After", "1") or 1), 2.0))
        return posted

    def post_all(self, raws: list[bytes], *, threads: int = 4, seconds: float = 240,
                 spread: float = 0.0, gateways: list[str] | None = None) -> list[Posted]:
        """Post ``raws`` concurrently (``threads`` senders) to the gateways in turn; with
        ``spread`` the messages go out evenly over that many seconds (so a fault injected
        meanwhile meets messages before, during and after it)."""
        names = gateways or sorted(self.gateway_urls)
        started = time.monotonic()
        deadline = started + seconds

        def one(item: tuple[int, bytes]) -> Posted:
            index, raw = item
            time.sleep(max(0.0, started + spread * index / max(len(raws), 1) - time.monotonic()))
            return self.post(index, raw, deadline=deadline, gateways=names)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, enumerate(raws)))

    # --- what the store and the broker hold -----------------------------------------------------

    def deliveries(self) -> dict[Pair, str]:
        """(message id, recipient) -> delivery state in the store."""
        with get_database(self.database_url).session() as s:
            return {(r.message_id, r.recipient): r.state for r in s.query(DeliveryRow)}

    def audit(self) -> list[AuditEntry]:
        """The whole audit chain."""
        return list(AuditTrail(get_database(self.database_url)).entries())

    def dead_letters(self) -> list[dict[str, Any]]:
        """``casebridge dlq list --json``."""
        rows: list[dict[str, Any]] = json.loads(self.cli("dlq", "list", "--json").stdout or "[]")
        return rows

    def settle(self, pairs: Iterable[Pair], *, seconds: float, dead_ok: bool = False) -> None:
        """Wait until every pair was pushed 2xx, blocked at delivery (or dead, if ``dead_ok``)."""
        wanted = set(pairs)

        def done() -> bool:
            self.workers_alive()
            accepted = {(r["message_id"], r["agency"]) for r in self.records()
                        if 200 <= r["status"] < 300}
            states = self.deliveries()
            final = {"blocked", "dead"} if dead_ok else {"blocked"}
            rest = {p for p in wanted - accepted if states.get(p) not in final}
            return not rest

        wait_until(done, seconds, "not every queued message reached an end")
        time.sleep(1.5)  # anything pushed twice would arrive now


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


def wait_until(condition: Callable[[], bool], seconds: float, message: str, *,
               alive: Callable[[], bool] = lambda: True, every: float = 0.3) -> None:
    """Poll ``condition`` until true; AssertionError after ``seconds`` or if ``alive`` fails."""
    deadline = time.monotonic() + seconds
    while not condition():
        if not alive():
            raise AssertionError(f"{message} (the process exited)")
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {seconds:.0f} s")
        time.sleep(every)


def during(posted: list[Posted], start: float, end: float) -> int:
    """Messages in flight at some moment of the window [start, end] (a fault met them)."""
    return sum(1 for p in posted if p.first_at <= end and p.answered_at >= start)


def in_background(fn: Callable[[], Any]) -> threading.Thread:
    """Run ``fn`` on a daemon thread (the fault injector beside the load)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


@dataclass
class Ledger:
    """The counts of one scenario (one row of the results table) and what they are made of."""

    fault: str
    posted: int = 0
    answered: int = 0
    queued: set[Pair] = field(default_factory=set)
    blocked_inbound: set[Pair] = field(default_factory=set)
    delivered: set[Pair] = field(default_factory=set)
    blocked_delivery: set[Pair] = field(default_factory=set)
    pushes_2xx: Counter[Pair] = field(default_factory=Counter)
    dead: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    audit_ok: bool = False
    audit_output: str = ""
    entries: list[AuditEntry] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Pushes answered 2xx beyond the first, per (message id, recipient)."""
        return sum(n - 1 for n in self.pushes_2xx.values() if n > 1)

    def row(self) -> dict[str, Any]:
        """The results-table row."""
        return {"fault": self.fault, "posted": self.posted, "202": self.answered,
                "queued": len(self.queued), "delivered": len(self.delivered),
                "blocked": len(self.blocked_inbound) + len(self.blocked_delivery),
                "duplicates": self.duplicates, "dlq": len(self.dead),
                "audit verify": "ok" if self.audit_ok else "FAILED"}

    def assert_nothing_lost(self, *, dead_ok: bool = False, duplicates_allowed: int = 0,
                            conflicts_allowed: bool = True) -> None:
        """The suite's invariants (see the module docstring of tests/faults)."""
        assert not self.errors, f"answers other than 202/200/409/503: {self.errors[:3]}"
        assert self.answered == self.posted, f"{self.posted - self.answered} never answered 202"
        missing = sorted(self.queued - self.delivered - self.blocked_delivery)
        unasked = sorted(self.delivered - self.queued)
        assert not missing and not unasked, (
            f"queued but neither delivered nor blocked: {len(missing)} {missing[:5]}; "
            f"delivered but never queued: {unasked[:5]}")
        assert not self.delivered & self.blocked_delivery, "delivered and blocked"
        assert self.duplicates <= duplicates_allowed, (
            f"pushed twice with a 2xx: "
            f"{[(p, n) for p, n in self.pushes_2xx.items() if n > 1][:5]}")
        if not dead_ok:
            assert self.dead == [], f"dead letters left: {self.dead[:3]}"
        if not conflicts_allowed:
            assert self.conflicts == 0, f"{self.conflicts} posts answered 409 (message id locked)"
        assert self.audit_ok, f"audit verify failed: {self.audit_output}"
        self.assert_audit_matches()

    def assert_audit_matches(self) -> None:
        """One inbound decision per (message, recipient) decided; every delivery and every
        block at delivery has its decision entry; nothing decided that was not posted."""
        inbound = Counter((e.message_id, e.recipient) for e in self.entries
                          if e.kind == "decision" and e.stage == "inbound")
        decided = self.queued | self.blocked_inbound
        assert set(inbound) == decided, (
            f"inbound decisions without a message: {sorted(set(inbound) - decided)[:3]}, "
            f"messages without one: {sorted(decided - set(inbound))[:3]}")
        twice = {p: n for p, n in inbound.items() if n > 1}
        assert not twice, f"decided twice at the door: {list(twice.items())[:5]}"
        later: dict[Pair, list[str]] = {}
        for e in self.entries:
            if e.kind == "decision" and e.stage != "inbound" and e.message_id and e.recipient:
                later.setdefault((e.message_id, e.recipient), []).append(str(e.outcome))
        for pair in self.delivered:
            assert any(o != "block" for o in later.get(pair, [])), f"{pair}: delivered unaudited"
        for pair in self.blocked_delivery:
            assert later.get(pair, [""])[-1] == "block", f"{pair}: blocked without a decision"
        assert set(later) <= self.queued, "a decision at delivery for a message never queued"


def ledger(stack: Stack, fault: str, posted: list[Posted]) -> Ledger:
    """Count one scenario: the senders' answers, the recipient's records, store, DLQ, audit."""
    led = Ledger(fault, posted=len(posted))
    for p in posted:
        if p.status in (200, 202):
            led.answered += 1
            led.queued |= {(p.message_id, r) for r in p.queued}
            led.blocked_inbound |= {(p.message_id, r) for r in p.blocked}
        led.conflicts += p.conflicts
        led.errors += p.errors
    for r in stack.records():
        if 200 <= r["status"] < 300:
            led.pushes_2xx[(r["message_id"], r["agency"])] += 1
    led.delivered = set(led.pushes_2xx)
    led.blocked_delivery = {p for p, s in stack.deliveries().items() if s == "blocked"}
    led.dead = stack.dead_letters()
    verify = stack.cli("audit", "verify", check=False)
    led.audit_ok = verify.returncode == 0
    led.audit_output = (verify.stdout + verify.stderr).decode(errors="replace")[-500:]
    led.entries = stack.audit()
    return led


def dead_pairs(stack: Stack) -> set[Pair]:
    """(message id, recipient) of every dead letter now in the DLQ."""
    return {(d["message_id"], d["recipient"]) for d in stack.dead_letters()}


def copy_into_dlq(stack: Stack, agency: str, count: int, copies: int) -> set[Pair]:
    """Put ``copies`` dead-letter copies of the first ``count`` messages waiting in ``agency``'s
    queue into the DLQ -- the state a crash between push and acknowledgement, or a redelivery
    limit used up by an outage, leaves behind: a dead letter of a message that is (or will be)
    delivered. The originals stay queued (taken unacknowledged, returned on close)."""
    from casebridge.routing.pipeline import Publisher, decode_envelope
    from casebridge.routing.routes import load_route_table
    from casebridge.routing.topology import connect, release, topology_for

    topology = topology_for(load_route_table(stack.workdir / "routes.yaml").agencies,
                            stack.broker_url)
    conn = connect(stack.broker_url)
    publisher = Publisher(connect(stack.broker_url), topology)
    pairs: set[Pair] = set()
    try:
        queue = topology.queue(agency)(conn.default_channel)
        for _ in range(count):
            message = queue.get(no_ack=False)
            assert message is not None, f"fewer than {count} messages wait for {agency}"
            envelope = decode_envelope(message.body)
            headers = {**(message.headers or {}), "dead_reason": "retries_exhausted",
                       "dead_detail": "{}", "dead_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
            for _copy in range(copies):
                publisher.publish_dead(message.body, recipient=agency, headers=headers,
                                       content_type=message.content_type)
            pairs.add((envelope.message_id, agency))
    finally:
        release(publisher.connection)
        release(conn)
    return pairs
