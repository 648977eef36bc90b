"""The dashboard and /metrics on a big store: 100,000 runs, then the latency of their pages.

Fills a fresh data directory's store with --runs runs (two per event, three plugins, five
projects; 90% succeeded with an action and a log line, 7% failed with a traceback, 2%
skipped, 1% dead), starts `plugin-runtime serve` on it as a separate process, logs in to the
dashboard, and times --requests sequential requests of each page on one kept-alive
connection: the runs page (newest, filtered, a page deep in the past, the live rows), a run,
the dead letters and /metrics. Target: p99 under 100 ms for the runs page and /metrics.

    .venv/bin/python bench/console.py [--runs 100000] [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

from plugin_runtime.store import Store

PLUGINS = ("invoice-qa", "iban-check", "review-bot")
PROJECTS = tuple(f"proj-{n}" for n in range(5))
TOKEN = "bench-token"
TRACEBACK = ('Traceback (most recent call last):\n  File "main.py", line 9, in on_submit\n'
             '    raise ValueError(f"unexpected currency {currency!r}")\nValueError: unexpected currency \'XXX\'')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fill(store: Store, runs: int) -> None:
    """``runs`` ended runs with their events, actions and logs, in one transaction."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as folder:
        folder.writestr("main.py", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                   "    def on_submit(self, label, asset_id):\n        pass\n")
    rng = random.Random(7)
    at = "2026-11-20T09:30:00.000Z"
    with store.write() as db:
        for plugin in PLUGINS:
            store.plugins.create(db, plugin, at)
            store.plugins.add_version(db, plugin, "digest", archive.getvalue(), "PluginHandler", ["onSubmit"], [], [],
                                      {}, at)
            store.plugins.built(db, plugin, 1, None, [], "", None, [], at)
            for project in PROJECTS:
                store.activations.add(db, plugin, project, at)
        events, rows, actions, logs = [], [], [], []
        for number in range(runs // 2):
            project = PROJECTS[number % len(PROJECTS)]
            body = json.dumps({"id": f"evt-{number}", "type": "onSubmit", "project_id": project,
                               "asset_id": f"asset-{number % 5000}", "label": {"id": f"label-{number}",
                                                                               "jsonResponse": {"IBAN": {"text": "FR76"}}}})
            events.append((number + 1, f"evt-{number}", "onSubmit", project, f"asset-{number % 5000}", body, "webhook",
                           at, f"evt-{number}"))
            for plugin in rng.sample(PLUGINS, 2):
                run_id = f"run-{rng.getrandbits(64):016x}"
                roll = rng.random()
                status, outcome, error = (("succeeded", None, None) if roll < 0.90 else
                                          ("failed", "error", TRACEBACK) if roll < 0.97 else
                                          ("skipped", "queue_full", "the project's queue was full") if roll < 0.99 else
                                          ("dead", "infrastructure", "no Docker engine answers"))
                rows.append((run_id, f"evt-{number}", number + 1, plugin, 1, project, f"asset-{number % 5000}",
                             status, outcome, error, 1, rng.uniform(1, 40), at, at, at, f"evt-{number}"))
                if status == "succeeded":
                    actions.append((run_id, 0, json.dumps({"type": "add_to_review", "asset_id": f"asset-{number % 5000}"}),
                                    "applied", None))
                logs.append((run_id, 0, "INFO", f"asset-{number % 5000}: 0 problem(s)", "logger"))
        db.executemany("INSERT INTO events (seq, id, type, project_id, asset_id, body, source, received_at, root_id)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        db.executemany("INSERT INTO runs (id, event_id, event_seq, plugin, version, project_id, asset_id, status, outcome,"
                       " error, attempts, duration_ms, created_at, started_at, finished_at, root_id)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO run_actions (run_id, seq, action, status, reason) VALUES (?, ?, ?, ?, ?)", actions)
        db.executemany("INSERT INTO run_logs (run_id, seq, level, message, source) VALUES (?, ?, ?, ?, ?)", logs)


def start(data: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PLUGIN_RUNTIME_TOKEN": TOKEN, "PLUGIN_RUNTIME_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process",
                               "--data-dir", str(data), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read() if server.stderr else ''}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start within 120 s")
        time.sleep(0.1)


def login(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/ui/login", body=urlencode({"token": TOKEN}),
                       headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}",
                                "Host": f"127.0.0.1:{port}"})
    answer = connection.getresponse()
    answer.read()
    if answer.status != 303:
        raise SystemExit(f"login failed: {answer.status}")
    return answer.getheader("set-cookie", "").split(";")[0]


def measure(port: int, cookie: str, path: str, count: int) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for number in range(count + 20):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        answer = connection.getresponse()
        body = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise SystemExit(f"{path}: {answer.status} {body[:200]!r}")
        if number >= 20:  # the first requests warm caches and connections
            times.append(elapsed)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
            "max_ms": round(times[-1], 2), "bytes": len(body)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder:
        data = Path(folder) / "data"
        started = time.perf_counter()
        store = Store(data / "runtime.db")
        fill(store, args.runs)
        db = store.read()
        middle = db.execute("SELECT event_seq, id FROM runs ORDER BY event_seq DESC, id DESC LIMIT 1 OFFSET ?",
                            (args.runs // 2,)).fetchone()
        failed = db.execute("SELECT id FROM runs WHERE status = 'failed' LIMIT 1").fetchone()[0]
        store.close()
        print(f"filled {args.runs:,} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        port = free_port()
        server = start(data, port)
        try:
            cookie = login(port)
            pages = {
                "runs page (newest)": "/ui/runs",
                "runs page (plugin + status)": "/ui/runs?" + urlencode({"plugin": PLUGINS[1], "status": "failed"}),
                "runs page (project)": "/ui/runs?" + urlencode({"project_id": PROJECTS[3]}),
                "runs page (50,000 runs back)": "/ui/runs?" + urlencode({"before": f"{middle[0]}:{middle[1]}"}),
                "live rows (polled)": "/ui/runs/rows",
                "a failed run": f"/ui/runs/{failed}",
                "dead letters": "/ui/dead-letters",
                "/metrics": "/metrics",
            }
            results = {name: measure(port, cookie, path, args.requests) for name, path in pages.items()}
        finally:
            server.terminate()
            server.wait(timeout=60)
    width = max(map(len, results))
    print(f"{'page':<{width}}  {'p50':>8}  {'p99':>8}  {'max':>8}  bytes")
    for name, figures in results.items():
        print(f"{name:<{width}}  {figures['p50_ms']:>6.2f}ms  {figures['p99_ms']:>6.2f}ms  {figures['max_ms']:>6.2f}ms"
              f"  {figures['bytes']}")
    print(json.dumps({"runs": args.runs, "requests": args.requests, "results": results}))
    worst = max(results["runs page (newest)"]["p99_ms"], results["/metrics"]["p99_ms"])
    print(f"runs page and /metrics p99: {worst:.1f} ms (target < 100 ms)", file=sys.stderr)


if __name__ == "__main__":
    main()
