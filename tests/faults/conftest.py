"""Fixtures of the fault suite: private servers (per module), one stack per scenario, the table.

``CASEBRIDGE_FAULTS=full`` runs the full suite (more messages, the outages of the issue: broker
40 s, store 20 s and 60 s, more kills); without it the short form runs in the default test run.
The results table is printed at the end of the run (``-s`` not needed).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRabbit, available
from tests.faults.stack import Ledger, Stack

FULL = os.environ.get("CASEBRIDGE_FAULTS", "short") == "full"
ROWS: list[dict[str, Any]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = available()
    for item in items:
        if "tests/faults/" in str(item.fspath).replace(os.sep, "/") and reason:
            item.add_marker(pytest.mark.skip(reason=f"private servers: {reason}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    columns = list(ROWS[0])
    terminalreporter.write_sep("=", f"fault suite ({'full' if FULL else 'short'} form)")
    terminalreporter.write_line("| " + " | ".join(columns) + " |")
    terminalreporter.write_line("|" + "---|" * len(columns))
    for row in ROWS:
        terminalreporter.write_line("| " + " | ".join(str(row[c]) for c in columns) + " |")


def record(led: Ledger) -> None:
    """Add the scenario's row to the results table (before its assertions run)."""
    ROWS.append(led.row())


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.destroy()


def _rabbit(nodes: int) -> Iterator[PrivateRabbit]:
    rabbit = PrivateRabbit(nodes)
    try:
        rabbit.start()
        yield rabbit
    finally:
        rabbit.destroy()


@pytest.fixture(scope="module")
def rabbit() -> Iterator[PrivateRabbit]:
    yield from _rabbit(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateRabbit]:
    yield from _rabbit(3)


StackFactory = Callable[..., Stack]


def _stacks(pg: PrivatePostgres, broker: PrivateRabbit) -> Iterator[StackFactory]:
    made: list[tuple[Stack, Path]] = []

    def make(gateways: int = 2) -> Stack:
        name = f"cbf_{secrets.token_hex(4)}"
        workdir = Path(tempfile.mkdtemp(prefix="cb-faults-stack-"))
        broker.add_vhost(name)
        url = pg.create_database(name, name, secrets.token_hex(16))
        stack = Stack(workdir, database_url=url, broker_url=broker.url(name))
        stack.vhost = name
        made.append((stack, workdir))
        stack.start_recipient()
        stack.provision()
        stack.start_gateway(*(f"gateway-{i + 1}" for i in range(gateways)))
        return stack

    try:
        yield make
    finally:
        for stack, workdir in made:
            stack.close()
            stack.print_logs()
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def stack_on_node(pg: PrivatePostgres, rabbit: PrivateRabbit) -> Iterator[StackFactory]:
    """Stacks on the private PostgreSQL and the one-node private RabbitMQ."""
    yield from _stacks(pg, rabbit)


@pytest.fixture
def stack_on_cluster(pg: PrivatePostgres, cluster: PrivateRabbit) -> Iterator[StackFactory]:
    """Stacks on the private PostgreSQL and the three-node private RabbitMQ cluster."""
    yield from _stacks(pg, cluster)
