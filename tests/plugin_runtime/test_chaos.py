"""Crashes do not lose or double effects: a burst of signed events, ``kill -9`` (or, every third
round, a graceful SIGTERM) of the server at a random moment, restart, resend of what was not
acknowledged; every event's issue exists exactly once. Several rounds, each at another moment."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from plugin_runtime.source import load_source
from plugin_runtime.webhooks import headers
from tests.plugin_runtime.service_fixtures import free_port

pytestmark = pytest.mark.slow

ROUNDS = 6
BURST = 200
PLUGIN = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.create_issues(self.project_id, [label["id"]], text_array=[label["jsonResponse"]["EVENT"]])
'''


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PLUGIN_RUNTIME_DATA_DIR": str(data_dir), "PLUGIN_RUNTIME_TOKEN": "chaos-token",
                    "PLUGIN_RUNTIME_WEBHOOK_SECRET": "chaos-secret"}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plugin_runtime", "serve", "--port", str(self.port), "--sandbox", "process"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    def kill(self, how: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(how)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, headers={"Authorization": "Bearer chaos-token"},
                                timeout=60, **kwargs)


def event(round_number: int, i: int) -> tuple[str, bytes]:
    event_id = f"r{round_number}-e{i}"
    body = json.dumps({
        "id": event_id, "type": "onSubmit", "project_id": "proj-chaos", "asset_id": f"asset-{i % 10}",
        "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": {"EVENT": event_id}},
    }).encode()
    return event_id, body


def post(url: str, event_id: str, body: bytes) -> bool:
    try:
        response = requests.post(f"{url}/v1/events", data=body, timeout=5,
                                 headers=headers("chaos-secret", event_id, body))
    except requests.RequestException:
        return False
    return response.status_code in (200, 202)


def test_kill_9_at_random_moments_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    server = Server(tmp_path / "data")
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "main.py").write_text(PLUGIN)
    server.start()
    try:
        upload = server.admin("POST", "/v1/plugins/chaos/versions?create=true",
                              data=load_source(tmp_path / "plugin").archive())
        assert upload.status_code == 202, upload.text
        assert server.admin("GET", "/v1/plugins/chaos/versions/1?wait=120").json()["status"] == "active"
        assert server.admin("PUT", "/v1/plugins/chaos/projects/proj-chaos").status_code == 200
        sent: list[str] = []
        for round_number in range(ROUNDS):
            burst = [event(round_number, i) for i in range(BURST)]
            acknowledged: set[str] = set()

            def fire() -> None:
                for event_id, body in burst:
                    if post(server.url, event_id, body):
                        acknowledged.add(event_id)

            sender = threading.Thread(target=fire)
            sender.start()
            time.sleep(rng.uniform(0.05, 0.6))
            # kill -9 in most rounds; a graceful stop (SIGTERM) in every third.
            server.kill(signal.SIGTERM if round_number % 3 == 2 else signal.SIGKILL)
            sender.join()
            server.start()
            # Resend what was not acknowledged, and a few that were (the duplicates must be ignored).
            resend = [(i, b) for i, b in burst if i not in acknowledged] + rng.sample(burst, 5)
            for event_id, body in resend:
                assert post(server.url, event_id, body), f"{event_id} refused after the restart"
            sent += [event_id for event_id, _ in burst]
        deadline = time.monotonic() + 120
        while server.admin("GET", "/healthz").json()["pending_runs"] and time.monotonic() < deadline:
            time.sleep(0.1)
        texts: list[str] = []
        for asset in server.admin("GET", "/v1/projects/proj-chaos/assets").json():
            texts += [issue["text"] for issue in asset["issues"]]
        assert sorted(texts) == sorted(sent)  # every event's issue, exactly once
        runs = server.admin("GET", "/v1/runs", params={"limit": 10_000}).json()
        assert {r["status"] for r in runs} == {"succeeded"}
        assert len(runs) == len(sent)
    finally:
        server.stop()
