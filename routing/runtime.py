"""Wiring: one :class:`Routing` object builds routers, workers, outbox and status views.

The CLI, the gateway and the demo all assemble routing the same way from the settings (database,
broker URL, route table), so there is one place that decides which gate a router uses -- the
consent gate of the same database, always.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from casebridge.consent.gate import ConsentGate
from casebridge.db import Database, get_database
from casebridge.routing.delivery import Outbox, PushClient
from casebridge.routing.pipeline import Publisher, Router
from casebridge.routing.relay import PublishBatcher
from casebridge.routing.routes import RouteTable, configured_route_table
from casebridge.routing.status import ReferralStatusService
from casebridge.routing.topology import DEFAULT_PREFIX, Topology, connect, release, topology_for
from casebridge.routing.worker import DeliveryService, Worker
from casebridge.settings import Settings, get_settings


@dataclass
class Routing:
    """Everything routing needs, built once per process."""

    routes: RouteTable
    db: Database
    url: str
    prefix: str = DEFAULT_PREFIX
    minor_age: int = 15
    #: Messages a worker handles together, and how long it waits to fill a batch (seconds).
    batch_size: int = 32
    linger: float = 0.01
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    topology: Topology = field(init=False)
    gate: ConsentGate = field(init=False)
    #: Weak, so routers a caller dropped (e.g. after a broker failure) do not pile up here.
    _publishers: weakref.WeakSet[Publisher] = field(default_factory=weakref.WeakSet, init=False)
    _batcher: PublishBatcher | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.topology = topology_for(self.routes.agencies, self.url, prefix=self.prefix)
        self.gate = ConsentGate(self.db, minor_age=self.minor_age)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, routes: RouteTable | None = None,
        prefix: str | None = None,
    ) -> Routing:
        """Routing on the configured database, broker, prefix and route table."""
        settings = settings or get_settings()
        return cls(
            routes=routes or configured_route_table(),
            db=get_database(settings.effective_database_url),
            url=settings.effective_broker_url,
            prefix=prefix or settings.broker_prefix,
            minor_age=settings.minor_age,
            batch_size=settings.delivery_batch_size,
            linger=settings.delivery_linger_ms / 1000,
        )

    def publisher(self) -> Publisher:
        """A publisher on a new broker connection (closed by :meth:`close`)."""
        publisher = Publisher(connect(self.url), self.topology)
        self._publishers.add(publisher)
        return publisher

    def batcher(self) -> PublishBatcher:
        """The process's one publisher of decided messages (see
        :class:`~casebridge.routing.relay.PublishBatcher`): every router of this object hands
        its rows to it, so concurrent requests share broker confirms."""
        with self._lock:
            if self._batcher is None:
                self._batcher = PublishBatcher(self.publisher, self.db)
            return self._batcher

    def router(self) -> Router:
        """The inbound pipeline (the gateway's entry point)."""
        return Router(routes=self.routes, db=self.db, gate=self.gate, publisher=self.publisher(),
                      clock=self.clock, batcher=self.batcher())

    def delivery_service(
        self, push: PushClient | None = None, *, push_concurrency: int = 1
    ) -> DeliveryService:
        """The delivery-time path without a broker loop."""
        return DeliveryService(routes=self.routes, db=self.db, gate=self.gate, push=push,
                               clock=self.clock, push_concurrency=push_concurrency)

    def worker(
        self, agencies: list[str] | None = None, *, push: PushClient | None = None,
        prefetch: int | None = None, threads: int = 1, state_file: Path | None = None,
        batch_size: int | None = None, linger: float | None = None,
    ) -> Worker:
        """A worker for ``agencies`` (default: all) with ``threads`` delivery threads (and as
        many concurrent pushes), handling batches of ``batch_size`` (default: the setting)."""
        for agency in agencies or []:
            self.routes.agency(agency)
        return Worker(url=self.url, topology=self.topology,
                      service=self.delivery_service(push, push_concurrency=threads),
                      agencies=agencies, prefetch=prefetch, threads=threads,
                      state_file=state_file,
                      batch_size=self.batch_size if batch_size is None else batch_size,
                      linger=self.linger if linger is None else linger)

    def outbox(self) -> Outbox:
        """The pull agencies' outboxes."""
        return Outbox(self.db)

    def referrals(self) -> ReferralStatusService:
        """Referral status and overdue referrals."""
        return ReferralStatusService(self.db)

    def close(self) -> None:
        """Release every broker connection this object opened."""
        with self._lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        for publisher in list(self._publishers):
            release(publisher.connection)
        self._publishers.clear()
