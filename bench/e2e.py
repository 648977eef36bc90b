"""End to end through the HTTP intake with the Docker sandbox: a trivial plugin, 1,000 events.

Starts `plugin-runtime serve` as a separate process (fresh data dir), uploads and activates
the plugin, warms its sandbox, then posts signed events from a few concurrent senders and
measures events/s and event-to-applied latency (acknowledged POST -> run finished, from the
run's finished_at). Targets: >= 300 events/s, p99 < 100 ms once warm.

    .venv/bin/python bench/e2e.py [--events 1000] [--senders 4] [--sandbox docker]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

from plugin_runtime.source import load_source
from plugin_runtime.webhooks import headers

TRIVIAL = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.add_to_review(asset_ids=[asset_id])
'''


def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def event(i: int) -> bytes:
    return json.dumps({
        "id": f"bench-{i}", "type": "onSubmit", "project_id": "proj-bench", "asset_id": f"asset-{i % 200}",
        "label": {"id": f"label-{i}", "labelType": "DEFAULT", "jsonResponse": {"OK": i % 2 == 0}},
    }).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--sandbox", default="docker", choices=["docker", "process"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    (work / "plugin").mkdir()
    (work / "plugin" / "main.py").write_text(TRIVIAL)
    p = port()
    env = {**os.environ, "PLUGIN_RUNTIME_DATA_DIR": str(work / "data"), "PLUGIN_RUNTIME_TOKEN": "bench-token",
           "PLUGIN_RUNTIME_WEBHOOK_SECRET": "bench-secret"}
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--port", str(p), "--sandbox", args.sandbox],
                              env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{p}"
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer bench-token"
    try:
        for _ in range(200):
            try:
                admin.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        source = load_source(work / "plugin" / "main.py")
        admin.post(f"{url}/v1/plugins/bench/versions?create=true", data=source.archive()).raise_for_status()
        info = admin.get(f"{url}/v1/plugins/bench/versions/1?wait=300").json()
        assert info["status"] == "active", info
        admin.put(f"{url}/v1/plugins/bench/projects/proj-bench").raise_for_status()

        def send(i: int, session: requests.Session, sent_at: dict) -> None:
            body = event(i)
            sent_at[f"bench-{i}"] = time.time()
            response = session.post(f"{url}/v1/events", data=body, headers=headers("bench-secret", f"bench-{i}", body))
            assert response.status_code == 202, response.text

        warm: dict = {}
        send(-1, requests.Session(), warm)  # the first event starts the warm container
        while admin.get(f"{url}/healthz").json()["pending_runs"]:
            time.sleep(0.05)

        sent_at: dict[str, float] = {}
        started = time.time()
        chunks = [range(k, args.events, args.senders) for k in range(args.senders)]
        threads = [threading.Thread(target=lambda c=c: [send(i, requests.Session(), sent_at) for i in c]) for c in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent_s = time.time() - started
        while admin.get(f"{url}/healthz").json()["pending_runs"]:
            time.sleep(0.02)
        runs = [r for r in admin.get(f"{url}/v1/runs", params={"limit": args.events + 10}).json() if r["event_id"] in sent_at]
        finished = {r["event_id"]: datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")).timestamp() for r in runs}
        latencies = sorted((finished[e] - sent_at[e]) * 1000 for e in finished)
        total_s = max(finished.values()) - started
        assert len(runs) == args.events and all(r["status"] == "succeeded" for r in runs), len(runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    n = args.events
    print(f"events                             {n} ({args.senders} concurrent senders, sandbox {args.sandbox})")
    print(f"intake (acknowledged) events/s     {n / sent_s:8.0f}")
    print(f"end to end (applied) events/s      {n / total_s:8.0f}   (target >= 300)")
    print(f"event-to-applied latency p50       {latencies[len(latencies) // 2]:8.1f} ms")
    print(f"event-to-applied latency p99       {latencies[int(0.99 * (len(latencies) - 1))]:8.1f} ms   (target < 100)")


if __name__ == "__main__":
    main()
