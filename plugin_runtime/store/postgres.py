"""PostgreSQL, shared by every process of a runtime on several machines: the sibling of
``sqlite.py`` (``PLUGIN_RUNTIME_DATABASE_URL=postgresql://...`` selects it).

Its schema (``postgres_schema.MIGRATIONS``) holds the same tables and columns as SQLite's, in
PostgreSQL's types, so that the repositories' SQL runs unchanged on both.

Writes keep SQLite's meaning: one writing transaction at a time, across every process (a
transaction-scoped advisory lock taken first thing), so an event's sequence number is the
order in which events were stored and acknowledged, and what a repository reads and then
writes inside a transaction cannot change underneath it. Reads go through a small pool.
Migrations run under a session advisory lock: two processes starting at once apply them once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from plugin_runtime.errors import SchemaOutdated, StoreUnavailable
from plugin_runtime.store.postgres_schema import MIGRATIONS, QUEUE, TASK
from plugin_runtime.store.pg_connection import Reader, Transaction, WriterLink, configure, connect, unavailable
from plugin_runtime.store.runs import Runs
from plugin_runtime.store.sqlite import Store

#: Advisory lock keys (any 64-bit numbers of our own): schema migrations, and the writer.
MIGRATION_LOCK = 0x706C7567696E0001
WRITE_LOCK = 0x706C7567696E0002
#: How long a process keeps retrying to reach PostgreSQL before a write reports it unavailable.
RECONNECT_PATIENCE_S = 10.0
#: How long a starting process waits for PostgreSQL to answer before it gives up.
STARTUP_PATIENCE_S = 60.0
T = TypeVar("T")
_log = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "QUEUE", "TASK", "PostgresStore", "upgrade", "version", "where"]


def where(url: str) -> str:
    """host:port/database of a URL, without its credentials (for messages and logs)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def upgrade(url: str) -> list[int]:
    """Apply the migrations this database lacks, under the migration lock; returns the numbers
    applied (none: it was up to date)."""
    try:
        with connect(url) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                return _migrate(connection)
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    except psycopg.OperationalError as error:
        raise StoreUnavailable(unavailable(where(url), error)) from error


def _migrate(connection: psycopg.Connection[Any]) -> list[int]:
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        connection.execute("INSERT INTO schema_version VALUES (0)")
    current = row[0] if row else 0
    if current > len(MIGRATIONS):
        raise SchemaOutdated(f"the database at schema version {current} was upgraded by a newer plugin-runtime "
                             f"(this one knows {len(MIGRATIONS)}): upgrade this runtime")
    applied = []
    for number, script in enumerate(MIGRATIONS[current:], current + 1):
        with connection.transaction():
            connection.execute(script)  # several statements: sent as one simple query
            connection.execute("UPDATE schema_version SET version = %s", (number,))
        applied.append(number)
    return applied


def version(url: str) -> int:
    """The database's schema version (0: none yet)."""
    try:
        with connect(url) as connection:
            row = connection.execute("SELECT to_regclass('schema_version')").fetchone()
            if row is None or row[0] is None:
                return 0
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            return 0 if row is None else int(row[0])
    except psycopg.OperationalError as error:
        raise StoreUnavailable(unavailable(where(url), error)) from error


def _patiently(attempt: Callable[[], T], where: str) -> T:
    """``attempt()``, again with backoff while PostgreSQL does not answer (a process started
    with it, or before it), for ``STARTUP_PATIENCE_S``."""
    deadline = time.monotonic() + STARTUP_PATIENCE_S
    delay = 0.2
    while True:
        try:
            return attempt()
        except StoreUnavailable as error:
            if time.monotonic() + delay > deadline:
                raise
            _log.warning("%s; trying again in %.1f s", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class SharedQueuedCounts:
    """Runs queued (pending or running), read from the shared database at each ask (one row
    per project, kept by a trigger, migration 9): every process's backpressure sees the whole
    queue, not its own share."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def count(self, project_id: str | None = None) -> int:
        if project_id is None:
            return int(self._reader.execute("SELECT COALESCE(SUM(runs), 0) FROM queued_runs").fetchone()[0])
        row = self._reader.execute("SELECT runs FROM queued_runs WHERE project_id = ?", (project_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def add(self, project_id: str, delta: int) -> None:
        """Counted from the database: a process's own changes need no bookkeeping."""


class PostgresStore(Store):
    """The store on PostgreSQL: ``write()``, ``read()`` and the repositories, as ``Store``
    (whose repositories it shares); see the module docstring."""

    def __init__(self, url: str, pool_size: int = 8, migrate: bool = True) -> None:
        self.url = url
        self.where = where(url)
        if migrate:
            _patiently(lambda: upgrade(url), self.where)
        elif _patiently(lambda: version(url), self.where) != len(MIGRATIONS):
            raise SchemaOutdated(f"the database at {self.where} is at schema version {version(url)}, this runtime "
                                 f"needs {len(MIGRATIONS)}: run `plugin-runtime db upgrade`")
        self._lock = threading.RLock()
        self._link = WriterLink(url, self.where, RECONNECT_PATIENCE_S)
        self._tx: Transaction | None = None
        self._after_commit: list[Callable[[], None]] = []
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, configure=configure, kwargs={"autocommit": True},
            open=True, name="plugin-runtime-read")
        self._reader = Reader(self._pool, self.where)
        self.runs = Runs()
        self.queued = SharedQueuedCounts(self._reader)  # type: ignore[assignment]

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """One transaction, the only one writing across every process (nested: joins the outer
        one); rolled back if the block raises."""
        with self._lock:
            if self._tx is not None:
                yield self._tx
                return
            connection = self._begin()
            self._tx = Transaction(connection)
            try:
                yield self._tx
                connection.execute("COMMIT")
            except BaseException as error:
                self._after_commit.clear()
                with contextlib.suppress(psycopg.Error):
                    if not connection.closed and not connection.broken:
                        connection.execute("ROLLBACK")
                if isinstance(error, psycopg.OperationalError):
                    raise StoreUnavailable(unavailable(self.where, error)) from error
                raise
            finally:
                self._tx = None
            actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    def _begin(self) -> psycopg.Connection[Any]:
        """BEGIN and the write lock; a connection that died while idle (a server restart) is
        replaced first: nothing was sent on it yet."""
        for attempt in (1, 2):
            connection = self._link.get()
            try:
                connection.execute("BEGIN")
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                return connection
            except psycopg.OperationalError as error:
                if attempt == 2:
                    raise StoreUnavailable(unavailable(self.where, error)) from error
                self._link.reconnect()
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def claiming(self) -> Iterator[Any]:
        """A transaction outside the writers' lock, on a pooled connection: for what one
        process alone touches at a time (a lane's head, under its procrastinate lock), so
        claims do not queue behind other processes' writes."""
        try:
            with self._pool.connection(timeout=RECONNECT_PATIENCE_S) as connection, connection.transaction():
                yield Transaction(connection)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
            raise StoreUnavailable(unavailable(self.where, error)) from error

    def _queued_moved(self, db: Any, project_id: str, delta: int) -> None:
        """Counted from the database (``SharedQueuedCounts``)."""

    def read(self) -> Any:
        """Reads, each statement on a pooled connection (sees every committed write)."""
        return self._reader

    def close(self) -> None:
        self._link.close()
        self._pool.close()
