"""Every example plugin, replayed into a running service, does what its dry-run says: the same
actions per event, applied to the embedded platform."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service

EXAMPLES = sorted(p for p in (REPO / "example_plugins").iterdir() if (p / "events.jsonl").exists())


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database):
    running = start_service(tmp_path_factory.mktemp("examples"), "process", database)
    yield running
    stop_service(running)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_replays_in_the_service_as_in_its_dry_run(service: Service, example: Path) -> None:
    name = example.name.replace("_", "-")
    events = [json.loads(line) for line in (example / "events.jsonl").read_text().splitlines() if line.strip()]
    upload = service.cli("plugins", "upload", str(example), "--name", name)
    assert upload.returncode == 0, upload.stderr
    for project in sorted({e["project_id"] for e in events}):
        service.cli("plugins", "activate", name, "--project", project, check=True)
    sent = service.cli("events", "send", str(example / "events.jsonl"), "--secret", "test-secret", "--wait-for-runs")
    assert sent.returncode == 0, sent.stderr
    service.settle()
    dry = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(example), "--events",
                          str(example / "events.jsonl"), "--format", "json"], capture_output=True, text=True, timeout=300)
    expected = {r["event_id"]: [a["type"] for a in r["actions"]] for r in map(json.loads, dry.stdout.splitlines())
                if not r.get("skipped")}
    runs = json.loads(service.cli("runs", "list", "--plugin", name, "--limit", "1000", "--json").stdout)
    applied = {}
    for run in runs:
        shown = json.loads(service.cli("runs", "show", run["id"], "--json").stdout)
        assert shown["status"] == "succeeded", shown
        assert all(a["status"] == "applied" for a in shown["actions"]), shown["actions"]
        applied[run["event_id"]] = [a["action"]["type"] for a in shown["actions"]]
    assert applied == expected
