"""Taking a lane's head: claimed with its event in one transaction when it can run, left
queued when it waits for its retry time or its version's build; a busy lane costs one write
transaction per run, and no run is claimed twice across slices.

Real store, registry and embedded platform; the run function stands in for the sandbox
(what is measured here is the host's side of a run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.registry import BuildOutcome, Registry
from plugin_runtime.scheduler import LANE_SLICE, Head, StoreRunQueue
from plugin_runtime.source import load_source
from plugin_runtime.statuses import VersionStatus
from plugin_runtime.store import Store
from plugin_runtime.store.codec import later
from plugin_sdk.actions import AddToReview
from plugin_sdk.results import LogRecord, RunResult, Status
from plugin_sdk.testing import make_event

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            pass
"""
LANE = ("checker", 1, "proj")


class Runtime:
    """A store with ``checker`` v1 built (no sandbox needed) and active on ``proj``; runs
    go through ``run``, which records the events it receives."""

    def __init__(self, tmp_path: Path, write_plugin: Any) -> None:
        self.store = Store(tmp_path / "runtime.db")
        self.platform = EmbeddedPlatform(self.store)
        self.registry = Registry(self.store, lambda name, version, source: BuildOutcome(
            info={"subscriptions": ["onSubmit"]}))
        self.registry.upload("checker", load_source(write_plugin(tmp_path, PLUGIN)), create=True)
        assert self.registry.wait("checker", 1, 60)["status"] == "active"
        self.registry.activate("checker", "proj")
        self.seen: list[str] = []
        self.dispatcher = Dispatcher(self.store, self.registry, self.platform, self.run, concurrency=2)
        self.queue = StoreRunQueue(self.store)

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult:
        self.seen.append(event["id"])
        return RunResult(event_id=event["id"], status=Status.OK, actions=[AddToReview(asset_id=event["asset_id"])])

    def stored(self, count: int) -> None:
        """``count`` events of one asset, their runs queued but not started."""
        self.dispatcher.scheduler.close()
        for number in range(count):
            assert self.dispatcher.submit(make_event(id=f"e-{number}", project_id="proj", asset_id="asset-1"))

    def runs(self) -> list[Any]:
        return self.store.read().execute("SELECT event_id, status, attempts FROM runs ORDER BY event_seq").fetchall()

    def close(self) -> None:
        self.dispatcher.close()
        self.registry.close()
        self.store.close()


@pytest.fixture
def runtime(tmp_path: Path, write_plugin: Any) -> Iterator[Runtime]:
    made = Runtime(tmp_path, write_plugin)
    yield made
    made.close()


def test_take_claims_the_head_with_its_event_and_a_crashed_claim_is_taken_again(runtime: Runtime) -> None:
    runtime.stored(2)
    taken = runtime.queue.take(LANE)
    assert taken is not None and taken.head is Head.CLAIMED
    assert taken.run["event_id"] == "e-0" and taken.run["status"] == "running" and taken.run["attempts"] == 1
    assert taken.event is not None and taken.event["id"] == "e-0" and taken.event["asset_id"] == "asset-1"
    assert [tuple(r) for r in runtime.runs()] == [("e-0", "running", 1), ("e-1", "pending", 0)]
    # The process died with it running: the lane's head is still that run, one attempt more.
    again = runtime.queue.take(LANE)
    assert again is not None and (again.run["event_id"], again.run["attempts"]) == ("e-0", 2)


def test_a_head_waiting_for_its_retry_or_its_build_is_left_queued(runtime: Runtime) -> None:
    runtime.stored(1)
    run_id = runtime.store.read().execute("SELECT id FROM runs").fetchone()[0]
    with runtime.store.write() as db:
        runtime.store.runs.reschedule(db, run_id, "the engine was away", later(30))
    taken = runtime.queue.take(LANE)
    assert taken is not None and taken.head is Head.LATER and 25 < taken.wait_s <= 30
    with runtime.store.write() as db:
        db.execute("UPDATE runs SET next_attempt_at = NULL")
        db.execute("UPDATE plugin_versions SET status = ?", (VersionStatus.DEPLOYING,))
    taken = runtime.queue.take(LANE)
    assert taken is not None and taken.head is Head.BUILDING
    with runtime.store.write() as db:
        db.execute("UPDATE plugin_versions SET status = ?, build_error = 'no wheel for rules'", (VersionStatus.FAILED,))
    taken = runtime.queue.take(LANE)
    assert taken is not None and taken.head is Head.UNRUNNABLE
    assert taken.reason == "the build failed: no wheel for rules"
    with runtime.store.write() as db:
        db.execute("DELETE FROM plugin_versions")
    taken = runtime.queue.take(LANE)
    assert taken is not None and taken.head is Head.UNRUNNABLE and taken.reason == "the plugin was deleted"
    # None of these looks claimed the run.
    assert [tuple(r) for r in runtime.runs()] == [("e-0", "pending", 0)]


