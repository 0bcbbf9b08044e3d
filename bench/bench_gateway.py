"""Inbound POST throughput of the gateway under uvicorn, against a bare FastAPI endpoint.

Both servers run as uvicorn subprocesses on 127.0.0.1 (free ports); the load comes from a second
process (an httpx async loop with a fixed number of connections), bounded in requests and time.
The gateway path is the real one: API-key authentication, body limit, the job centre adapter
(XSD validation), the route check, the idempotency claim, the consent gate with its audit entry
and the broker publish (the embedded SQLite broker), answered 202 after the publish. Every
request carries a new message id, so nothing is answered from the idempotency record. The
baseline is a bare FastAPI endpoint that reads the same body and answers 202, in the same run.

    python -m bench.run --only gateway [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.common import Row, percentiles

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = 16

bare_app = FastAPI()


@bare_app.post("/bare", status_code=202)
async def bare(request: Request) -> JSONResponse:
    """The baseline: read the body, answer 202."""
    await request.body()
    return JSONResponse({"accepted": True}, status_code=202)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(target: str, env: dict[str, str], *, factory: bool) -> tuple[subprocess.Popen[bytes],
                                                                         str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target} exited with {proc.returncode}")
        try:
            httpx.get(base + "/openapi.json", timeout=1.0)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{target} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _prepare(
    tmp: Path, n: int, *, db_url: str | None = None, broker_url: str | None = None
) -> tuple[dict[str, str], str, Path]:
    """A store with an agency key and the client's consent; ``n`` distinct referral bodies.

    Without URLs: the embedded defaults (SQLite store and broker in ``tmp``)."""
    from casebridge.consent.store import ConsentStore
    from casebridge.db import get_database, reset_databases
    from casebridge.gateway.demo import sample_bytes
    from casebridge.gateway.principals import PrincipalKind, Role, issue_key
    from casebridge.routing.routes import demo_route_table_text

    routes = tmp / "routes.yaml"
    routes.write_text(demo_route_table_text(), encoding="utf-8")
    env = {**os.environ, "CASEBRIDGE_DATA_DIR": str(tmp),
           "CASEBRIDGE_DATABASE_URL": db_url or f"sqlite:///{tmp / 'casebridge.db'}",
           "CASEBRIDGE_BROKER_URL": broker_url or f"sqla+sqlite:///{tmp / 'broker.db'}",
           "CASEBRIDGE_ROUTE_TABLE": str(routes), "CASEBRIDGE_LOG_FORMAT": "json"}
    db = get_database(env["CASEBRIDGE_DATABASE_URL"])
    ConsentStore(db).import_fhir(sample_bytes("consent-fhir/consent-self-001.json"),
                                 source="bench")
    with db.session() as session:
        key = issue_key(session, name="jobcenter-duisburg", kind=PrincipalKind.AGENCY,
                        role=Role.AGENCY).secret
    reset_databases()
    template = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    bodies = [template.replace("JC-DU-2026-000123", f"JC-DU-BENCH-{i:07d}") for i in range(n)]
    body_file = tmp / "bodies.json"
    body_file.write_text(json.dumps(bodies), encoding="utf-8")
    return env, key, body_file


async def _load(url: str, bodies: list[bytes], headers: dict[str, str], seconds: float,
                concurrency: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(bodies) and time.monotonic() < deadline:
                body = bodies[next_index]
                next_index += 1
                start = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        # A short warm-up on the first bodies is excluded from the numbers.
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies": latencies, "statuses": statuses}


def load_main(argv: list[str]) -> None:
    """Entry point of the load-generator process: ``URL BODY_FILE SECONDS HEADERS_JSON``."""
    url, body_file, seconds, headers = argv[0], argv[1], float(argv[2]), json.loads(argv[3])
    bodies = [b.encode() for b in json.loads(Path(body_file).read_text(encoding="utf-8"))]
    warm, rest = bodies[:20], bodies[20:]
    asyncio.run(_load(url, warm, headers, seconds, CONCURRENCY))
    start = time.perf_counter()
    result = asyncio.run(_load(url, rest, headers, seconds, CONCURRENCY))
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, **result}))


def _drive(url: str, body_file: Path, seconds: float, headers: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_gateway", "load", url, str(body_file), str(seconds),
         json.dumps(headers)],
        cwd=REPO, capture_output=True, check=True, timeout=seconds * 2 + 120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    done = len(result["latencies"])
    result["rps"] = done / result["elapsed"] if result["elapsed"] else 0.0
    result["p50"], result["p99"] = percentiles(result["latencies"])
    return result


def _in_process(env: dict[str, str], key: str, m: int) -> float:
    """Messages/s of the same inbound path called in-process, one at a time (no HTTP)."""
    from casebridge.db import get_database, reset_databases
    from casebridge.gateway.demo import sample_bytes
    from casebridge.gateway.intake import Intake
    from casebridge.gateway.principals import principal_for_key
    from casebridge.routing.routes import load_route_table
    from casebridge.routing.runtime import Routing

    db = get_database(env["CASEBRIDGE_DATABASE_URL"])
    with db.session() as session:
        caller = principal_for_key(session, key=key)
    assert caller is not None
    routing = Routing(routes=load_route_table(Path(env["CASEBRIDGE_ROUTE_TABLE"])), db=db,
                      url=env["CASEBRIDGE_BROKER_URL"])
    intake = Intake(db, routing, max_bytes=5 * 1024 * 1024)
    template = sample_bytes("jobcenter/zuweisung-001.xml").decode()
    bodies = [template.replace("JC-DU-2026-000123", f"JC-DU-INPROC-{i:07d}").encode()
              for i in range(m + 10)]
    # The log lines are written, as by the server, but not onto the benchmark's terminal.
    try:
        with open(os.devnull, "w") as sink, redirect_stderr(sink):
            for body in bodies[:10]:
                intake.submit(body, system="jobcenter", caller=caller)
            start = time.perf_counter()
            for body in bodies[10:]:
                intake.submit(body, system="jobcenter", caller=caller)
            elapsed = time.perf_counter() - start
    finally:
        intake.close()
        routing.close()
        reset_databases()
    return m / elapsed


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(target: str, path: str, env: dict[str, str], body_file: Path, seconds: float,
             headers: dict[str, str], *, factory: bool) -> dict[str, Any]:
    """Serve ``target``, drive it, and add the server's CPU milliseconds per request."""
    server, url = _serve(target, env, factory=factory)
    try:
        before = _server_cpu(server.pid) if sys.platform == "linux" else None
        result = _drive(url + path, body_file, seconds, headers)
        if before is not None:
            # warm-up requests included: the load process sends 20 before the timed ones
            done = len(result["latencies"]) + 20
            result["cpu_ms"] = (_server_cpu(server.pid) - before) / done * 1000
    finally:
        _stop(server)
    return result


