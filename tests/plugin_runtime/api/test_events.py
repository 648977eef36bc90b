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


CHAINED = WAITING + '''
        self.kili.send_back_to_queue(asset_ids=[asset_id])
'''
FOLLOWER = """
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_send_back_to_queue(self, asset_id):
        pass
"""


def test_an_events_runs_and_those_they_caused_are_told_to_its_signed_sender_alone(service, tmp_path: Path) -> None:
    import requests

    from plugin_runtime.webhooks import headers

    flag = tmp_path / "go"
    service.deploy("chained", CHAINED.format(flag=str(flag)), project="proj-api")
    service.deploy("follower", FOLLOWER, project="proj-api")
    event_id = "evt/chained"  # a '/' in an id names that event, not a path
    assert service.post_event(submitted(event_id, "asset-chain", "label-chain", {})).status_code == 202
    url = f"{service.url}/v1/events/evt%2Fchained/runs"
    secret = service.runtime.webhook_secrets[0]

    def ask(message_id: str = event_id, key: str = secret, target: str = url) -> requests.Response:
        return requests.get(target, headers=headers(key, message_id, b""), timeout=30)

    assert ask().json() == {"id": event_id, "runs": 1, "pending": 1}
    assert requests.get(url, timeout=30).status_code == 401  # no signature
    assert service.admin.get(url, timeout=30).json()["pending"] == 1  # or the admin token
    assert ask(key="another-secret").status_code == 401
    # A signature for another event does not answer for this one.
    assert ask(message_id="evt-other").json()["detail"] == (
        "webhook-id must be the event's id (sign the request over an empty body)")
    missing = ask(message_id="evt-never", target=f"{service.url}/v1/events/evt-never/runs")
    assert (missing.status_code, missing.json()["detail"]) == (404, "event 'evt-never' was not received")
    flag.touch()
    service.settle()
    assert ask().json() == {"id": event_id, "runs": 2, "pending": 0}  # its send-back's run counts
