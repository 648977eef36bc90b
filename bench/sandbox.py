"""Docker sandbox figures for a trivial plugin, in one run.

- cold start: a new container (image already built) until its first event's result;
- warm: per-event latency p50/p99 and events/s through one warm container;
- baseline: a fresh `docker run` per event (what simple sandbox libraries do);
- dry-run: `plugin-runtime dry-run --sandbox docker` over a file of 5,000 events.

Targets on a 2-core machine: warm p50 < 1 ms, cold start < 1 s, warm throughput >= 300x the
baseline, dry-run per-event cost about the warm one.

    .venv/bin/python bench/sandbox.py [--warm 5000] [--cold 10] [--baseline 10]
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

from plugin_runtime.builder import CODE, SDK, SITE, Builder
from plugin_runtime.engine import connect
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.docker import DockerSandbox
from plugin_runtime.sandbox.process import BOOT
from plugin_runtime.source import load_source
from plugin_sdk import _wire

TRIVIAL = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.send_back_to_queue(asset_ids=[asset_id])
'''


def event(i: int, project: str = "proj-bench") -> dict:
    return {
        "id": f"evt-{i}", "type": "onSubmit", "project_id": project, "asset_id": f"asset-{i % 500}",
        "label": {"id": f"label-{i}", "labelType": "DEFAULT", "jsonResponse": {"OK": i % 2 == 0}},
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5000)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--dry-run-events", type=int, default=5000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    (work / "main.py").write_text(TRIVIAL)
    client = connect()
    started = time.perf_counter()
    build = Builder(client).build(load_source(work / "main.py"), "plugin-runtime-bench:trivial")
    build_s = time.perf_counter() - started

    cold = []
    for i in range(args.cold):
        with DockerSandbox(client, build.image, Limits()) as sandbox:
            t0 = time.perf_counter()
            assert sandbox.run(event(i, f"proj-cold-{i}")).status == "ok"
            cold.append((time.perf_counter() - t0) * 1000)

    with DockerSandbox(client, build.image, Limits()) as sandbox:
        sandbox.run(event(0))
        warm = []
        t_all = time.perf_counter()
        for i in range(args.warm):
            t0 = time.perf_counter()
            result = sandbox.run(event(i))
            warm.append((time.perf_counter() - t0) * 1000)
            assert result.status == "ok", result
        warm_rate = args.warm / (time.perf_counter() - t_all)

    # Baseline: `docker run` per event, as simple sandbox libraries do.
    base = []
    for i in range(args.baseline):
        payload = b"".join(_wire.encode(m) for m in (
            {"type": "init", "protocol": 1, "project_id": "proj-bench", "reads": "context"},
            {"type": "event", "event": event(i)},
            {"type": "shutdown"},
        ))
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", "--read-only", "--user", "10001:10001",
             "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "512m",
             "--pids-limit", "128", build.image, "python3", "-I", "-c", BOOT, f"{SDK}:{SITE}", f"{CODE}/main.py"],
            input=payload, capture_output=True, check=False,
        )
        base.append((time.perf_counter() - t0) * 1000)
        assert b'"type":"result"' in proc.stdout, proc.stderr[-500:]
    base_rate = 1000 / statistics.median(base)

    events = work / "events.jsonl"
    events.write_text("".join(json.dumps(event(i)) + "\n" for i in range(args.dry_run_events)))
    subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(work / "main.py"), "--events",
                    str(events), "--sandbox", "docker"], capture_output=True, check=True)  # builds once
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "plugin_runtime", "dry-run", str(work / "main.py"), "--events", str(events),
         "--sandbox", "docker"], capture_output=True, text=True, check=False,
    )
    dry_s = time.perf_counter() - t0
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == args.dry_run_events, proc.stderr[-1000:]

    print(f"image build (deps {'cached' if build.deps_cached else 'built'})   {build_s * 1000:8.0f} ms")
    print(f"cold start p50 (container -> 1st result) {statistics.median(cold):8.1f} ms   (n={args.cold}, target < 1000)")
    print(f"warm per-event p50                       {statistics.median(warm):8.3f} ms   (target < 1)")
    print(f"warm per-event p99                       {pct(warm, 0.99):8.3f} ms")
    print(f"warm events/s (one container)            {warm_rate:8.0f}")
    print(f"baseline docker run per event p50        {statistics.median(base):8.1f} ms   ({base_rate:.2f} events/s)")
    print(f"warm / baseline throughput               {warm_rate / base_rate:8.0f} x   (target >= 300)")
    print(f"dry-run --sandbox docker, {args.dry_run_events} events   {dry_s:8.2f} s = {dry_s / args.dry_run_events * 1000:.3f} ms/event (start-up included)")


if __name__ == "__main__":
    main()
