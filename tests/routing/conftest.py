"""Fixtures for routing tests: a fresh database with the sample consents, routing on memory://."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from casebridge.consent.store import ConsentStore
from casebridge.db import get_database
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.delivery import PushClient
from casebridge.routing.routes import demo_route_table
from casebridge.routing.runtime import Routing

PUSH_URLS = {
    "jobcenter-duisburg": "http://jobcenter.test/inbox",
    "sozialamt-duisburg": "http://sozialamt.test/inbox",
    "jugendamt-duisburg": "http://jugendamt.test/inbox",
    "schuldnerberatung-caritas-du": "http://caritas.test/fhir",
}


@dataclass
class Recipients:
    """A stand-in for every push endpoint: records requests, answers with ``answer``."""

    requests: list[httpx.Request] = field(default_factory=list)
    answer: Callable[[httpx.Request], httpx.Response] = lambda _r: httpx.Response(202)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def client(self) -> PushClient:
        return PushClient(transport=httpx.MockTransport(self.handler), sleep=lambda _s: None)


@pytest.fixture
def db(tmp_path):
    return get_database(f"sqlite:///{tmp_path / 'casebridge.db'}")


@pytest.fixture
def consents(db):
    store = ConsentStore(db)
    for name in ("consent-self-001.json", "consent-guardian-001.json"):
        store.import_fhir(sample_bytes(f"consent-fhir/{name}"), source=name)
    return store


@pytest.fixture
def routing(db, consents) -> Iterator[Routing]:
    r = Routing(routes=demo_route_table(PUSH_URLS), db=db, url="memory://",
                prefix=f"t{uuid.uuid4().hex[:10]}")
    yield r
    r.close()


@pytest.fixture
def recipients() -> Recipients:
    return Recipients()
