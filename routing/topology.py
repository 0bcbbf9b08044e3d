"""Every exchange and queue casebridge uses, declared in this one file, and the broker connection.

Topology (names carry a prefix so tests and parallel installations never share a queue):

- ``{prefix}.deliver``: durable topic exchange; routing key ``deliver.{agency-id}``.
- ``{prefix}.agency.{agency-id}``: one durable queue per recipient agency, bound to its key.
  On RabbitMQ a quorum queue (replicated, survives a broker restart, and ``x-delivery-limit``
  dead-letters a message that keeps crashing workers instead of looping forever).
- ``{prefix}.dead``: durable topic exchange the agency queues dead-letter to; ``{prefix}.dlq``:
  the dead-letter queue bound to it with ``#``. Workers also publish there explicitly, with the
  reason in the headers, after the last delivery attempt.

Messages are persistent; on amqp the channel runs in confirm mode (``confirm_publish``), so a
publish returns only after the broker has taken responsibility. Consumers use a bounded prefetch
and manual acks. Transports are chosen by URL: ``amqp://`` (RabbitMQ), ``sqla+sqlite:///…``
(embedded, messages kept in a SQLite file across restarts), ``memory://`` (unit tests only).

Driver exceptions are translated to :class:`~casebridge.errors.BrokerUnavailable` in exactly one
place, :func:`broker_errors`, using kombu's own ``connection_errors``/``channel_errors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.exceptions import KombuError, OperationalError

from casebridge.errors import BrokerUnavailable, ConfigError

#: A message that crashed this many deliveries is dead-lettered by RabbitMQ itself.
DELIVERY_LIMIT = 20
DEFAULT_PREFETCH = 16
DEFAULT_PREFIX = "casebridge"


def transport_kind(url: str) -> str:
    """``amqp``, ``sqla`` or ``memory`` for a broker URL; ConfigError for anything else."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "amqp"
    if scheme.startswith("sqla+") or scheme.startswith("sqlalchemy+"):
        return "sqla"
    if scheme == "memory":
        return "memory"
    raise ConfigError(
        "CASEBRIDGE_BROKER_URL: use amqp://… (RabbitMQ), sqla+sqlite:///FILE (embedded) "
        "or memory:// (tests)"
    )


@dataclass(frozen=True)
class Topology:
    """Names and declarations of the exchanges and queues for one set of agencies."""

    agencies: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    quorum: bool = True

    @property
    def exchange(self) -> Exchange:
        """The durable topic exchange messages for recipients are published to."""
        return Exchange(f"{self.prefix}.deliver", type="topic", durable=True)

    @property
    def dead_exchange(self) -> Exchange:
        """The durable dead-letter exchange."""
        return Exchange(f"{self.prefix}.dead", type="topic", durable=True)

    @property
    def dead_queue(self) -> Queue:
        """The dead-letter queue (every dead letter, whatever its agency)."""
        return Queue(
            f"{self.prefix}.dlq", self.dead_exchange, routing_key="#", durable=True,
            queue_arguments=self._queue_args(dead=True),
        )

    @staticmethod
    def routing_key(agency: str) -> str:
        """The routing key of messages for ``agency``."""
        return f"deliver.{agency}"

    @staticmethod
    def dead_routing_key(agency: str) -> str:
        """The routing key of dead letters for ``agency``."""
        return f"dead.{agency}"

    def queue_name(self, agency: str) -> str:
        """The name of ``agency``'s queue."""
        return f"{self.prefix}.agency.{agency}"

    def _queue_args(self, *, dead: bool) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.quorum:
            args["x-queue-type"] = "quorum"
            if not dead:
                args["x-delivery-limit"] = DELIVERY_LIMIT
        if not dead:
            args["x-dead-letter-exchange"] = self.dead_exchange.name
        return args

    def queue(self, agency: str) -> Queue:
        """The durable queue of one recipient agency."""
        if agency not in self.agencies:
            raise ConfigError(f"agency '{agency}' has no queue in this topology")
        return Queue(
            self.queue_name(agency), self.exchange, routing_key=self.routing_key(agency),
            durable=True, queue_arguments=self._queue_args(dead=False),
        )

    def queues(self, agencies: Iterable[str] | None = None) -> list[Queue]:
        """The queues of ``agencies`` (default: all)."""
        return [self.queue(a) for a in (self.agencies if agencies is None else agencies)]

    def declare(self, connection: Connection) -> None:
        """Declare every exchange and queue (idempotent).

        Always called before publishing too: the embedded transports keep bindings in process
        memory, so a publisher that had not declared them would route into nothing.
        """
        with broker_errors("declaring the topology"):
            channel = connection.default_channel
            entities: list[Any] = [self.exchange, self.dead_exchange, self.dead_queue,
                                   *self.queues()]
            for entity in entities:
                entity.bind(channel).declare()

    def delete(self, connection: Connection) -> None:
        """Delete every queue and exchange of this topology (tests and ``--reset``)."""
        # Declared first: embedded transports only know entities declared in this process.
        self.declare(connection)
        with broker_errors("deleting the topology"):
            channel = connection.default_channel
            for queue in (*self.queues(), self.dead_queue):
                queue.bind(channel).delete()
            for exchange in (self.exchange, self.dead_exchange):
                exchange.bind(channel).delete()


def topology_for(agencies: Iterable[str], url: str, *, prefix: str = DEFAULT_PREFIX) -> Topology:
    """The topology of ``agencies`` on the transport of ``url`` (quorum queues on RabbitMQ)."""
    return Topology(tuple(sorted(agencies)), prefix=prefix, quorum=transport_kind(url) == "amqp")


def connect(url: str, *, heartbeat: int = 0, lease_seconds: float | None = None) -> Connection:
    """A kombu connection with casebridge's transport options (confirms on amqp; the leased
    SQLAlchemy transport of :mod:`casebridge.routing.embedded` for ``sqla+…``)."""
    kind = transport_kind(url)
    if kind == "sqla":
        from casebridge.routing.embedded import Transport as EmbeddedTransport

        db_url = url.split("+", 1)[1]
        db_path = db_url.split(":///", 1)[-1]
        if db_url.startswith("sqlite") and db_path and db_path != ":memory:":
            Path(db_path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if lease_seconds is not None:
            options["lease_seconds"] = lease_seconds
        return Connection(db_url, transport=EmbeddedTransport, transport_options=options)
    if kind == "amqp":
        return Connection(url, transport_options={"confirm_publish": True},
                          heartbeat=heartbeat, connect_timeout=5)
    return Connection(url)


_CLOSE_ERRORS = (OSError, KombuError, AttributeError)


@contextmanager
def broker_errors(doing: str, connection: Connection | None = None) -> Iterator[None]:
    """Translate driver errors raised while ``doing`` into BrokerUnavailable (the one place)."""
    errors: tuple[type[BaseException], ...] = (OSError, OperationalError, KombuError)
    if connection is not None:
        errors = (*errors, *connection.connection_errors, *connection.channel_errors)
    else:
        from amqp.exceptions import AMQPError

        errors = (*errors, AMQPError)
    try:
        yield
    except BrokerUnavailable:
        raise
    except errors as exc:
        raise BrokerUnavailable(
            f"message broker unavailable while {doing} ({type(exc).__name__})"
        ) from exc


def release(connection: Connection) -> None:
    """Close a connection whose broker may already be gone, without raising."""
    try:
        connection.release()
    except _CLOSE_ERRORS:
        pass
