"""A lane's backlog runs in batches: its waiting runs are claimed together, sent to the warm
sandbox worker in one message and recorded in one transaction, each run as it would be alone:
its own status, actions, logs and time limit, in event order. A run that stops its worker
ends as it would alone and the next ones run in a fresh worker; a runtime failure records the
runs before it and puts those after it back, no attempt counted against them.

Real store, registry, embedded platform and process sandboxes; only ``run_many`` is wrapped,
to hold the lane while a backlog builds up and to fail as the infrastructure would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.reads import ReadLimits, ReadMeter
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.base import Limits, LimitsPolicy
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.source import load_source
from plugin_runtime.store import Store
from plugin_sdk.results import RunResult
from plugin_sdk.testing import make_event

PLUGIN = """
    import os
    import time

    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            what = label["jsonResponse"].get("do")
            self.logger.info("event for %s", asset_id)
            if what == "fail":
                raise ValueError("a bad label")
            if what == "exit":
                os._exit(3)
            if what == "hang":
                time.sleep(60)
            if what == "tally":  # reads what the lane's runs before it wrote
                asset = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])[0]
                count = int((asset.get("jsonMetadata") or {}).get("count", 0))
                self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"count": count + 1}])
                return
            if what == "read":
                self.logger.info("%d labels", len(self.kili.labels(project_id=self.project_id, asset_id=asset_id)))
            self.kili.add_to_review(asset_ids=[asset_id])
