"""The one database layer: engine, sessions, and migration on first use.

The store is chosen by ``CASEBRIDGE_DATABASE_URL`` (see :mod:`casebridge.settings`): a SQLite
file in the data directory by default, PostgreSQL (``postgresql+psycopg://``) in production. The
schema is owned by Alembic; :func:`get_database` upgrades it to the newest revision the first time
a process touches a database, so a fresh install or an upgraded wheel just works.

Every package that needs tables declares them on :class:`Base` and adds an Alembic revision to
its own versions folder listed in :data:`VERSION_LOCATIONS`; all revisions form one linear
history recorded in one ``alembic_version`` table.

SQLite notes: pysqlite's own transaction handling is switched off so that SQLAlchemy emits
``BEGIN`` itself; a connection with the execution option ``sqlite_immediate=True`` begins with
``BEGIN IMMEDIATE`` (take the write lock at once), which is how writers that read-then-write (the
audit chain) serialise across processes. WAL journal and ``synchronous=FULL`` make commits durable
while readers keep reading. Threads of one process take a lock per database file before they ask
for SQLite's write lock: a thread that waits inside SQLite's busy handler sleeps in steps of up to
100 ms, a thread that waits on the lock runs the moment the writer before it commits.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import select
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    MetaData,
    String,
    TypeDecorator,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

from casebridge.codes import code_width
from casebridge.errors import ConfigError, StoreUnreachable
from casebridge.logging import get_logger
from casebridge.settings import get_settings

log = get_logger(__name__)

#: Constraint names are fixed so that later Alembic revisions can refer to them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: (package, folder) of every Alembic versions folder; folders that do not exist are skipped, so
#: a package (e.g. routing) can ship ``migrations/`` later with a revision on top of ours.
VERSION_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("casebridge", "migrations/versions"),
    ("casebridge.routing", "migrations"),
)


UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_text(value: datetime) -> str:
    """An aware datetime as fixed-width UTC text: sorts like time, same on every backend."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return value.astimezone(UTC).strftime(UTC_FORMAT)


