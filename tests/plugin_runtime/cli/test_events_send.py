"""``plugin-runtime events send --wait-for-runs``: it waits for the runs of the events it sent,
asked signed with the webhook secret (no admin token), and says when it stops waiting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service

WAITING = '''
import os, time
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        deadline = time.monotonic() + 50
        while not os.path.exists({flag!r}) and time.monotonic() < deadline:
            time.sleep(0.01)
'''


def send(service: Service, events: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plugin_runtime", "events", "send", str(events), "--wait-for-runs",
                           *options, "--url", service.url, "--secret", "test-secret"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def test_runs_still_going_at_the_wait_timeout_are_said_and_the_next_event_is_sent(tmp_path: Path) -> None:
    service = start_service(tmp_path / "data", "process")
    flag = tmp_path / "go"
    try:
        service.deploy("waiting", WAITING.format(flag=str(flag)), project="proj-send")
        events = tmp_path / "events.jsonl"
        events.write_text("".join(json.dumps({"id": f"evt-{n}", "type": "onSubmit", "project_id": "proj-send",
                                              "asset_id": f"asset-{n}", "label": {"id": f"l-{n}", "jsonResponse": {}}})
                                  + "\n" for n in (1, 2)))
        sent = send(service, events, "--wait-timeout", "0.5")
        assert sent.returncode == 0, sent.stderr
        late = ("warning: event evt-{}: 1 run(s) not done after 0.5 s (--wait-timeout); going on without waiting "
                "for them (plugin-runtime runs list shows them)")
        # evt-2's run queues behind evt-1's in the plugin's lane: not done either.
        assert sent.stderr.splitlines() == [late.format(1), late.format(2), "2 event(s) acknowledged, 0 not"]
        flag.touch()
        service.settle()
        again = send(service, events)  # their runs are done: nothing to wait for, nothing said
        assert again.stderr.splitlines() == [
            "2 event(s) acknowledged (2 already received: not processed again), 0 not",
            ("an event is processed once per id; what a new version does with these: plugin-runtime dry-run "
             f"PLUGIN_FOLDER --events {events}")]
    finally:
        flag.touch()
        stop_service(service)