@contextmanager
def _production_stack() -> Iterator[tuple[str, str] | None]:
    """A private PostgreSQL schema and RabbitMQ vhost, or None where either is missing."""
    from bench.bench_routing import RABBIT, _store, _vhost

    try:
        vhost = _vhost()
    except (OSError, subprocess.CalledProcessError):
        vhost = None
    if vhost is None:
        yield None
        return
    try:
        with tempfile.TemporaryDirectory() as tmp, _store("postgres", Path(tmp)) as db_url:
            yield db_url, RABBIT.format(vhost=vhost)
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], check=False, capture_output=True)


def run(quick: bool) -> list[Row]:
    """Gateway inbound vs bare endpoint: requests/s, p99 latency, ratio."""
    n = 300 if quick else 3000
    seconds = 20.0 if quick else 60.0
    gateway_app = "casebridge.gateway.app:create_app"
    with tempfile.TemporaryDirectory(prefix="cb-bench-gw-") as name:
        tmp = Path(name)
        env, key, body_file = _prepare(tmp, n)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
        measured = _measure(gateway_app, "/v1/inbound/jobcenter", env, body_file, seconds,
                            headers, factory=True)
        baseline = _measure("bench.bench_gateway:bare_app", "/bare", env, body_file, seconds,
                            headers, factory=False)
        pipeline = _in_process(env, key, 100 if quick else 500)
    production: dict[str, Any] | None = None
    try:
        with _production_stack() as stack:
            if stack is not None:
                with tempfile.TemporaryDirectory(prefix="cb-bench-gw-pg-") as name:
                    penv, pkey, pbodies = _prepare(Path(name), n, db_url=stack[0],
                                                   broker_url=stack[1])
                    production = _measure(
                        gateway_app, "/v1/inbound/jobcenter", penv, pbodies, seconds,
                        {**headers, "Authorization": f"Bearer {pkey}"}, factory=True)
    except Exception as exc:  # noqa: BLE001 - the optional row must not sink the table
        print(f"gateway on PostgreSQL + RabbitMQ not measured: {exc}", file=sys.stderr)
    note = (f"{len(measured['latencies'])} requests, {CONCURRENCY} connections, statuses "
            f"{measured['statuses']}; bare statuses {baseline['statuses']}; embedded SQLite "
            f"store and broker, 1 uvicorn worker; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores")
    if set(measured["statuses"]) != {"202"}:
        note = "NOT ALL 202: " + note
    rows = [
        Row("gateway", "inbound req/s", measured["rps"], "bare FastAPI 202", baseline["rps"],
            ">= 0.3", note),
        Row("gateway", "inbound p99 ms", measured["p99"], "bare FastAPI 202", baseline["p99"],
            "", f"p50 {measured['p50']:.1f} ms vs {baseline['p50']:.1f} ms"),
    ]
    if "cpu_ms" in measured and "cpu_ms" in baseline:
        rows.append(Row(
            "gateway", "server CPU ms/request", measured["cpu_ms"], "bare FastAPI 202",
            baseline["cpu_ms"], "",
            "user + system CPU of the server process per request; steadier than req/s on a "
            "shared machine. The bare rate is bounded by the load process, not its server."))
    if production is not None:
        rows.append(Row(
            "gateway", "inbound req/s, PostgreSQL + RabbitMQ", production["rps"],
            "bare FastAPI 202", baseline["rps"], "",
            f"the production stack on this machine (quorum queue, publisher confirms); p99 "
            f"{production['p99']:.0f} ms; statuses {production['statuses']}"))
    rows.append(Row(
        "gateway", "inbound req/s over HTTP", measured["rps"],
        "same path in-process, sequential", pipeline, "",
        "what the HTTP layer (authentication, threads, request and response handling) "
        "leaves of the in-process rate"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load_main(sys.argv[2:])
    else:
        for row in run(quick="--quick" in sys.argv):
            print(row)
