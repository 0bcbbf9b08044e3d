"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, made crash-safe.

Stock kombu marks a message row invisible when a consumer takes it and never touches it again:
acknowledged and in-flight messages look the same, so a worker killed between taking and
acknowledging a message loses it. casebridge's single-machine set-up must not lose data, so this
transport keeps the same tables and adds a lease:

- taking a message marks it invisible and stamps its ``timestamp`` (the lease start);
- acknowledging (or rejecting without requeue) deletes the row;
- requeue and shutdown-restore make the row visible again instead of inserting a copy;
- before every take, rows of that queue invisible for longer than ``lease_seconds`` are made
  visible again: a crashed worker's messages come back, flagged as redelivered.

A live worker whose delivery outlasts the lease may see its message taken by another worker too;
the delivery-id check in :mod:`casebridge.routing.worker` keeps that from delivering twice to a
pull outbox, and push recipients get the same ``Idempotency-Key``. The lease is therefore longer
than the longest retry schedule by default.
"""

from __future__ import annotations

import datetime
from functools import cached_property
from queue import Empty
from typing import Any

from kombu.transport.sqlalchemy import Channel as SqlaChannel
from kombu.transport.sqlalchemy import Transport as SqlaTransport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.exc import OperationalError

from casebridge.db import sqlite_writer

DEFAULT_LEASE_SECONDS = 900.0
_ROW = "casebridge_row"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Channel(SqlaChannel):
    """SQLAlchemy channel with leases (see the module docstring)."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._revived: dict[str, datetime.datetime] = {}
        # kombu never deletes a queue row, so its id can be remembered per channel.
        self._queue_ids: dict[str, int] = {}
        # threads of this process queue here, not in SQLite's busy handler (see casebridge.db)
        self._writer = sqlite_writer(self.connection.client.hostname)

    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        url = conninfo.hostname
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)

    @property
    def lease_seconds(self) -> float:
        """Seconds after which an unacknowledged message is given to another consumer."""
        opts = self.connection.client.transport_options
        return float(opts.get("lease_seconds", DEFAULT_LEASE_SECONDS))

    @cached_property
    def _insert_message(self) -> Any:
        return insert(self.message_cls.__table__)

    def _queue_id(self, queue: str) -> int:
        qid = self._queue_ids.get(queue)
        if qid is None:
            qid = self._queue_ids[queue] = int(self._get_or_create(queue).id)
        return qid

    # kombu's SQLAlchemy channel renamed virtual's `message` to `payload`; its signature is kept.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # One Core INSERT and a commit; stock kombu looks the queue up through the ORM and
        # flushes a unit of work for every message, which doubled the cost of a publish.
        with self._writer:
            qid = self._queue_id(queue)
            try:
                self.session.execute(self._insert_message, {
                    "payload": dumps(payload), "queue_id": qid, "visible": True, "version": 1,
                })
                self.session.commit()
            except OperationalError:
                # the publish must fail (and be retried), never report a message it did not
                # store
                self.session.rollback()
                raise

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        with self._writer:
            return self._take(queue)

    def _take(self, queue: Any) -> Any:
        qid = self._queue_id(queue)
        session = self.session
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        msg_cls = self.message_cls
        try:
            now = datetime.datetime.now()
            if (now - self._revived.get(queue, datetime.datetime.min)).total_seconds() >= min(
                1.0, self.lease_seconds
            ):
                # at most once a second per queue: idle polling stays read-only
                self._revived[queue] = now
                expired = now - datetime.timedelta(seconds=self.lease_seconds)
                session.query(msg_cls).filter(
                    msg_cls.queue_id == qid, msg_cls.visible == False,  # noqa: E712
                    msg_cls.sent_at < expired,
                ).update({msg_cls.visible: True}, synchronize_session=False)
            msg = (
                session.query(msg_cls)
                .with_for_update()
                .filter(msg_cls.queue_id == qid, msg_cls.visible == True)  # noqa: E712
                .order_by(msg_cls.sent_at, msg_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            msg.visible = False  # onupdate stamps the timestamp: the lease starts now
            payload = loads(bytes_to_str(msg.payload))
            payload.setdefault("properties", {})[_ROW] = msg.id
            return payload
        finally:
            session.commit()

    def _row_of(self, delivery_tag: Any) -> int | None:
        try:
            message = self.qos.get(delivery_tag)
        except KeyError:
            return None
        row = (message.properties or {}).get(_ROW)
        return int(row) if row is not None else None

    def _delete_row(self, row: int | None) -> None:
        if row is None:
            return
        msg_cls = self.message_cls
        with self._writer:
            self.session.query(msg_cls).filter(msg_cls.id == row).delete(
                synchronize_session=False
            )
            self.session.commit()

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        """Acknowledge: the message is done, its row goes."""
        row = self._row_of(delivery_tag)
        super().basic_ack(delivery_tag, multiple=multiple)
        self._delete_row(row)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """Reject: requeue makes the row visible again; otherwise the row goes."""
        row = self._row_of(delivery_tag)
        super().basic_reject(delivery_tag, requeue=requeue)
        if not requeue:
            self._delete_row(row)

    def _restore(self, message: Any) -> None:
        row = (message.properties or {}).get(_ROW)
        if row is None:
            super()._restore(message)
            return
        msg_cls = self.message_cls
        with self._writer:
            self.session.query(msg_cls).filter(msg_cls.id == int(row)).update(
                {msg_cls.visible: True}, synchronize_session=False
            )
            self.session.commit()


class Transport(SqlaTransport):
    """kombu transport class of the embedded broker."""

    Channel = Channel
    polling_interval = 0.05
