"""The PostgreSQL store on a real server: the same schema as SQLite's, migrations applied once
whoever starts first, one writer at a time across processes, and reconnection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from plugin_runtime.errors import Refused, SchemaOutdated, StoreUnavailable
from plugin_runtime.store import Store
from plugin_runtime.store.backends import open_store
from plugin_runtime.store.pg_connection import translate
from plugin_runtime.store.postgres import MIGRATIONS, PostgresStore, upgrade, version
from tests.plugin_runtime.store import pg_service

pytestmark = pytest.mark.postgres


def columns_sqlite(path: Path) -> dict[str, set[str]]:
    store = Store(path)
    db = store.read()
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                       " AND name NOT LIKE 'sqlite_%'")]
    out = {table: {r[1] for r in db.execute(f"PRAGMA table_info({table})")} for table in tables}
    store.close()
    return out


def columns_postgres(url: str) -> dict[str, set[str]]:
    """The runtime's tables (not the queue engine's, nor the queue's counts, which SQLite keeps
    in memory)."""
    out: dict[str, set[str]] = {}
    with psycopg.connect(url) as connection:
        for table, column in connection.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name NOT LIKE 'procrastinate%' AND table_name <> 'queued_runs'"):
            out.setdefault(table, set()).add(column)
    return out


def test_both_stores_have_the_same_tables_and_columns(postgres_server, tmp_path: Path) -> None:
    """A SQLite migration without its PostgreSQL twin (store/postgres.py) fails here."""
    url = postgres_server.database()
    PostgresStore(url).close()
    assert columns_postgres(url) == columns_sqlite(tmp_path / "runtime.db")


def test_migrations_run_once_when_processes_start_together(postgres_server) -> None:
    url = postgres_server.database()
    applied: list[list[int]] = []
    threads = [threading.Thread(target=lambda: applied.append(upgrade(url))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(applied, key=len) == [[], [], [], list(range(1, len(MIGRATIONS) + 1))]
    assert version(url) == len(MIGRATIONS)
    assert upgrade(url) == []  # up to date: nothing to do


def test_a_newer_database_is_refused_with_what_to_do(postgres_server) -> None:
    url = postgres_server.database()
    upgrade(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(SchemaOutdated, match="upgrade this runtime"):
        upgrade(url)


def test_a_store_that_must_not_migrate_says_to_run_db_upgrade(postgres_server) -> None:
    with pytest.raises(SchemaOutdated, match="plugin-runtime db upgrade"):
        PostgresStore(postgres_server.database(), migrate=False)


def test_the_url_scheme_chooses_the_store(postgres_server, tmp_path: Path) -> None:
    sqlite = open_store(None, tmp_path)
    assert type(sqlite) is Store and (tmp_path / "runtime.db").exists()
    sqlite.close()
    shared = open_store(postgres_server.database(), tmp_path)
    assert isinstance(shared, PostgresStore)
    shared.close()
    with pytest.raises(Refused, match="postgresql://user:password@host:port/database"):
        open_store("mysql://somewhere/db", tmp_path)


def test_placeholders_become_psycopgs_outside_quoted_text() -> None:
    assert translate("SELECT ? FROM t WHERE a = ? AND b LIKE 'x?%' AND c % 2 = 0") == (
        "SELECT %s FROM t WHERE a = %s AND b LIKE 'x?%%' AND c %% 2 = 0")
    assert translate('UPDATE t SET "freeze" = ?') == 'UPDATE t SET "freeze" = %s'


def test_rows_read_by_name_and_position_as_sqlite_rows(postgres_server) -> None:
    store = PostgresStore(postgres_server.database())
    try:
        with store.write() as db:
            store.plugins.create(db, "bot", "2026-01-01T00:00:00.000Z")
        row = store.plugins.get(store.read(), "bot")
        assert (row["name"], row[0], dict(row)["created_at"]) == ("bot", "bot", "2026-01-01T00:00:00.000Z")
        assert store.read().execute("SELECT value FROM json_each(?)", ('["a", "b"]',)).fetchall() == [("a",), ("b",)]
    finally:
        store.close()


def test_a_write_waits_for_another_processs_write_to_commit(postgres_server) -> None:
    """Two stores (two processes' worth) on one database: the second's transaction starts
    only once the first committed, so what it reads cannot change under it."""
    url = postgres_server.database()
    first, second = PostgresStore(url), PostgresStore(url)
    seen: list[bool] = []
    try:
        with first.write() as db:
            first.plugins.create(db, "bot", "t")

            def other() -> None:
                with second.write() as db2:
                    seen.append(second.plugins.get(db2, "bot") is not None)

            thread = threading.Thread(target=other)
            thread.start()
            _wait_for_a_lock_wait(url)
            assert seen == []
        thread.join(30)
        assert seen == [True]
    finally:
        first.close()
        second.close()


def _wait_for_a_lock_wait(url: str) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as connection:
        while not connection.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone():
            assert time.monotonic() < deadline, "the second write never waited for the first"
            time.sleep(0.02)


def test_writes_and_reads_go_on_after_postgresql_restarts() -> None:
    if pg_service.missing():
        pytest.skip(pg_service.missing())
    server = pg_service.PostgresServer()
    try:
        store = PostgresStore(server.database())
        with store.write() as db:
            store.plugins.create(db, "before", "t")
        server.restart()
        with store.write() as db:  # the writer's connection died with the server: replaced
            store.plugins.create(db, "after", "t")
        assert [r["name"] for r in store.plugins.names(store.read())] == ["after", "before"]
        server.stop()
        with pytest.raises(StoreUnavailable, match="send again once PostgreSQL answers"):
            store.plugins.names(store.read())
        server.start()
        assert len(store.plugins.names(store.read())) == 2
        store.close()
    finally:
        server.close()


def test_a_nul_in_text_is_kept_as_a_replacement_character_and_finds_itself(postgres_server) -> None:
    """PostgreSQL's text cannot hold NUL: a lookup by a name holding one was a 500."""
    store = PostgresStore(postgres_server.database())
    try:
        assert store.plugins.get(store.read(), "bot\x00") is None
        with store.write() as db:
            store.plugins.create(db, "odd\x00name", "t")
        assert store.plugins.get(store.read(), "odd\x00name")["name"] == "odd\ufffdname"
    finally:
        store.close()
