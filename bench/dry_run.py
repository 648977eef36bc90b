"""Dry-run throughput with the process sandbox: a trivial plugin over 10,000 events.

Prints events/s and the per-event overhead, measured two ways: through the sandbox API (one
warm child process, JSON round trip per event) and through the real `plugin-runtime dry-run`
command (file read, validation, sandbox, JSON output). Target: >= 2,000 events/s.

    .venv/bin/python bench/dry_run.py [--events 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.process import ProcessSandbox
from plugin_runtime.source import load_source

TRIVIAL = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.send_back_to_queue(asset_ids=[asset_id])
'''


def write_events(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({
                "id": f"evt-{i}", "type": "onSubmit", "project_id": "proj-bench",
                "asset_id": f"asset-{i % 500}",
                "label": {"id": f"label-{i}", "labelType": "DEFAULT", "authorId": "user-1",
                          "jsonResponse": {"OK": i % 2 == 0, "TEXT": {"text": "FR76 3000"}}},
            }) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dry-run-"))
    (work / "main.py").write_text(TRIVIAL)
    events = work / "events.jsonl"
    write_events(events, args.events)
    parsed = [json.loads(line) for line in events.read_text().splitlines()]

    source = load_source(work / "main.py")
    with ProcessSandbox(source, Limits()) as sandbox:
        started = time.perf_counter()
        sandbox.run(parsed[0])
        cold_ms = (time.perf_counter() - started) * 1000
        latencies = []
        started = time.perf_counter()
        for event in parsed:
            t0 = time.perf_counter()
            result = sandbox.run(event)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert result.status == "ok", result
        api_elapsed = time.perf_counter() - started
    latencies.sort()

    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "plugin_runtime", "dry-run", str(work / "main.py"), "--events", str(events)],
        capture_output=True, text=True, check=False,
    )
    cli_elapsed = time.perf_counter() - started
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == args.events, (proc.returncode, proc.stderr[-2000:])

    n = args.events
    print(f"events                         {n}")
    print(f"cold start (first event)       {cold_ms:.1f} ms")
    print(f"sandbox API  events/s          {n / api_elapsed:,.0f}")
    print(f"sandbox API  per event p50     {statistics.median(latencies) * 1000:.0f} us")
    print(f"sandbox API  per event p99     {latencies[int(0.99 * (n - 1))] * 1000:.0f} us")
    print(f"dry-run CLI  events/s          {n / cli_elapsed:,.0f}  (whole command, start-up included)")
    print(f"dry-run CLI  per event         {cli_elapsed / n * 1e6:.0f} us")
    print(f"target                         >= 2,000 events/s: {'met' if n / cli_elapsed >= 2000 else 'NOT met'}")


if __name__ == "__main__":
    main()
