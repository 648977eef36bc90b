"""A hostile plugin against the other plugins of the runtime, through the service as an admin
drives it (an upload, activations, signed webhooks): what one plugin does to its own runs must
not hold back the runs of the others."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import (
    REPO,
    Service,
    free_port,
    start_service,
    stop_service,
)

SLEEPER = '''
import time

from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        time.sleep(3600)  # until its timeout, every event, on every project it is active on
'''

BENIGN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''

CONCURRENCY = 2
HOSTILE_TIMEOUT_S = 8
#: Long enough for the other lane's three runs on a loaded machine.
OWN_LANE_TIMEOUT_S = 20


def upload(service: Service, name: str, code: str, limits: dict | None = None) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    params = {"create": "true", **({"limits": json.dumps(limits)} if limits else {})}
    response = service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params=params,
                                  data=buffer.getvalue(), timeout=60)
    assert response.status_code == 202, response.text
    assert service.runtime.registry.wait(name, response.json()["version"], 120)["status"] == "active"


def activate(service: Service, name: str, project: str) -> None:
    assert service.admin.put(f"{service.url}/v1/plugins/{name}/projects/{project}", timeout=30).status_code == 200


def submit(service: Service, event_id: str, project: str) -> None:
    event = {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": f"asset-{event_id}",
             "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": {}}}
    assert service.post_event(event).status_code == 202


def runs(service: Service, **params: str) -> list[dict]:
    response = service.admin.get(f"{service.url}/v1/runs", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


@pytest.fixture()
def service(tmp_path: Path):
    running = start_service(tmp_path / "data", "process", concurrency=CONCURRENCY)
    yield running
    stop_service(running)


def test_a_plugin_sleeping_on_many_projects_does_not_hold_back_another_projects_runs(service: Service) -> None:
    upload(service, "sleeper", SLEEPER, {"timeout_s": HOSTILE_TIMEOUT_S})
    upload(service, "benign", BENIGN)
    sleepy = [f"proj-sleepy-{n}" for n in range(CONCURRENCY + 1)]
    for project in sleepy:
        activate(service, "sleeper", project)
    activate(service, "benign", "proj-benign")
    for number, project in enumerate(sleepy):
        submit(service, f"sleep-{number}", project)
    wait_for(lambda: len(runs(service, status="running")) == CONCURRENCY, 60, "the sleeper's runs did not start")
    submit(service, "benign-1", "proj-benign")
    service.settle(HOSTILE_TIMEOUT_S * 4 + 60)
    [benign] = runs(service, plugin="benign")
    sleepers = runs(service, plugin="sleeper")
    assert benign["status"] == "succeeded", benign
    assert {(run["status"], run["outcome"]) for run in sleepers} == {("failed", "timeout")}
    # The benign run needs a slot for milliseconds: it should not wait for the sleeper's timeouts.
    assert benign["finished_at"] < min(run["finished_at"] for run in sleepers), (benign, sleepers)


def test_a_sleeping_plugin_holds_back_only_its_own_lane(service: Service) -> None:
    """One project's sleeper: the other plugin on the same project and the runtime go on."""
    upload(service, "sleeper", SLEEPER, {"timeout_s": OWN_LANE_TIMEOUT_S})
    upload(service, "benign", BENIGN)
    for name in ("sleeper", "benign"):
        activate(service, name, "proj-shared")
    for number in range(3):
        submit(service, f"shared-{number}", "proj-shared")
    assert service.admin.get(f"{service.url}/healthz", timeout=30).status_code == 200
    service.settle(OWN_LANE_TIMEOUT_S * 3 + 120)
    benign = runs(service, plugin="benign")
    sleeping = runs(service, plugin="sleeper")
    assert [r["status"] for r in benign] == ["succeeded"] * 3, benign
    assert [(r["status"], r["outcome"]) for r in sleeping] == [("failed", "timeout")] * 3
    # The benign lane finished its three events before the sleeper's first one timed out.
    assert max(r["finished_at"] for r in benign) < min(r["finished_at"] for r in sleeping), (benign, sleeping)


def test_ctrl_c_stops_the_service_while_a_plugin_sleeps(tmp_path: Path) -> None:
    folder = tmp_path / "sleeper"
    folder.mkdir()
    (folder / "main.py").write_text(SLEEPER)
    url = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    client = ("--url", url, "--data-dir", str(data))
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process",
                               "--port", url.rsplit(":", 1)[1], "--data-dir", str(data)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "plugin_runtime", *args, *client], cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        run("plugins", "upload", str(folder), "--name", "sleeper", "--limit", "timeout_s=45")
        run("plugins", "activate", "sleeper", "--project", "proj-sleepy")
        events = tmp_path / "events.jsonl"
        events.write_text(json.dumps({"id": "sleep-1", "type": "onSubmit", "project_id": "proj-sleepy",
                                      "asset_id": "a", "label": {"id": "l", "jsonResponse": {}}}) + "\n")
        run("events", "send", str(events))
        wait_for(lambda: "running" in run("runs", "list"), 60, "the sleeper's run did not start")
        server.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.poll() is not None, "the service was still running 30 s after Ctrl-C"
    finally:
        # Once the hook's timeout ends it, the service exits by itself and stops its plugin
        # process (killed, the service would leave that process running on its own).
        try:
            server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate(timeout=60)
