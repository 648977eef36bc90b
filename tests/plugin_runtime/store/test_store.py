"""The store: existing data directories upgrade, repositories share the caller's transaction,
and the runtime's SQL is portable outside the SQLite module."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from plugin_runtime.store import MIGRATIONS, Store

PACKAGE = Path(__file__).resolve().parents[3] / "plugin_runtime"


def old_database(path: Path, version: int) -> sqlite3.Connection:
    """A database as a runtime that knew only the first ``version`` migrations left it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    for script in MIGRATIONS[:version]:
        for statement in script.split(";"):
            if statement.strip():
                db.execute(statement)
    return db


def test_log_cursors_survive_the_upgrade_and_never_go_back(tmp_path: Path) -> None:
    db = old_database(tmp_path / "runtime.db", 5)
    db.executemany("INSERT INTO run_logs (run_id, seq, level, message, source) VALUES (?, ?, 'INFO', ?, 'plugin')",
                   [("run-a", 0, "first"), ("run-a", 1, "second"), ("run-b", 0, "third")])
    before = dict(db.execute("SELECT message, rowid FROM run_logs").fetchall())
    db.close()
    store = Store(tmp_path / "runtime.db")
    try:
        read = store.read()
        assert read.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert dict(read.execute("SELECT message, id FROM run_logs").fetchall()) == before
        # The newest line deleted (a run's logs replaced when it is retried): a new line still
        # gets a cursor past every one a client may have seen.
        with store.write() as wdb:
            store.run_records.replace_logs(wdb, "run-b", [("INFO", "again", "plugin")])
        [(cursor,)] = read.execute("SELECT id FROM run_logs WHERE message = 'again'").fetchall()
        assert cursor > max(before.values())
    finally:
        store.close()


def test_repositories_work_in_the_callers_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "runtime.db")
    try:
        with store.write() as db:
            store.plugins.create(db, "bot", "2026-01-01T00:00:00.000Z")
            assert store.activations.add(db, "bot", "proj-1", "2026-01-01T00:00:00.000Z")
            assert not store.activations.add(db, "bot", "proj-1", "2026-01-01T00:00:00.000Z")
        try:
            with store.write() as db:
                store.activations.remove(db, "bot", "proj-1")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert store.activations.projects(store.read(), "bot") == ["proj-1"]
        event = {"id": "evt-1", "type": "onSubmit", "project_id": "proj-1"}
        with store.write() as db:
            first = store.events.insert(db, event, "webhook", None, None, 0, "evt-1", "2026-01-01T00:00:00.000Z")
            second = store.events.insert(db, {**event, "id": "evt-2"}, "webhook", None, None, 0, "evt-2",
                                         "2026-01-01T00:00:00.000Z")
        assert second > first
        assert store.events.exists(store.read(), "evt-2")
    finally:
        store.close()


def test_sqlite_only_constructs_stay_in_the_sqlite_module() -> None:
    banned = re.compile(r"INSERT OR IGNORE|INSERT OR REPLACE|lastrowid|\browid\b|BEGIN IMMEDIATE", re.IGNORECASE)
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "store" / "sqlite.py":
            continue
        found += [f"{path.relative_to(PACKAGE)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                  if banned.search(line)]
    assert found == []


def test_queued_counts_follow_committed_runs_and_reopen_from_the_store(tmp_path: Path) -> None:
    at = "2026-01-01T00:00:00.000Z"
    store = Store(tmp_path / "runtime.db")

    def counted() -> tuple[int, int, int]:
        return store.queued.count(), store.queued.count("proj-1"), store.queued.count("proj-2")

    def stored() -> tuple[int, int, int]:
        runs, db = store.runs, store.read()
        return runs.count_queued(db), runs.count_queued(db, "proj-1"), runs.count_queued(db, "proj-2")

    try:
        with store.write() as db:
            for number, project in enumerate(("proj-1", "proj-1", "proj-2", "proj-2")):
                event = {"id": f"evt-{number}", "type": "onSubmit", "project_id": project}
                store.events.insert(db, event, "webhook", None, None, 0, event["id"], at)
        with store.write() as db:
            for number, project in enumerate(("proj-1", "proj-1", "proj-2")):
                store.runs.insert(db, f"run-{number}", f"evt-{number}", number, "bot", 1, project, None, at)
            store.runs.insert(db, "run-skipped", "evt-3", 3, "bot", 1, "proj-2", None, at, None, ("queue_full", "x"))
        assert counted() == stored() == (3, 2, 1)
        try:
            with store.write() as db:
                store.runs.insert(db, "run-9", "evt-3", 3, "bot", 2, "proj-2", None, at)
                store.runs.end(db, "run-0", "succeeded", "ok", None, at, 1.0, {})
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert counted() == stored() == (3, 2, 1)
        with store.write() as db:
            assert store.runs.claim(db, "run-0", at)
            store.runs.end(db, "run-0", "succeeded", "ok", None, at, 1.0, {})
            store.runs.end_bare(db, "run-2", "dead", "infrastructure", "gone", at)
            # Ending an ended run again moves nothing.
            store.runs.end_bare(db, "run-2", "dead", "infrastructure", "gone", at)
        assert counted() == stored() == (1, 1, 0)
        with store.write() as db:
            store.runs.requeue(db, "run-2")
            store.runs.requeue(db, "run-skipped")
        assert counted() == stored() == (3, 1, 2)
    finally:
        store.close()
    reopened = Store(tmp_path / "runtime.db")
    try:
        assert (reopened.queued.count(), reopened.queued.count("proj-1"), reopened.queued.count("proj-2")) == (3, 1, 2)
    finally:
        reopened.close()
