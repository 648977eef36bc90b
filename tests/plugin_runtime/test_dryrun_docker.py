"""``plugin-runtime dry-run --sandbox docker`` through the real CLI: the same lines as the
process sandbox, and nothing left behind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugin_runtime.sandbox.docker import LABEL

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "example_plugins/invoice_qa"
EVENTS = f"{PLUGIN}/events.jsonl"


def dry_run(sandbox: str) -> tuple[int, list[dict], str, int]:
    """Exit code, the JSON lines (without ``duration_ms``), stderr and the CLI's pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin_runtime", "dry-run", PLUGIN, "--events", EVENTS, "--sandbox", sandbox],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    for line in lines:
        assert isinstance(line.pop("duration_ms"), float)
    return process.returncode, lines, err, process.pid


def test_docker_dry_run_matches_the_process_sandbox(docker_client):
    code, lines, err, _ = dry_run("process")
    assert code == 0, err
    since = int(time.time()) - 1
    docker_code, docker_lines, docker_err, pid = dry_run("docker")
    assert docker_code == 0, docker_err
    assert docker_lines == lines
    recorded = (REPO / EVENTS).read_text().splitlines()
    assert [line["event_id"] for line in docker_lines] == [json.loads(e)["id"] for e in recorded if e.strip()]
    assert {line["status"] for line in docker_lines} == {"ok"}
    assert any(line["actions"] for line in docker_lines)  # the comparison is not of empty runs
    assert f"dry-run: {len(lines)} events" in docker_err
    # The CLI's containers carry its pid as their owner: none may outlive it.
    owner = f"{socket.gethostname()}:{pid}"
    left = docker_client.containers.list(all=True, filters={"label": [LABEL, f"{LABEL}.owner={owner}"]})
    assert not left, [c.name for c in left]
    # ... and it did run the plugin in containers: the engine saw them start and go.
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True, filters={
        "type": "container", "label": f"{LABEL}.owner={owner}"})
    seen = [(e["Action"], e["id"]) for e in events if e["Action"] in ("start", "destroy")]
    started = {cid for action, cid in seen if action == "start"}
    assert started and started == {cid for action, cid in seen if action == "destroy"}
