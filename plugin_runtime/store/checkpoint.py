"""SQLite's WAL copied back into the database file by a thread of its own, off the write path.

Left to SQLite (``wal_autocheckpoint``), the commit that crosses a thousand WAL pages
checkpoints there and then, two fsyncs included, while it holds the store's only writer: on a
busy disk every intake and every run waited behind it, about half of their time. The writer
turns that off (``AUTOCHECKPOINT_OFF``) and this thread checkpoints every ``interval_s``
instead, ``PASSIVE``: it copies what no reader still needs without blocking anyone.

A WAL starts again from its beginning only once a checkpoint copied all of it, which a
checkpoint running beside a busy writer never does: past ``restart_frames`` pages, the
thread checkpoints the few pages written meanwhile once more while it holds the store's write
lock, and the next commit starts the WAL over (a long WAL makes every read slower).
Durability is unchanged: a commit is in the WAL either way, and the WAL is replayed when the
database is opened after a crash.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

#: Run on the writer connection: it never checkpoints itself.
AUTOCHECKPOINT_OFF = "PRAGMA wal_autocheckpoint=0"
#: A busy runtime writes some ten WAL pages per event: a fifth of a second is a few thousand,
#: mostly the same hot pages, each copied once.
INTERVAL_S = 0.2
#: WAL pages (4 KB, 64 MB in all) past which the WAL is made to start over: a busy runtime
#: gets there every few seconds, so the writers wait for that checkpoint's fsyncs that seldom;
#: the wal-index SQLite searches on each page read grows a table per 4,096.
RESTART_FRAMES = 16384

_log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], write_lock: AbstractContextManager[Any],
                 interval_s: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES) -> None:
        """``connect``: a new connection to the database (the thread's own; ``connect`` is not
        kept, so the thread never keeps a store alive); ``write_lock``: held by the store
        around each write transaction."""
        self._write_lock = write_lock
        self.interval_s, self.restart_frames = interval_s, restart_frames
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._loop, args=(connect(),), name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self, connection: sqlite3.Connection) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self.checkpoint(connection)
            self.checkpoint(connection)  # what the last commits left, before the store closes
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= self.restart_frames:
                with self._write_lock:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            # The WAL only grows meanwhile (reads slow down a little); nothing is lost. Said once.
            if not self._failed:
                _log.exception("checkpointing the database's WAL failed; retrying every %.1f s", self.interval_s)
            self._failed = True
        else:
            self._failed = False

    def stop(self) -> None:
        """Stop soon, without waiting (a store dropped without ``close``)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
