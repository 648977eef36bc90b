"""The dispatcher when the host side of a run fails unexpectedly: the run is retried, then
dead-lettered, never left ``running``, and the lane goes on with its next runs.

Real store, registry, embedded platform and process sandboxes; only the run function is
wrapped, to fail the way a bug in the runtime would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.store import Store
from plugin_sdk.results import LogRecord, RunResult
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import active_plugin

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.logger.info("checked %s", asset_id)
            self.kili.add_to_review(asset_ids=[asset_id])
"""
PROJECT = "proj-lane"

#: What the wrapped run function does for an event id: ``raise`` (once per attempt), or
#: ``unstorable`` (a result the database refuses to store).
Faults = dict[str, str]


@pytest.fixture
def lane(tmp_path: Path, write_plugin) -> Iterator[Callable[..., tuple[Dispatcher, Store, list[str]]]]:
    """``lane(faults, max_attempts)``: a dispatcher on a real runtime with one plugin active
    on PROJECT, whose run function fails as ``faults`` says; also the store and the ids of the
    events the run function received, in order."""
    made: list[tuple[Dispatcher, Registry, SandboxManager, Store]] = []

    def make(faults: Faults, max_attempts: int = 3) -> tuple[Dispatcher, Store, list[str]]:
        store = Store(tmp_path / f"runtime-{len(made)}.db")
        platform = EmbeddedPlatform(store)
        registry, sandboxes = active_plugin(store, platform.read, write_plugin(tmp_path, PLUGIN), PROJECT)
        seen: list[str] = []
        raised: set[str] = set()

        def run(name: str, version: int, event: dict[str, Any]) -> RunResult:
            seen.append(event["id"])
            fault = faults.get(event["id"])
            if fault == "raise-once" and event["id"] not in raised:
                raised.add(event["id"])
                raise RuntimeError("a bug in the runtime")
            if fault == "raise":
                raise RuntimeError("a bug in the runtime")
            result = sandboxes.run(name, version, event)
            if fault == "unstorable":  # SQLite refuses a lone surrogate when it stores the logs
                return result.model_copy(update={"logs": [LogRecord(level="INFO", message="\ud800")]})
            return result

        dispatcher = Dispatcher(store, registry, platform, run, concurrency=2,
                                max_attempts=max_attempts, retry_base_s=0.01)
        made.append((dispatcher, registry, sandboxes, store))
        return dispatcher, store, seen

    yield make
    for dispatcher, registry, sandboxes, store in made:
        dispatcher.close()
        registry.close()
        sandboxes.close()
        store.close()


def submit_all(dispatcher: Dispatcher, *event_ids: str) -> None:
    for number, event_id in enumerate(event_ids):
        # One asset for all: one lane, in order.
        assert dispatcher.submit(make_event(id=event_id, project_id=PROJECT, asset_id="asset-1",
                                            json_response={"n": number}))
    assert dispatcher.wait_idle(timeout=120), "the lane never became idle"


def runs(store: Store) -> dict[str, tuple]:
    rows = store.read().execute("SELECT event_id, status, outcome, attempts, error FROM runs").fetchall()
    return {row["event_id"]: (row["status"], row["outcome"], row["attempts"], row["error"]) for row in rows}


def test_a_plain_exception_once_is_retried_and_the_lane_goes_on(lane) -> None:
    dispatcher, store, seen = lane({"evt-a": "raise-once"})
    submit_all(dispatcher, "evt-a", "evt-b", "evt-c")
    states = runs(store)
    assert {event: state[:3] for event, state in states.items()} == {
        "evt-a": ("succeeded", None, 2), "evt-b": ("succeeded", None, 1), "evt-c": ("succeeded", None, 1)}
    assert seen == ["evt-a", "evt-a", "evt-b", "evt-c"]
    assert dispatcher.pending(PROJECT) == 0


def test_an_exception_every_time_dead_letters_the_run_and_the_lane_goes_on(lane) -> None:
    dispatcher, store, seen = lane({"evt-a": "raise"}, max_attempts=3)
    submit_all(dispatcher, "evt-a", "evt-b")
    states = runs(store)
    status, outcome, attempts, error = states["evt-a"]
    assert (status, outcome, attempts) == ("dead", "infrastructure", 3)
    assert "the runtime failed on this run (RuntimeError: a bug in the runtime)" in error
    assert states["evt-b"][:2] == ("succeeded", None)
    assert seen == ["evt-a"] * 3 + ["evt-b"]
    # Later events of the lane still run: nothing is left busy.
    submit_all(dispatcher, "evt-c")
    assert runs(store)["evt-c"][0] == "succeeded"


def test_a_result_the_store_refuses_is_dead_lettered_not_left_running(lane) -> None:
    dispatcher, store, _ = lane({"evt-a": "unstorable"}, max_attempts=2)
    submit_all(dispatcher, "evt-a", "evt-b")
    states = runs(store)
    status, outcome, attempts, error = states["evt-a"]
    assert (status, outcome, attempts) == ("dead", "infrastructure", 2)
    assert "UnicodeEncodeError" in error
    # Nothing of the refused run was applied; the next run's action was.
    db = store.read()
    assert db.execute("SELECT COUNT(*) FROM run_actions r JOIN runs ON runs.id = r.run_id"
                      " WHERE runs.event_id = 'evt-a'").fetchone()[0] == 0
    assert states["evt-b"][0] == "succeeded"
    assert db.execute("SELECT status FROM assets WHERE id = 'asset-1'").fetchone()[0] == "TO_REVIEW"
