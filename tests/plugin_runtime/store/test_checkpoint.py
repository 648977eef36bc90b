"""The WAL is checkpointed by a thread of its own: the store's writer never checkpoints (a
commit never waits for a checkpoint's fsyncs), the WAL still starts over under a writer that
never stops, nothing written is lost, and a store dropped unclosed leaks neither thread nor
file."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import time
from pathlib import Path

from plugin_runtime.store import Store
from plugin_runtime.store.checkpoint import AUTOCHECKPOINT_OFF, Checkpointer

#: A row about one 4 KB page: each transaction below adds a WAL frame or two.
ROW = "x" * 3000
TRANSACTIONS = 3000


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def test_the_stores_writer_never_checkpoints_itself(tmp_path: Path) -> None:
    store = Store(tmp_path / "runtime.db")
    try:
        assert store._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        with store.write() as db:
            db.execute("INSERT INTO projects (id, created_at) VALUES ('p', 'now')")
    finally:
        store.close()
    assert connect(tmp_path / "runtime.db").execute("SELECT id FROM projects").fetchall() == [("p",)]


def test_the_wal_starts_over_under_a_writer_that_never_stops(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    writer = connect(path)
    writer.execute(AUTOCHECKPOINT_OFF)
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    lock = threading.RLock()
    checkpointer = Checkpointer(lambda: connect(path), lock, interval_s=0.01, restart_frames=64)
    # The thread's passes depend on scheduling (a fast machine wrote everything between two);
    # a pass every 200 transactions, the checkpointer's own, makes the bound below certain.
    side = connect(path)
    try:
        for number in range(TRANSACTIONS):
            with lock:
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("INSERT INTO t (body) VALUES (?)", (ROW,))
                writer.execute("COMMIT")
            if number % 200 == 199:
                checkpointer.checkpoint(side)
    finally:
        checkpointer.close()
        side.close()
    # Never checkpointed, the WAL would hold every transaction's frames (some 12 MB); started
    # over again and again, it holds at most what was written between two checkpoints.
    wal = Path(f"{path}-wal").stat().st_size
    assert wal < TRANSACTIONS * 4096 / 4, wal
    assert writer.execute("SELECT COUNT(*), MIN(body = ?) FROM t", (ROW,)).fetchone() == (TRANSACTIONS, 1)
    writer.close()
    assert connect(path).execute("SELECT COUNT(*) FROM t").fetchone()[0] == TRANSACTIONS


def test_a_store_dropped_without_closing_lets_its_thread_and_files_go(tmp_path: Path) -> None:
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    def checkpointers() -> int:
        return sum(thread.name == "sqlite-checkpoint" for thread in threading.enumerate())

    before_files, before_threads = open_files(), checkpointers()
    for number in range(5):
        Store(tmp_path / f"dropped-{number}.db").read().execute("SELECT 1")
    deadline = time.monotonic() + 30
    while checkpointers() > before_threads or open_files() > before_files:
        assert time.monotonic() < deadline, (checkpointers() - before_threads, open_files() - before_files)
        gc.collect()
        time.sleep(0.05)