def parse_utc_text(value: str) -> datetime:
    """The inverse of :func:`utc_text`."""
    return datetime.strptime(value, UTC_FORMAT).replace(tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as :func:`utc_text` (SQLite has no time zones; PostgreSQL's
    ``timestamptz`` would render in the session zone, which would change audit hashes)."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else utc_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        return None if value is None else parse_utc_text(value)


def code_column(
    *vocabularies: Iterable[str], minimum: int = 16, nullable: bool | None = None
) -> Any:
    """A column for codes of closed ``vocabularies`` (see :mod:`casebridge.codes`): wide enough
    for every word, and remembering the words so that tests can store each of them."""
    words = frozenset(str(w) for vocabulary in vocabularies for w in vocabulary)
    return mapped_column(
        String(code_width(words, minimum=minimum)), nullable=nullable,
        info={"vocabulary": words},
    )


class Base(DeclarativeBase):
    """Declarative base of every casebridge table (one MetaData, fixed constraint names)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN (see _on_sqlite_begin) instead of pysqlite's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: Every engine this process created; a forked child must not reuse their pooled connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    # SQLAlchemy's advice for os.fork(): drop the parent's pooled connections in the child
    # without closing them (closing would end the parent's sessions on the server).
    for engine in list(_ENGINES):
        engine.dispose(close=False)
    # a lock some other thread of the parent held at the fork would never be released here
    _SQLITE_WRITERS.clear()


os.register_at_fork(after_in_child=_forget_inherited_connections)

#: The in-process writer lock of each SQLite file (see the module docstring), by URL.
_SQLITE_WRITERS: dict[str, threading.RLock] = {}


def sqlite_writer(url: str) -> threading.RLock:
    """The lock this process's writers of the SQLite file at ``url`` take before SQLite's own
    write lock (the store's and the embedded broker's files alike)."""
    lock = _SQLITE_WRITERS.get(url)
    if lock is None:
        lock = _SQLITE_WRITERS.setdefault(url, threading.RLock())  # atomic: first one wins
    return lock


def create_db_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url`` with casebridge's connection set-up."""
    engine = _create_engine(url)
    _ENGINES.add(engine)
    return engine


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("CASEBRIDGE_DATABASE_URL is not a valid database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if backend == "postgresql":
        # No ping before every checkout: it was one more round trip on each of the eight
        # checkouts of a referral. A connection the server dropped fails its first statement
        # instead; SQLAlchemy then discards the whole pool, the request is answered 503 and a
        # worker requeues the message (optimistic disconnect handling). pool_recycle keeps
        # connections younger than the usual idle timeouts of proxies and firewalls.
        engine = create_engine(parsed, pool_size=5, max_overflow=5, pool_recycle=1800)
        event.listen(engine, "checkout", _ping_if_idle)
        event.listen(engine, "checkin", _note_checkin)
        return engine
    raise ConfigError(
        f"CASEBRIDGE_DATABASE_URL: unsupported backend '{backend}' (use sqlite or postgresql)"
    )


#: A pooled connection idle longer than this is pinged before use: after a database restart the
#: whole idle pool is stale, and its first use must not answer a request with a wrong 503. A
#: restart takes longer than this, so every connection it made stale is pinged; under load
#: connections return to work sooner and are not (a ping per checkout was measurable).
IDLE_PING_SECONDS = 1.0


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _server_hung_up(dbapi_connection: Any) -> bool:
    """Whether the server wrote to (or closed) this idle connection: a server that shuts down
    or restarts tells every connection so (``AdminShutdown``, then EOF). An idle connection is
    never otherwise sent anything (casebridge does not LISTEN), so a readable socket means
    stale. One poll system call, no round trip: cheap enough for every checkout."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - closed or broken: stale
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # A connection the server hung up on is replaced at once, however briefly it was idle: a
    # database restart can be quicker than IDLE_PING_SECONDS, and its first statement would
    # otherwise answer a request 503. Busy connections are not pinged (one round trip per
    # checkout was measurable); an idle one is (a server gone without a word, e.g. a network
    # cut), and a dead one is replaced: DisconnectionError makes the pool retry with a new one.
    if _server_hung_up(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()  # leave no transaction open (autocommit can change later)
    except Exception as exc:
        raise DisconnectionError(f"stale pooled connection ({type(exc).__name__})") from exc


def is_store_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the store cannot be reached (not that a statement was wrong)."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (stable across processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _version_locations() -> list[str]:
    found = []
    for package, folder in VERSION_LOCATIONS:
        try:
            path = importlib.resources.files(package).joinpath(folder)
        except ModuleNotFoundError:
            continue
        if path.is_dir():
            found.append(str(path))
    return found


def alembic_config(conn: Connection | None = None) -> Any:
    """An Alembic Config built in code (works from an installed wheel; no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "casebridge:migrations")
    # Alembic splits version_locations on this separator; paths may contain spaces.
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(_version_locations()))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the schema to ``revision`` under a cross-process lock (safe on first use)."""
    from alembic import command

    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("migrate")})
            command.upgrade(alembic_config(conn), revision)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def head_revisions() -> set[str]:
    """The newest revisions the installed code knows."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


class Database:
    """An engine plus its session factory; the handle every store class receives."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        # Only SQLite needs a writer lock (see the module docstring); PostgreSQL has row locks.
        self._sqlite_url = str(engine.url) if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        ``immediate`` takes SQLite's write lock at BEGIN (read-then-write without lost updates).
        """
        with self._writing(immediate), self.engine.connect() as raw:
            conn = raw.execution_options(sqlite_immediate=True) if immediate else raw
            with Session(bind=conn, expire_on_commit=False) as session, conn.begin():
                yield session
                session.flush()

    @contextmanager
    def connection(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction (for bulk reads and appends)."""
        with self._writing(immediate), self.engine.connect() as raw:
            conn = raw.execution_options(sqlite_immediate=True) if immediate else raw
            with conn.begin():
                yield conn

    def _writing(self, immediate: bool) -> AbstractContextManager[Any]:
        # looked up each time: a forked child gets fresh locks (see _forget_inherited_connections)
        if immediate and self._sqlite_url is not None:
            return sqlite_writer(self._sqlite_url)
        return nullcontext()

    def reachable(self) -> bool:
        """Whether one trivial statement succeeds now (the probe of a paused worker)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            if not is_store_outage(exc):
                log.warning("store probe failed", exc_type=type(exc).__name__)
            return False
        return True

    @contextmanager
    def snapshot_read(self) -> Iterator[Connection]:
        """A connection for one self-contained read statement, without a transaction around it.

        A single statement already sees one consistent snapshot, so on PostgreSQL the BEGIN and
        COMMIT round trips of a transaction are pure latency on the decision path. SQLite keeps
        its ordinary (cheap, in-process) transaction.
        """
        with self.engine.connect() as raw:
            if self.dialect == "postgresql":
                yield raw.execution_options(isolation_level="AUTOCOMMIT")
            else:
                with raw.begin():
                    yield raw

    def migrate(self) -> None:
        """Bring the schema to the newest revision."""
        migrate(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def get_database(url: str | None = None, *, migrate_schema: bool = True) -> Database:
    """The process-wide :class:`Database` for ``url`` (default: from settings), migrated once."""
    url = url or get_settings().effective_database_url
    with _lock:
        db = _databases.get(url)
        if db is None:
            db = Database(create_db_engine(url))
            if migrate_schema:
                try:
                    if current_revisions(db.engine) != head_revisions():
                        db.migrate()
                except OperationalError as exc:
                    raise StoreUnreachable(
                        f"cannot open the database ({type(exc.orig).__name__}); "
                        "check CASEBRIDGE_DATABASE_URL"
                    ) from None
            _databases[url] = db
        return db


def reset_databases() -> None:
    """Dispose every cached :class:`Database` (tests, and after a fork)."""
    with _lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()