def test_a_busy_lane_costs_one_write_transaction_per_run_and_claims_each_run_once(runtime: Runtime) -> None:
    count = 2 * LANE_SLICE + 5  # across slices: a run taken ahead is never left for the next one
    runtime.stored(count)
    transactions: list[str] = []
    deletes: list[str] = []

    def traced(sql: str) -> None:
        (transactions if sql.startswith("BEGIN") else deletes if sql.startswith("DELETE") else []).append(sql)

    runtime.store._writer.set_trace_callback(traced)
    dispatcher = Dispatcher(runtime.store, runtime.registry, runtime.platform, runtime.run, concurrency=2)
    try:
        dispatcher.resume()
        assert dispatcher.wait_idle(timeout=120)
    finally:
        dispatcher.close()
        runtime.store._writer.set_trace_callback(None)
    assert runtime.seen == [f"e-{n}" for n in range(count)]
    assert [tuple(r) for r in runtime.runs()] == [(f"e-{n}", "succeeded", 1) for n in range(count)]
    # One per run, plus about one per slice (its first take, the one finding the lane empty):
    # a claim of its own per run would double it.
    slices = -(-count // LANE_SLICE)
    assert len(transactions) <= count + 2 * slices + 2, len(transactions)
    # First attempts have no earlier logs, actions or outbox rows to replace.
    assert deletes == []
    assert runtime.store.read().execute("SELECT status FROM assets WHERE id = 'asset-1'").fetchone()[0] == "TO_REVIEW"


def test_a_run_retried_replaces_what_its_earlier_attempt_left(runtime: Runtime) -> None:
    attempts: list[str] = []

    def run(name: str, version: int, event: dict[str, Any]) -> RunResult:
        attempts.append(event["id"])
        if len(attempts) == 1:
            return RunResult(event_id=event["id"], status=Status.ERROR, error="Traceback: boom",
                             logs=[LogRecord(level="INFO", message="first try")])
        return RunResult(event_id=event["id"], status=Status.OK, actions=[AddToReview(asset_id=event["asset_id"])],
                         logs=[LogRecord(level="INFO", message="second try")])

    runtime.stored(1)
    dispatcher = Dispatcher(runtime.store, runtime.registry, runtime.platform, run, concurrency=1)
    try:
        dispatcher.resume()
        assert dispatcher.wait_idle(timeout=60)
        run_id = runtime.store.read().execute("SELECT id FROM runs").fetchone()[0]
        assert [r["message"] for r in runtime.store.run_records.logs(runtime.store.read(), run_id)] == [
            "first try", "error: Traceback: boom"]
        dispatcher.retry(run_id)
        assert dispatcher.wait_idle(timeout=60)
    finally:
        dispatcher.close()
    db = runtime.store.read()
    assert [tuple(r) for r in runtime.runs()] == [("e-0", "succeeded", 2)]
    assert [r["message"] for r in runtime.store.run_records.logs(db, run_id)] == ["second try"]
    assert [(a["action"]["type"], a["status"]) for a in runtime.store.run_records.actions(db, run_id)] == [
        ("add_to_review", "applied")]


def test_a_lane_that_keeps_up_takes_once_and_finishes_once_per_event(runtime: Runtime) -> None:
    transactions: list[str] = []
    runtime.store._writer.set_trace_callback(lambda sql: transactions.append(sql) if sql.startswith("BEGIN") else None)
    try:
        for number in range(10):
            assert runtime.dispatcher.submit(make_event(id=f"e-{number}", project_id="proj", asset_id="asset-1"))
            assert runtime.dispatcher.wait_idle(timeout=60)
    finally:
        runtime.store._writer.set_trace_callback(None)
    assert [tuple(r) for r in runtime.runs()] == [(f"e-{n}", "succeeded", 1) for n in range(10)]
    # Per event: its intake, the take that claims its run, the finish that finds the lane empty
    # (and leaves it: no fourth transaction to look again).
    assert len(transactions) == 3 * 10, len(transactions)
