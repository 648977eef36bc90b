"""The scheduler over the durable run queue: a failed attempt waits at its stored
``next_attempt_at`` without holding a worker, its lane keeps event order meanwhile, and runs
left queued by a stopped runtime are taken up by the next one.

Real store, registry, embedded platform and process sandboxes; only the run function is
wrapped, to fail the way an infrastructure failure would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.source import load_source
from plugin_runtime.store import Store
from plugin_sdk.results import RunResult
from plugin_sdk.testing import make_event

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
"""


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Runtime:
    """A dispatcher on a real store with one worker, one plugin active on projects a and b;
    the run function raises for the event ids in ``failing``."""

    def __init__(self, tmp_path: Path, write_plugin) -> None:
        self.path = tmp_path / "runtime.db"
        self.failing: set[str] = set()
        self.seen: list[str] = []
        self.store = Store(self.path)
        self.platform = EmbeddedPlatform(self.store)
        registry: Registry | None = None
        self.sandboxes = SandboxManager("process", lambda n, v: registry.version(n, v),  # type: ignore[union-attr]
                                        lambda n, v: registry.archive(n, v), self.platform.read)  # type: ignore[union-attr]
        self.registry = registry = Registry(self.store, self.sandboxes.build)
        registry.upload("checker", load_source(write_plugin(tmp_path, PLUGIN)), create=True)
        assert registry.wait("checker", 1, 60)["status"] == "active"
        for project in ("a", "b"):
            registry.activate("checker", project)
        self.dispatcher = self._dispatcher()

    def _dispatcher(self) -> Dispatcher:
        return Dispatcher(self.store, self.registry, self.platform, self.run, concurrency=1,
                          max_attempts=3, retry_base_s=1.0)

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult:
        self.seen.append(event["id"])
        if event["id"] in self.failing:
            raise RuntimeError("the engine is away")
        return self.sandboxes.run(name, version, event)

    def status(self, event_id: str) -> tuple[str, int, str | None]:
        row = self.store.read().execute("SELECT status, attempts, next_attempt_at FROM runs WHERE event_id = ?",
                                        (event_id,)).fetchone()
        return row["status"], row["attempts"], row["next_attempt_at"]

    def close(self) -> None:
        self.dispatcher.close()
        self.registry.close()
        self.sandboxes.close()
        self.store.close()


@pytest.fixture
def runtime(tmp_path: Path, write_plugin) -> Iterator[Runtime]:
    made = Runtime(tmp_path, write_plugin)
    yield made
    made.close()


def submit(runtime: Runtime, event_id: str, project: str, asset: str = "asset-1") -> None:
    assert runtime.dispatcher.submit(make_event(id=event_id, project_id=project, asset_id=asset))


def test_a_retry_waits_at_its_stored_time_without_holding_the_only_worker(runtime: Runtime) -> None:
    runtime.failing.add("a-1")
    submit(runtime, "a-1", "a")
    wait_for(lambda: runtime.status("a-1")[2] is not None)
    status, attempts, not_before = runtime.status("a-1")
    assert (status, attempts) == ("pending", 1)  # waiting for its next attempt, stored
    # The lane's next event waits behind it (event order); another lane runs meanwhile on the
    # one worker, which a sleeping retry would have held.
    submit(runtime, "a-2", "a")
    submit(runtime, "b-1", "b", asset="asset-b")
    wait_for(lambda: runtime.status("b-1")[0] == "succeeded")
    assert runtime.status("a-1")[0] == "pending" and runtime.status("a-2")[0] == "pending"
    runtime.failing.clear()
    assert runtime.dispatcher.wait_idle(timeout=60)
    assert runtime.status("a-1")[:2] == ("succeeded", 2) and runtime.status("a-2")[0] == "succeeded"
    assert [e for e in runtime.seen if e.startswith("a-")] == ["a-1", "a-1", "a-2"]
    assert runtime.dispatcher.pending() == 0


def test_runs_left_queued_by_a_stopped_runtime_run_in_the_next(runtime: Runtime) -> None:
    # Events stored while the scheduler is stopping: their runs wait in the store, not in memory.
    runtime.dispatcher.close()
    for number in range(3):
        submit(runtime, f"a-{number}", "a")
    assert runtime.seen == [] and runtime.dispatcher.pending("a") == 3
    runtime.dispatcher = runtime._dispatcher()
    runtime.dispatcher.resume()
    assert runtime.dispatcher.wait_idle(timeout=60)
    assert [runtime.status(f"a-{n}")[0] for n in range(3)] == ["succeeded"] * 3
    assert runtime.seen == ["a-0", "a-1", "a-2"]


def test_a_plugin_holding_every_slot_does_not_hold_back_another_plugins_lane(runtime: Runtime, tmp_path: Path,
                                                                                write_plugin) -> None:
    """Two slots, both held by one plugin's hooks that do not return: another plugin's run starts
    at once on an extra slot; the first plugin's third lane waits for one of its own slots."""
    runtime.registry.upload("other", load_source(write_plugin(tmp_path, PLUGIN)), create=True)
    assert runtime.registry.wait("other", 1, 60)["status"] == "active"
    runtime.registry.activate("checker", "c")
    runtime.registry.activate("other", "d")
    released = threading.Event()
    entered: list[str] = []

    def run(name: str, version: int, event: dict[str, Any]) -> RunResult:
        entered.append(event["id"])
        if name == "checker":
            released.wait(60)
        return runtime.sandboxes.run(name, version, event)

    runtime.dispatcher.close()
    runtime.dispatcher = Dispatcher(runtime.store, runtime.registry, runtime.platform, run, concurrency=2)
    for project in ("a", "b", "c"):
        submit(runtime, f"{project}-1", project, asset=f"asset-{project}")
    wait_for(lambda: len(entered) == 2)
    submit(runtime, "d-1", "d", asset="asset-d")
    try:
        wait_for(lambda: runtime.status("d-1")[0] == "succeeded")
        assert sorted(entered) in (["a-1", "b-1", "d-1"], ["a-1", "c-1", "d-1"], ["b-1", "c-1", "d-1"])
    finally:
        released.set()
    assert runtime.dispatcher.wait_idle(timeout=60)
    assert [runtime.status(f"{p}-1")[0] for p in "abcd"] == ["succeeded"] * 4
