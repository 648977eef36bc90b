"""A build that failed is never silent, through the HTTP API: activation of a plugin with no
version that can run is refused with the build error (409), a failed update leaves the live
version running and the plugin's summary says which failed and why, and an event for an
active plugin whose every build failed gets a failed run with the reason."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

GOOD = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n        self.logger.info('checked %s', asset_id)\n")
BROKEN = "import no_such_module_here\n" + GOOD


@pytest.fixture
def service(tmp_path: Path, database) -> Iterator[Service]:
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)


def upload(service: Service, name: str, main: str, create: bool = True) -> dict[str, Any]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", main)
    response = service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": str(create).lower()},
                                  data=buffer.getvalue(), timeout=60)
    assert response.status_code == 202, response.text
    return response.json()


def built(service: Service, name: str, version: int) -> dict[str, Any]:
    return service.admin.get(f"{service.url}/v1/plugins/{name}/versions/{version}", params={"wait": 60},
                             timeout=90).json()


def activate(service: Service, name: str, project: str = "proj-a") -> requests.Response:
    return service.admin.put(f"{service.url}/v1/plugins/{name}/projects/{project}", timeout=30)


def submitted(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "onSubmit", "project_id": "proj-a", "asset_id": "asset-1",
            "label": {"id": f"label-{event_id}", "jsonResponse": {}}}


def runs(service: Service, **params: str) -> list[dict[str, Any]]:
    service.settle()
    return service.admin.get(f"{service.url}/v1/runs", params=params, timeout=30).json()


def test_activating_a_plugin_whose_builds_all_failed_is_refused_with_the_build_error(service: Service) -> None:
    upload(service, "broken", BROKEN)
    assert built(service, "broken", 1)["status"] == "failed"
    refused = activate(service, "broken")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith("broken has no version that can run: v1 failed to build:")
    assert "no_such_module_here" in detail and "plugins update PATH --name broken" in detail
    summary = service.admin.get(f"{service.url}/v1/plugins/broken", timeout=30).json()
    assert (summary["current_version"], summary["latest_status"], summary["projects"]) == (None, "failed", [])
    assert "no_such_module_here" in summary["latest_error"]
    # Once a version builds, it is activated as usual.
    upload(service, "broken", GOOD, create=False)
    assert built(service, "broken", 2)["status"] == "active"
    assert activate(service, "broken").json() == {"plugin": "broken", "project_id": "proj-a", "active": True,
                                                  "changed": True}


def test_a_failed_update_keeps_the_live_version_running_and_the_summary_says_which_failed(service: Service) -> None:
    upload(service, "bot", GOOD)
    assert built(service, "bot", 1)["status"] == "active"
    assert activate(service, "bot").status_code == 200
    upload(service, "bot", BROKEN, create=False)
    assert built(service, "bot", 2)["status"] == "failed"
    summary = service.admin.get(f"{service.url}/v1/plugins/bot", timeout=30).json()
    assert (summary["current_version"], summary["latest_version"], summary["latest_status"]) == (1, 2, "failed")
    assert "no_such_module_here" in summary["latest_error"]
    assert [v["status"] for v in summary["versions"]] == ["active", "failed"]
    # Activating it elsewhere is fine: its live version runs there.
    assert activate(service, "bot", "proj-b").status_code == 200
    assert service.post_event(submitted("evt-1")).status_code == 202
    [run] = runs(service)
    assert (run["version"], run["status"]) == (1, "succeeded")


def test_an_event_for_an_active_plugin_whose_build_failed_gets_a_failed_run_with_the_reason(
        service: Service, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    # Its build (loading it once) waits for the gate: it is activated while still deploying.
    slow = (f"import os, time\ndeadline = time.monotonic() + 60\nwhile not os.path.exists({str(gate)!r}) and "
            "time.monotonic() < deadline:\n    time.sleep(0.02)\n" + BROKEN)
    upload(service, "late", slow)
    assert activate(service, "late").status_code == 200
    early = service.post_event(submitted("evt-early"))  # waits for the build
    assert early.status_code == 202
    gate.touch()
    assert built(service, "late", 1)["status"] == "failed"
    assert service.post_event(submitted("evt-late")).status_code == 202
    failed = runs(service, status="failed")
    assert sorted(run["event_id"] for run in failed) == ["evt-early", "evt-late"]
    for run in failed:
        assert (run["plugin"], run["version"], run["outcome"]) == ("late", 1, "build_failed")
        shown = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
        assert shown["error"].startswith("the build failed: the plugin failed to load")
        assert "no_such_module_here" in shown["error"]


def test_every_event_of_a_burst_for_a_plugin_that_cannot_run_gets_its_failed_run(service: Service,
                                                                                   tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    slow = (f"import os, time\ndeadline = time.monotonic() + 60\nwhile not os.path.exists({str(gate)!r}) and "
            "time.monotonic() < deadline:\n    time.sleep(0.02)\n" + BROKEN)
    upload(service, "late", slow)
    assert activate(service, "late").status_code == 200
    gate.touch()
    assert built(service, "late", 1)["status"] == "failed"
    answers: list[int] = []
    senders = [threading.Thread(target=lambda n=n: answers.append(service.post_event(submitted(f"evt-{n}")).status_code))
               for n in range(20)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert answers == [202] * 20
    failed = runs(service, status="failed", limit="100")
    assert sorted(run["event_id"] for run in failed) == sorted(f"evt-{n}" for n in range(20))
    assert {run["outcome"] for run in failed} == {"build_failed"}