"""
BACKLOG = 10


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Runtime:
    """A dispatcher running batches through process sandboxes (1 s per run); ``calls`` lists
    the events of each run (alone) or ``run_many`` call, held until ``hold`` is set; ``broken`` an event id whose run raises as a lost
    engine would, once."""

    def __init__(self, tmp_path: Path, write_plugin) -> None:
        self.store = Store(tmp_path / "runtime.db")
        self.platform = EmbeddedPlatform(self.store)
        registry: Registry | None = None
        self.reads = ReadMeter(self.platform.read, ReadLimits())
        self.sandboxes = SandboxManager("process", lambda n, v: registry.version(n, v),  # type: ignore[union-attr]
                                        lambda n, v: registry.archive(n, v), self.reads,  # type: ignore[union-attr]
                                        policy=LimitsPolicy(defaults=Limits(timeout_s=1.0)))
        self.registry = registry = Registry(self.store, self.sandboxes.build)
        registry.upload("checker", load_source(write_plugin(tmp_path, PLUGIN)), create=True)
        assert registry.wait("checker", 1, 60)["status"] == "active"
        registry.activate("checker", "proj")
        self.calls: list[list[str]] = []
        self.hold = threading.Event()
        self.broken: str | None = None
        self.dispatcher = Dispatcher(self.store, self.registry, self.platform, self.reads.metered(self.run),
                                     concurrency=1, max_attempts=3, retry_base_s=0.5,
                                     run_many=self.reads.metered_many(self.run_many))

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult:
        """A run alone (a lane's head when nothing waits behind it)."""
        self.calls.append([event["id"]])
        assert self.hold.wait(60)
        return self.sandboxes.run(name, version, event)

    def run_many(self, name: str, version: int, events: list[dict[str, Any]]) -> Iterator[RunResult]:
        self.calls.append([event["id"] for event in events])
        assert self.hold.wait(60)
        for result in self.sandboxes.run_many(name, version, events):
            if result.event_id == self.broken:
                self.broken = None
                raise RuntimeError("the engine is away")
            yield result

    def submit_backlog(self, actions: dict[int, str] | None = None) -> list[str]:
        """e-0, whose run holds the lane, then BACKLOG events waiting behind it."""
        ids = [f"e-{k}" for k in range(BACKLOG + 1)]
        for k, event_id in enumerate(ids):
            do = (actions or {}).get(k)
            assert self.dispatcher.submit(make_event(id=event_id, project_id="proj", asset_id=f"asset-{k}",
                                                     json_response={"do": do} if do else {}))
            if k == 0:
                wait_for(lambda: self.calls)  # e-0 claimed alone: the others wait behind it
        return ids

    def runs(self) -> dict[str, Any]:
        return {row["event_id"]: row for row in self.store.read().execute(
            "SELECT event_id, id, status, outcome, attempts, error, metrics, event_seq FROM runs")}

    def applied(self, run_id: str) -> list[str]:
        return [json.loads(row[0])["type"] for row in self.store.read().execute(
            "SELECT action FROM run_actions WHERE run_id = ? AND status = 'applied' ORDER BY seq", (run_id,))]

    def logs(self, run_id: str) -> list[str]:
        return [row[0] for row in self.store.read().execute(
            "SELECT message FROM run_logs WHERE run_id = ? ORDER BY seq", (run_id,))]

    def pool(self) -> Any:
        return self.sandboxes._pool("checker", 1)

    def close(self) -> None:
        self.hold.set()
        self.dispatcher.close()
        self.registry.close()
        self.sandboxes.close()
        self.store.close()


@pytest.fixture
def runtime(tmp_path: Path, write_plugin) -> Iterator[Runtime]:
    made = Runtime(tmp_path, write_plugin)
    yield made
    made.close()


def test_a_backlog_runs_in_one_batch_each_run_recorded_as_alone(runtime: Runtime) -> None:
    ids = runtime.submit_backlog()
    runtime.hold.set()
    assert runtime.dispatcher.wait_idle(60)
    assert runtime.calls == [ids[:1], ids[1:]]  # one message for the whole backlog
    runs = runtime.runs()
    for event_id in ids:
        run = runs[event_id]
        assert (run["status"], run["attempts"]) == ("succeeded", 1)
        assert runtime.applied(run["id"]) == ["add_to_review"]
        assert runtime.logs(run["id"]) == [f"event for asset-{event_id[2:]}"]
    assert runtime.pool().cold_starts == 1 and runtime.pool().workers["proj"].batches


def test_a_failing_run_fails_alone_and_the_batch_goes_on(runtime: Runtime) -> None:
    ids = runtime.submit_backlog({3: "fail"})
    runtime.hold.set()
    assert runtime.dispatcher.wait_idle(60)
    runs = runtime.runs()
    assert runs["e-3"]["status"] == "failed" and "a bad label" in runs["e-3"]["error"]
    assert runtime.applied(runs["e-3"]["id"]) == []
    assert all(runs[e]["status"] == "succeeded" for e in ids if e != "e-3")
    assert runtime.calls == [ids[:1], ids[1:]] and runtime.pool().cold_starts == 1


@pytest.mark.parametrize(("do", "outcome"), [("exit", "error"), ("hang", "timeout")])
def test_a_run_that_stops_its_worker_ends_alone_and_the_rest_run_in_a_fresh_one(runtime: Runtime, do: str,
                                                                               outcome: str) -> None:
    ids = runtime.submit_backlog({3: do})
    runtime.hold.set()
    assert runtime.dispatcher.wait_idle(60)
    runs = runtime.runs()
    assert (runs["e-3"]["status"], runs["e-3"]["outcome"], runs["e-3"]["attempts"]) == ("failed", outcome, 1)
    for event_id in ids:
        if event_id != "e-3":
            assert (runs[event_id]["status"], runs[event_id]["attempts"]) == ("succeeded", 1), event_id
    # The runs after it were sent again, to a fresh worker; each had its own time limit.
    assert runtime.calls == [ids[:1], ids[1:], ids[4:]]
    assert runtime.pool().cold_starts == 2


def test_a_runtime_failure_records_the_runs_before_it_and_puts_back_those_after(runtime: Runtime) -> None:
    runtime.broken = "e-5"
    ids = runtime.submit_backlog()
    runtime.hold.set()
    wait_for(lambda: runtime.runs()["e-5"]["error"] is not None)
    runs = runtime.runs()
    assert all(runs[e]["status"] == "succeeded" for e in ids[:5])
    assert (runs["e-5"]["status"], runs["e-5"]["attempts"]) == ("pending", 1)  # waiting for its retry
    assert all((runs[e]["status"], runs[e]["attempts"]) == ("pending", 0) for e in ids[6:])  # as before the batch
    assert runtime.dispatcher.wait_idle(60)
    runs = runtime.runs()
    assert (runs["e-5"]["status"], runs["e-5"]["attempts"]) == ("succeeded", 2)
    assert all((runs[e]["status"], runs[e]["attempts"]) == ("succeeded", 1) for e in ids if e != "e-5")
    assert runtime.calls[:2] == [ids[:1], ids[1:]] and runtime.calls[2][0] == "e-5"
    finished = [row[0] for row in runtime.store.read().execute(
        "SELECT event_id FROM runs ORDER BY finished_at, event_seq")]
    assert finished == ids  # lane order kept across the retry


def test_each_run_of_a_batch_has_its_own_read_budget(runtime: Runtime) -> None:
    ids = runtime.submit_backlog({k: "read" for k in range(BACKLOG + 1)})
    runtime.hold.set()
    assert runtime.dispatcher.wait_idle(60)
    runs = runtime.runs()
    for event_id in ids:
        assert json.loads(runs[event_id]["metrics"])["reads"]["calls"] == 1, runs[event_id]["metrics"]


def test_a_run_reads_what_the_runs_before_it_in_its_batch_did(runtime: Runtime) -> None:
    # A batch is recorded at its end: a run reading the platform after runs of its batch acted
    # would read the state before them. The batch is cut there and the rest run one at a time.
    ids = [f"t-{k}" for k in range(BACKLOG + 1)]
    for k, event_id in enumerate(ids):
        assert runtime.dispatcher.submit(make_event(id=event_id, project_id="proj", asset_id="asset-tally",
                                                    json_response={"do": "tally"}))
        if k == 0:
            wait_for(lambda: runtime.calls)
    runtime.hold.set()
    assert runtime.dispatcher.wait_idle(60)
    metadata = runtime.store.read().execute("SELECT json_metadata FROM assets WHERE id = 'asset-tally'").fetchone()[0]
    assert json.loads(metadata) == {"count": BACKLOG + 1}
    runs = runtime.runs()
    assert all((runs[e]["status"], runs[e]["attempts"]) == ("succeeded", 1) for e in ids), [tuple(runs[e]) for e in ids]
    assert all(runtime.applied(runs[e]["id"]) == ["update_asset"] for e in ids)
    # Cut after its first run; the rest ran alone, each seeing the one before.
    assert runtime.calls[1] == ids[1:] and all(len(call) == 1 for call in runtime.calls[2:])
