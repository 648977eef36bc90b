"""The webhook intake: a full queue is 429 with Retry-After and stores nothing; a duplicate
is 200 and processed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_runtime.api.workload import submitted, wait_for
from tests.plugin_runtime.service_fixtures import start_service, stop_service

# Holds its run until the test says so (the process sandbox shares the host's files).
WAITING = '''
import os, time
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        deadline = time.monotonic() + 50
        while not os.path.exists({flag!r}) and time.monotonic() < deadline:
            time.sleep(0.01)
'''


@pytest.fixture
def small(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database, max_queue=1)
    yield running
    stop_service(running)


def test_a_full_queue_is_429_with_retry_after_and_stores_nothing(small, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    small.deploy("waiting", WAITING.format(flag=str(flag)), project="proj-api")
    assert small.post_event(submitted("evt-first", "asset-1", "label-1", {})).status_code == 202
    wait_for(lambda: small.runtime.dispatcher.pending() == 1)
    events = small.count("events")
    refused = small.post_event(submitted("evt-second", "asset-2", "label-2", {}))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.json() == {"detail": "the runtime is busy; retry later"}
    assert small.count("events") == events
    flag.touch()
    small.settle()
    assert small.post_event(submitted("evt-second", "asset-2", "label-2", {})).status_code == 202
    small.settle()


def test_a_duplicate_is_200_and_runs_once(small) -> None:
    small.deploy("quiet", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                          "    def on_submit(self, label, asset_id):\n        pass\n", project="proj-api")
    event = submitted("evt-once", "asset-once", "label-once", {})
    first = small.post_event(event)
    assert (first.status_code, first.json()) == (202, {"id": "evt-once"})
    small.settle()
    again = small.post_event(event)
    assert (again.status_code, again.json()) == (200, {"id": "evt-once", "duplicate": True})
    small.settle()
    assert small.count("runs") == 1
