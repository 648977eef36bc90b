"""The PostgreSQL store's lane jobs on a real server: a lane job's writes lock its project
(others' run beside them, the writers' lock and the project's own writes wait), commit without
waiting for the disk, and the shared queue keeps one job waiting per lane, which a worker
cannot start before the transaction queueing a run into it committed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from plugin_runtime.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(postgres_server) -> str:
    return postgres_server.database()


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    yield opened
    opened.close()


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _wait_for_a_lock_wait(url: str) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as connection:
        while not connection.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone():
            assert time.monotonic() < deadline, "the second write never waited for the first"
            time.sleep(0.02)


def _create(store: PostgresStore, name: str) -> None:
    with store.write() as db:
        store.plugins.create(db, name, "t")


def _lane_create(store: PostgresStore, project_id: str, name: str) -> None:
    with store.lane_job(project_id):
        _create(store, name)


def test_lane_jobs_of_two_projects_write_side_by_side(store: PostgresStore) -> None:
    with store.lane_job("proj-a"), store.write() as db:
        store.plugins.create(db, "a", "t")
        thread, done = _in_thread(lambda: _lane_create(store, "proj-b", "b"))
        assert done.wait(30), "proj-b's lane job waited for proj-a's"
        assert store.plugins.get(store.read(), "b") is not None
    thread.join(30)
    assert store.plugins.get(store.read(), "a") is not None


def test_a_lane_job_waits_for_its_own_projects_writes(store: PostgresStore, url: str) -> None:
    """Two processes' worth: events of one project get their order from one writer at a time."""
    other = PostgresStore(url)
    seen: list[bool] = []

    def second() -> None:
        with other.lane_job("proj-a"), other.write() as db:
            seen.append(other.plugins.get(db, "first") is not None)

    try:
        with store.lane_job("proj-a"), store.write() as db:
            store.plugins.create(db, "first", "t")
            thread, _ = _in_thread(second)
            _wait_for_a_lock_wait(url)
            assert seen == []
        thread.join(30)
        assert seen == [True]
    finally:
        other.close()


@pytest.mark.parametrize("first_is_lane_job", [True, False])
def test_lane_jobs_and_other_writes_wait_for_each_other(store: PostgresStore, url: str,
                                                        first_is_lane_job: bool) -> None:
    """Writes other than lane jobs' (an intake, the admin API) still hold every writer off."""
    other = PostgresStore(url)
    seen: list[bool] = []

    def second() -> None:
        with other.write() as db:
            seen.append(other.plugins.get(db, "first") is not None)

    def second_as_lane_job() -> None:
        with other.lane_job("proj-b"):
            second()

    try:
        with store.lane_job("proj-a") if first_is_lane_job else contextlib.nullcontext(), store.write() as db:
            store.plugins.create(db, "first", "t")
            thread, _ = _in_thread(second if first_is_lane_job else second_as_lane_job)
            _wait_for_a_lock_wait(url)
            assert seen == []
        thread.join(30)
        assert seen == [True]
    finally:
        other.close()


def test_only_lane_jobs_commit_without_waiting_for_the_disk(store: PostgresStore) -> None:
    def durability() -> str:
        with store.write() as db:
            return str(db.execute("SHOW synchronous_commit").fetchone()[0])

    assert durability() == "on"
    with store.lane_job("proj-a"):
        assert durability() == "off"
        with store.claiming() as claiming:
            assert claiming.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    assert durability() == "on"


def test_a_nested_write_in_a_lane_job_joins_its_transaction(store: PostgresStore) -> None:
    with pytest.raises(RuntimeError), store.lane_job("proj-a"), store.write() as outer:
        store.plugins.create(outer, "kept-out", "t")
        with store.write() as inner:
            assert inner is outer
        raise RuntimeError("rolled back")
    assert store.plugins.get(store.read(), "kept-out") is None


# The shared queue's jobs ---------------------------------------------------------------


def _queue(store: PostgresStore, run_id: str, project_id: str = "proj-a", plugin: str = "bot") -> None:
    with store.write() as db:
        store.runs.insert(db, run_id, f"evt-{run_id}", 1, plugin, 1, project_id, None, "t")


def _jobs(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return [(lock, status) for lock, status in connection.execute(
            "SELECT lock, status::text FROM procrastinate_jobs ORDER BY id")]


def test_a_lane_keeps_one_job_waiting_to_start(store: PostgresStore, url: str) -> None:
    _queue(store, "r1")
    _queue(store, "r2")  # the lane's job has not started: it will take r2 too
    _queue(store, "r3", project_id="proj-b")
    assert _jobs(url) == [("lane:bot:1:proj-a", "todo"), ("lane:bot:1:proj-b", "todo")]
    with psycopg.connect(url, autocommit=True) as connection:  # proj-a's job starts
        connection.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE lock = 'lane:bot:1:proj-a'")
    _queue(store, "r4")  # the running job may have looked already: one more, to start after it
    _queue(store, "r5")
    assert _jobs(url) == [("lane:bot:1:proj-a", "doing"), ("lane:bot:1:proj-b", "todo"),
                          ("lane:bot:1:proj-a", "todo")]


def test_a_waiting_job_cannot_start_before_a_run_queued_into_it_committed(store: PostgresStore, url: str) -> None:
    """Else it could start, find its lane empty and end, leaving the run without a job."""
    _queue(store, "r1")
    with psycopg.connect(url, autocommit=True) as worker:
        registered = worker.execute("SELECT worker_id FROM procrastinate_register_worker_v1()").fetchone()
        assert registered is not None

        def fetch() -> int | None:
            row = worker.execute("SELECT (procrastinate_fetch_job_v2(ARRAY['runs'], %s)).id",
                                 (registered[0],)).fetchone()
            return None if row is None else row[0]

        with store.write() as db:
            store.runs.insert(db, "r2", "evt-r2", 2, "bot", 1, "proj-a", None, "t")
            assert fetch() is None  # the lane's job is locked by this transaction: skipped
        assert fetch() is not None
