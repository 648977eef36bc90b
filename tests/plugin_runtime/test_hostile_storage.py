"""A hostile plugin against the runtime's disk: what one event may make the service store,
within the limits every plugin gets by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

BLOAT = '''
from plugin_sdk import PluginCore, UpdateAsset


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        # Each within the 64 KB metadata limit, all within the 8 MB result limit; each replaces
        # the one before, so only the last changes anything.
        return [UpdateAsset(asset_id=asset_id, json_metadata={"n": n, "pad": "x" * 63_000}) for n in range(120)]
'''

#: The default size of a run's result message (Limits.max_message_bytes).
MESSAGE_LIMIT = 8 * 1024 * 1024


@pytest.fixture()
def service(tmp_path: Path):
    running = start_service(tmp_path / "data", "process")
    yield running
    stop_service(running)


def stored_bytes(service: Service) -> int:
    db = service.runtime.store.read()
    pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
    return pages * db.execute("PRAGMA page_size").fetchone()[0]


def submit(service: Service, event_id: str) -> dict:
    event = {"id": event_id, "type": "onSubmit", "project_id": "proj-bloat", "asset_id": f"asset-{event_id}",
             "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": {}}}
    assert service.post_event(event).status_code == 202
    service.settle(120)
    [run] = service.admin.get(f"{service.url}/v1/runs", params={"plugin": "bloat"}, timeout=30).json()[:1]
    return run


def test_one_event_costs_the_store_at_most_its_result_limit(service: Service) -> None:
    service.deploy("bloat", BLOAT, project="proj-bloat")
    submit(service, "warm-up")  # the project, the asset and the tables' first pages
    before = stored_bytes(service)
    run = submit(service, "bloat-1")
    assert run["status"] == "succeeded", run
    grown = stored_bytes(service) - before
    assert grown <= MESSAGE_LIMIT, f"one event added {grown / 1e6:.1f} MB to the store"
