"""`plugin-runtime serve` stopped (Ctrl-C) while a hook runs: it stops at once, says so, and the
run is neither the plugin's timeout nor its failure: it stays queued and runs at the next start,
the same run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.plugin_runtime.service_fixtures import REPO, free_port

#: Sleeps through its first run (until the service is stopped), returns at once afterwards.
SLEEPS_ONCE = '''
import os
import time

from plugin_sdk import PluginCore

MARK = {mark!r}


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not os.path.exists(MARK):
            open(MARK, "w").close()
            time.sleep(3600)
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.data = tmp_path / "data"
        self.client = ("--url", f"http://127.0.0.1:{self.port}", "--data-dir", str(self.data))
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process", "--port", str(self.port),
             "--data-dir", str(self.data)], cwd=self.data.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True)

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "plugin_runtime", *args, *self.client], cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def runs(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("runs", "list", "--json"))

    def interrupt(self) -> str:
        """Ctrl-C; its stderr once it exited (within 30 s, or the test fails)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.communicate(timeout=60)
            raise AssertionError("the service was still running 30 s after Ctrl-C") from None
        return stderr

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.communicate(timeout=60)


def stored_runs(data: Path) -> list[tuple[str, str, str | None, int]]:
    with sqlite3.connect(data / "runtime.db") as db:
        return db.execute("SELECT id, status, outcome, attempts FROM runs").fetchall()


def test_a_run_stopped_by_ctrl_c_stays_queued_and_runs_again_at_the_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "sleeper"
    folder.mkdir()
    mark = tmp_path / "slept"
    (folder / "main.py").write_text(SLEEPS_ONCE.format(mark=str(mark)))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "sleep-1", "type": "onSubmit", "project_id": "proj-sleepy",
                                  "asset_id": "a", "label": {"id": "l", "jsonResponse": {}}}) + "\n")
    server = Server(tmp_path)
    server.start()
    try:
        server.cli("plugins", "upload", str(folder), "--name", "sleeper", "--limit", "timeout_s=120")
        server.cli("plugins", "activate", "sleeper", "--project", "proj-sleepy")
        server.cli("events", "send", str(events))
        [run] = wait_for(lambda: [r for r in server.runs() if r["status"] == "running"], 60, "no run started")
        wait_for(mark.exists, 60, "the hook did not start")
        stderr = server.interrupt()
        assert "stopping: runs in progress are stopped and will run again at the next start" in stderr, stderr
        assert "plugin-runtime stopped" in stderr, stderr
        # Neither a timeout nor a failure: queued as it was, its attempt not counted.
        assert stored_runs(server.data) == [(run["id"], "pending", None, 0)]
        server.start()
        [again] = wait_for(lambda: [r for r in server.runs() if r["status"] == "succeeded"], 120,
                           "the run did not run again at the next start")
        assert again["id"] == run["id"]
        assert stored_runs(server.data) == [(run["id"], "succeeded", None, 1)]  # one attempt: the one that ran
    finally:
        server.kill()
