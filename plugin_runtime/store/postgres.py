"""PostgreSQL, shared by every process of a runtime on several machines: the sibling of
``sqlite.py`` (``PLUGIN_RUNTIME_DATABASE_URL=postgresql://...`` selects it).

Its schema (``postgres_schema.MIGRATIONS``) holds the same tables and columns as SQLite's, in
PostgreSQL's types, so that the repositories' SQL runs unchanged on both.

Writes keep SQLite's meaning: one writing transaction at a time, across every process (a
transaction-scoped advisory lock taken first thing), so an event's sequence number is the
order in which events were stored and acknowledged, and what a repository reads and then
writes inside a transaction cannot change underneath it. Reads go through a small pool.
Migrations run under a session advisory lock: two processes starting at once apply them once.

A lane job's writes (``lane_job``) lock only their project and commit without waiting for the
disk: see there why both keep the promises.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from plugin_runtime.errors import SchemaOutdated, StoreUnavailable
from plugin_runtime.store.pg_connection import (
    Reader,
    Transaction,
    WriterLink,
    configure,
    connect,
    unavailable,
)
from plugin_runtime.store.postgres_schema import MIGRATIONS, QUEUE, TASK
from plugin_runtime.store.runs import Runs
from plugin_runtime.store.sqlite import Store

#: Advisory lock keys (any 64-bit numbers of our own): schema migrations, and the writer.
MIGRATION_LOCK = 0x706C7567696E0001
WRITE_LOCK = 0x706C7567696E0002
#: The first key of a project's lock (two 32-bit keys, a space apart from the one-key locks).
PROJECT_LOCKS = 0x706C7567
#: The session settings of lane jobs' connections (``PostgresStore.lane_job``).
RELAXED = "-c synchronous_commit=off"
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


#: A transaction's connection: the one at hand, or (True) a fresh one after it failed to begin.
Connecting = Callable[[bool], psycopg.Connection[Any]]


def _connecting(link: WriterLink) -> Connecting:
    return lambda fresh: link.reconnect() if fresh else link.get()


def _project_key(project_id: str) -> int:
    """A project's lock key: two projects sharing one only wait for each other."""
    return zlib.crc32(project_id.encode("utf-8", "surrogatepass")) - 2**31


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
        # This thread's transaction (nested writes join it), lane job and writer connection.
        self._thread = threading.local()
        self._lane_links: list[WriterLink] = []
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, configure=configure, kwargs={"autocommit": True},
            open=True, name="plugin-runtime-read")
        self._reader = Reader(self._pool, self.where)
        self.runs = Runs()
        self.queued = SharedQueuedCounts(self._reader)  # type: ignore[assignment]

    @contextlib.contextmanager
    def lane_job(self, project_id: str) -> Iterator[None]:
        """Within the block, this thread runs a lane job of ``project_id``: its writes lock
        that project, not every writer, and commit without waiting for the disk.

        The project's lock (beside the writers' lock, shared) keeps what the writers' lock
        promises where it matters: events of a project get their sequence numbers in commit
        order (lanes are per project), and what a run's end reads and writes (its run, the
        project's assets, its caused events and their runs) is the project's alone; writes
        of other kinds still take the writers' lock whole, so they wait for these and these
        for them. Only the total of queued runs that caused events are planned against may
        be passed by a few meanwhile.

        ``synchronous_commit = off``: a crash of PostgreSQL (not of a process) may lose the
        last fraction of a second of these commits, never corrupt anything, and losing them
        is safe: a lost claim or end leaves the run queued or running, so a job runs it again
        (the same run, an attempt more; after the lease when its worker is gone), and its
        effects on a platform sharing the store were in the same transaction, lost with it
        and applied once by the redelivery; a platform of its own is sent the outbox by the
        drainer's thread, whose marks of what it applied commit synchronously, which makes
        every commit before them durable (a crash between a send and its mark resends the
        same keys, as with every commit synchronous). An intake's transaction (an
        acknowledged event) is never made so."""
        before = getattr(self._thread, "project", None)
        self._thread.project = project_id
        try:
            yield
        finally:
            self._thread.project = before

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """One transaction, the only one writing across every process (in a lane job: the only
        one writing its project); nested: joins the outer one; rolled back if the block raises."""
        joined = getattr(self._thread, "tx", None)
        if joined is not None:
            yield joined
            return
        project = getattr(self._thread, "project", None)
        if project is not None:
            opening = (f"BEGIN; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}),"
                       f" pg_advisory_xact_lock({PROJECT_LOCKS}, {_project_key(project)})")
            yield from self._transaction(_connecting(self._lane_link()), opening)
            return
        with self._lock:
            yield from self._transaction(_connecting(self._link), f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def _transaction(self, connecting: Connecting, opening: str) -> Iterator[Transaction]:
        connection = self._begin(connecting, opening)
        self._thread.tx = transaction = Transaction(connection)
        try:
            yield transaction
            connection.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(psycopg.Error):
                if not connection.closed and not connection.broken:
                    connection.execute("ROLLBACK")
            if isinstance(error, psycopg.OperationalError):
                raise StoreUnavailable(unavailable(self.where, error)) from error
            raise
        finally:
            self._thread.tx = None

    def _begin(self, connecting: Connecting, opening: str) -> psycopg.Connection[Any]:
        """BEGIN and the locks, in one round trip; a connection that died while idle (a server
        restart) is replaced first: nothing was sent on it yet."""
        for fresh in (False, True):
            connection = connecting(fresh)
            try:
                connection.execute(opening)
                return connection
            except psycopg.OperationalError as error:
                if fresh:
                    raise StoreUnavailable(unavailable(self.where, error)) from error
        raise AssertionError("unreachable")

    def _lane_link(self) -> WriterLink:
        """This thread's connection for lane jobs (their writes run side by side), whose
        commits do not wait for the disk."""
        link: WriterLink | None = getattr(self._thread, "link", None)
        if link is None:
            link = self._thread.link = WriterLink(self.url, self.where, RECONNECT_PATIENCE_S, RELAXED)
            with self._lock:
                self._lane_links.append(link)
        return link

    @contextlib.contextmanager
    def claiming(self) -> Iterator[Any]:
        """A lane job's transaction outside the writers' lock, not waiting for the disk
        (``lane_job``): for what one process alone touches at a time (a lane's head, under its
        procrastinate lock), so claims do not queue behind writes."""
        if getattr(self._thread, "project", None) is not None:
            yield from self._transaction(_connecting(self._lane_link()), "BEGIN")
            return
        try:
            with self._pool.connection(timeout=RECONNECT_PATIENCE_S) as connection:
                # A pooled connection is not reopened: the pool drops it when it broke.
                yield from self._transaction(lambda fresh: connection, "BEGIN; SET LOCAL synchronous_commit = off")
        except psycopg_pool.PoolTimeout as error:
            raise StoreUnavailable(unavailable(self.where, error)) from error

    def _queued_moved(self, db: Any, project_id: str, delta: int) -> None:
        """Counted from the database (``SharedQueuedCounts``)."""

    def read(self) -> Any:
        """Reads, each statement on a pooled connection (sees every committed write)."""
        return self._reader

    def close(self) -> None:
        self._link.close()
        with self._lock:
            for link in self._lane_links:
                link.close()
        self._pool.close()
