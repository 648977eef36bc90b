"""Webhook events stored by the intake's writer thread, many to a transaction: each is
acknowledged only once committed, an event the platform refuses is refused alone, duplicates
and full queues are judged event by event, closing stores what was handed over, and an intake
dropped unclosed does not leave its thread behind.

Real store, registry and embedded platform; the scheduler is stopped so runs stay queued."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.errors import Busy, PlatformConflict
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.registry import BuildOutcome, Registry
from plugin_runtime.source import load_source
from plugin_runtime.store import Store
from plugin_sdk.results import RunResult, Status
from plugin_sdk.testing import make_event

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            pass
"""


class Intake:
    """A dispatcher whose scheduler is stopped, ``checker`` active on ``proj``; the SQL
    statements the store's writer starts transactions with are counted."""

    def __init__(self, tmp_path: Path, write_plugin: Any, max_queue: int) -> None:
        self.store = Store(tmp_path / "runtime.db")
        self.registry = Registry(self.store, lambda name, version, source: BuildOutcome(
            info={"subscriptions": ["onSubmit"]}))
        self.registry.upload("checker", load_source(write_plugin(tmp_path, PLUGIN)), create=True)
        assert self.registry.wait("checker", 1, 60)["status"] == "active"
        self.registry.activate("checker", "proj")
        self.dispatcher = Dispatcher(self.store, self.registry, EmbeddedPlatform(self.store), self.run,
                                     max_queue=max_queue)
        self.dispatcher.scheduler.close()
        self.transactions = 0
        self.store._writer.set_trace_callback(self._traced)

    def _traced(self, sql: str) -> None:
        if sql.startswith("BEGIN"):
            self.transactions += 1

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult:
        return RunResult(event_id=event["id"], status=Status.OK)

    def send(self, *events: dict[str, Any]) -> list[Future[bool]]:
        """Hands the events to the writer while the store's writer is held, so they wait and
        go together; checks none is acknowledged before it is committed."""
        with self.store.write():
            futures = [self.dispatcher.submit_batched(event) for event in events]
            assert not any(future.done() for future in futures)
        return futures

    def stored(self) -> list[str]:
        return [r[0] for r in self.store.read().execute("SELECT id FROM events ORDER BY seq")]

    def close(self) -> None:
        self.dispatcher.close()
        self.registry.close()
        self.store.close()


@pytest.fixture
def intake(tmp_path: Path, write_plugin: Any) -> Iterator[Intake]:
    made = Intake(tmp_path, write_plugin, max_queue=100)
    yield made
    made.close()


def event(event_id: str, project: str = "proj", asset: str = "asset-1") -> dict[str, Any]:
    return make_event(id=event_id, project_id=project, asset_id=asset)


def test_events_arriving_together_are_stored_in_one_transaction_and_answered_once_committed(intake: Intake) -> None:
    before = intake.transactions
    futures = intake.send(*(event(f"e-{n}") for n in range(20)))
    assert [future.result(timeout=30) for future in futures] == [True] * 20
    # The first may have been taken alone before the others arrived; the rest waited together.
    assert intake.transactions - before <= 1 + 2
    assert intake.stored() == [f"e-{n}" for n in range(20)]
    assert intake.dispatcher.pending("proj") == 20


def test_an_event_the_platform_refuses_is_refused_alone(intake: Intake) -> None:
    assert intake.dispatcher.submit(event("first", asset="asset-x"))
    # The asset belongs to proj: the embedded platform refuses it for another project.
    good, bad, duplicate, other = intake.send(event("e-1"), event("e-2", project="other", asset="asset-x"),
                                              event("e-1"), event("e-3"))
    assert good.result(timeout=30) is True and other.result(timeout=30) is True
    assert duplicate.result(timeout=30) is False
    with pytest.raises(PlatformConflict, match="another project"):
        bad.result(timeout=30)
    assert intake.stored() == ["first", "e-1", "e-3"]


def test_full_queues_refuse_event_by_event_within_one_transaction(tmp_path: Path, write_plugin: Any) -> None:
    small = Intake(tmp_path, write_plugin, max_queue=3)
    try:
        futures = small.send(*(event(f"e-{n}") for n in range(5)))
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=30))
            except Busy as busy:
                outcomes.append(str(busy))
        assert outcomes == [True, True, True, "the runtime is busy; retry later", "the runtime is busy; retry later"]
        assert small.stored() == ["e-0", "e-1", "e-2"] and small.dispatcher.pending() == 3
    finally:
        small.close()


def test_closing_stores_what_was_handed_over_and_refuses_the_rest(intake: Intake) -> None:
    with intake.store.write():
        waiting = [intake.dispatcher.submit_batched(event(f"e-{n}")) for n in range(5)]
        # close() waits for the writer, which waits for this transaction: closed from a thread.
        closing = threading.Thread(target=intake.dispatcher.intake.close)
        closing.start()
    closing.join(timeout=30)
    assert [future.result(timeout=30) for future in waiting] == [True] * 5
    late = intake.dispatcher.submit_batched(event("late"))
    with pytest.raises(Busy, match="stopping"):
        late.result(timeout=30)
    assert intake.stored() == [f"e-{n}" for n in range(5)]


def test_an_intake_dropped_without_closing_lets_its_writer_thread_go(tmp_path: Path, write_plugin: Any) -> None:
    def writers() -> int:
        return sum(thread.name == "intake-writer" for thread in threading.enumerate())

    before = writers()
    dropped = Intake(tmp_path, write_plugin, max_queue=100)
    assert dropped.dispatcher.submit_batched(event("e-0")).result(timeout=30) is True
    assert writers() == before + 1
    dropped.registry.close()
    dropped.store._writer.set_trace_callback(None)
    del dropped
    deadline = time.monotonic() + 30
    while writers() > before:
        assert time.monotonic() < deadline, "the writer thread outlived its intake"
        gc.collect()
        time.sleep(0.05)
