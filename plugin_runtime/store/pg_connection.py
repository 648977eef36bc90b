"""psycopg connections that the repositories can use as they use ``sqlite3`` ones.

The repositories write portable SQL with ``?`` placeholders and read rows by column name or
position (``sqlite3.Row``). Here a statement's ``?`` become psycopg's ``%s`` (once per
distinct statement, cached; ``?`` and ``%`` inside quoted text are left alone), and rows come
back as ``Row``, a tuple also indexed by column name.

Reads go through a pool: ``Reader.execute`` borrows a connection for one statement (in
autocommit, so it sees every committed write, as SQLite's reading connections do), fetches
the rows and gives the connection back, so the threads of a process (HTTP handlers, workers)
share a few connections instead of holding one each.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool

from plugin_runtime.errors import StoreUnavailable

_log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` with ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class Row(tuple):
    """A result row read by position or by column name, as ``sqlite3.Row``."""

    __slots__ = ()
    _index: dict[str, int] = {}
    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    # The first of two equal names wins, as sqlite3.Row's lookup does.
    index: dict[str, int] = {}
    for number, name in enumerate(names):
        index.setdefault(name, number)
    return type("Row", (Row,), {"__slots__": (), "_index": index, "_names": names})


def row_factory(cursor: Any) -> Any:
    # The names straight from the result: ``cursor.description`` builds a Column object per
    # column at every statement (a tenth of a worker's time in the database driver).
    result = cursor.pgresult
    if result is None:
        return _row_class(())
    names = tuple(result.fname(number).decode() for number in range(result.nfields))
    return _row_class(names)


class Result:
    """What ``execute`` returns: the statement's rows, fetched, and its row count."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount
        self._next = 0

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def without_nul(parameters: Sequence[Any] | None) -> Sequence[Any] | None:
    """PostgreSQL's text cannot hold NUL (SQLite's can): it is written, and looked up, as
    U+FFFD, the way lone surrogates are kept (an id holding one still finds itself)."""
    if not parameters:
        return None
    if any(isinstance(value, str) and "\x00" in value for value in parameters):
        return [value.replace("\x00", "\ufffd") if isinstance(value, str) else value for value in parameters]
    return parameters


def run(connection: psycopg.Connection[Any], sql: str, parameters: Sequence[Any] | None) -> Result:
    cursor = connection.execute(translate(sql), without_nul(parameters))
    result = cursor.pgresult  # not ``description``, which builds an object per column
    rows = cursor.fetchall() if result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK else []
    return Result(rows, cursor.rowcount)


class Transaction:
    """The writer connection inside ``write()``: statements of one transaction."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.raw = connection

    def execute(self, sql: str, parameters: Sequence[Any] | None = None, /) -> Result:
        return run(self.raw, sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Result:
        rows = [without_nul(row) or () for row in parameters]
        if len(rows) == 1:  # psycopg's executemany enters and leaves a pipeline: dear for one row
            self.raw.execute(translate(sql), rows[0])
        elif rows:
            with self.raw.cursor() as cursor:
                cursor.executemany(translate(sql), rows)
        return Result([], len(rows))

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def set_progress_handler(self, handler: Any, steps: int) -> None:
        """SQLite's way to stop a long read; here ``statement_timeout`` bounds every statement."""


class Reader:
    """Reads, each statement on a pooled connection in autocommit."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any], where: str, patience_s: float = 10.0) -> None:
        self._pool, self._where, self._patience_s = pool, where, patience_s

    def execute(self, sql: str, parameters: Sequence[Any] | None = None, /) -> Result:
        # Pooled connections die with the server (a restart) unnoticed until used: the pool's
        # broken ones are dropped and the read, which changes nothing, sent again, until the
        # server answers or ``patience_s`` passed.
        deadline = time.monotonic() + self._patience_s
        delay = 0.05
        while True:
            try:
                with self._pool.connection(timeout=self._patience_s) as connection:
                    return run(connection, sql, parameters)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(unavailable(self._where, error)) from error
                _log.info("PostgreSQL at %s: %s; reading again in %.2f s", self._where, error, delay)
                time.sleep(delay)
                self._pool.check()
                delay = min(delay * 2, 1.0)

    def executemany(self, sql: str, parameters: Any, /) -> Result:
        raise TypeError("reading connections do not write: use store.write()")

    in_transaction = False

    def set_progress_handler(self, handler: Any, steps: int) -> None:
        """SQLite's way to stop a long read; here ``statement_timeout`` bounds every statement."""


def unavailable(where: str, error: BaseException) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (f"the database at {where} is unavailable ({reason}); nothing was changed: "
            "the runtime keeps trying to reconnect, send again once PostgreSQL answers")


def connect(url: str, autocommit: bool = True, options: str | None = None) -> psycopg.Connection[Any]:
    """``options``: the server settings of the session (``-c name=value``)."""
    if options:
        return psycopg.connect(url, autocommit=autocommit, row_factory=row_factory, connect_timeout=10,
                               options=options)
    return psycopg.connect(url, autocommit=autocommit, row_factory=row_factory, connect_timeout=10)


def configure(connection: psycopg.Connection[Any]) -> None:
    """A pooled reading connection: rows as ``Row``; a read stops after 30 s, whatever asked."""
    connection.row_factory = row_factory
    connection.execute("SET statement_timeout = '30s'")


class WriterLink:
    """A writing connection (``options``: its session's settings), opened again (with
    backoff) after it broke."""

    def __init__(self, url: str, where: str, patience_s: float = 30.0, options: str | None = None) -> None:
        self.url, self.where, self.patience_s, self.options = url, where, patience_s, options
        self._connection: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()

    def get(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        return self.reconnect()

    def reconnect(self) -> psycopg.Connection[Any]:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        deadline = time.monotonic() + self.patience_s
        delay = 0.1
        while True:
            try:
                self._connection = connect(self.url, options=self.options)
                return self._connection
            except psycopg.OperationalError as error:
                if time.monotonic() + delay > deadline or self._stop.is_set():
                    raise StoreUnavailable(unavailable(self.where, error)) from error
                _log.warning("PostgreSQL at %s unreachable, again in %.1f s: %s", self.where, delay, error)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        self._stop.set()
        if self._connection is not None:
            self._connection.close()
