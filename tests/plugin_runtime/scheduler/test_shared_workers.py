"""Lane jobs of the shared queue (``scheduler/workers.py``) on a real PostgreSQL, with real
process sandboxes: a job drains its lane in event order, keeps it while no other lane waits
(its sandbox stays warm), and hands the worker over after a slice when one does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.scheduler import Execute, Scheduler, workers
from plugin_runtime.scheduler.shared import SharedRunQueue, SharedScheduler
from plugin_runtime.scheduler.workers import Workers
from plugin_runtime.store.postgres import PostgresStore
from plugin_sdk.results import RunResult
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import active_plugin

pytestmark = pytest.mark.postgres

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
"""


class CountingWorkers(Workers):
    """Workers that note the project of each lane job they run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.jobs: list[str] = []
        super().__init__(*args, **kwargs)

    def run_lane(self, plugin: str, version: int, project_id: str) -> None:
        self.jobs.append(project_id)
        super().run_lane(plugin, version, project_id)


class Lanes:
    """One worker (one job at a time) on a fresh database; ``seen``: (project, event id) in
    the order the sandbox ran them; ``jobs``: the lane jobs it ran."""

    def __init__(self, url: str, tmp_path: Path, write_plugin: Any, projects: list[str]) -> None:
        self.store = PostgresStore(url)
        platform = EmbeddedPlatform(self.store)
        self.registry, self.sandboxes = active_plugin(self.store, platform.read, write_plugin(tmp_path, PLUGIN),
                                                      projects[0])
        for project in projects[1:]:
            self.registry.activate("checker", project)
        self.seen: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()

        def run(name: str, version: int, event: dict[str, Any]) -> RunResult:
            self.gate.wait(60)
            self.seen.append((event["project_id"], event["id"]))
            return self.sandboxes.run(name, version, event)

        queue = SharedRunQueue(self.store, "worker-test")
        self.shared: SharedScheduler | None = None

        def make(execute: Execute) -> Scheduler:
            self.shared = SharedScheduler(queue, execute)
            return cast(Scheduler, self.shared)

        self.dispatcher = Dispatcher(self.store, self.registry, platform, run, scheduler=make)
        assert self.shared is not None
        self.worker: CountingWorkers = CountingWorkers(url, self.shared, "worker-test", concurrency=1)
        self.jobs = self.worker.jobs

    def submit(self, project: str, *numbers: int) -> None:
        for number in numbers:
            assert self.dispatcher.submit(make_event(id=f"{project}-{number:03d}", project_id=project,
                                                     asset_id=f"{project}-asset", json_response={"n": number}))

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 120
        while len(self.seen) < count or self.dispatcher.pending() > 0:
            assert time.monotonic() < deadline, f"{len(self.seen)} of {count} runs ran"
            time.sleep(0.02)

    def close(self) -> None:
        self.gate.set()
        self.worker.stop()
        self.dispatcher.close()
        self.registry.close()
        self.sandboxes.close()
        self.store.close()


@pytest.fixture
def lanes(postgres_server, tmp_path: Path, write_plugin) -> Iterator[Any]:
    made: list[Lanes] = []

    def make(*projects: str) -> Lanes:
        made.append(Lanes(postgres_server.database(), tmp_path, write_plugin, list(projects)))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_one_job_drains_a_lane_in_event_order_while_no_other_lane_waits(lanes, monkeypatch) -> None:
    monkeypatch.setattr(workers, "SLICE_S", 0.0)  # every run looks: nobody waits, the lane stays
    one = lanes("proj-a")
    one.submit("proj-a", *range(40))
    one.worker.start()
    one.wait_for(40)
    assert [event for _, event in one.seen] == [f"proj-a-{n:03d}" for n in range(40)]
    assert one.jobs == ["proj-a"]


def test_a_lane_hands_its_worker_over_after_a_slice_when_another_lane_waits(lanes, monkeypatch) -> None:
    monkeypatch.setattr(workers, "SLICE_S", 0.0)  # every run looks whether another lane waits
    two = lanes("proj-a", "proj-b")
    two.submit("proj-a", *range(30))
    two.gate.clear()  # proj-a's first run holds the worker until proj-b waits too
    two.worker.start()
    deadline = time.monotonic() + 60
    while not two.jobs:
        assert time.monotonic() < deadline, "the worker never took proj-a's job"
        time.sleep(0.02)
    two.submit("proj-b", *range(3))  # its job waits for the worker
    two.gate.set()
    two.wait_for(33)
    order = [project for project, _ in two.seen]
    assert order.index("proj-b") < len(order) - 1 - order[::-1].index("proj-a"), order
    assert [e for p, e in two.seen if p == "proj-a"] == [f"proj-a-{n:03d}" for n in range(30)]
    # Each lane yields to the other at every slice while both have runs (each a new job).
    assert two.jobs[:3] == ["proj-a", "proj-b", "proj-a"]
