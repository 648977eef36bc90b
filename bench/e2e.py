"""End to end through the HTTP intake with the Docker sandbox: a trivial plugin, 1,000 events.

Starts `plugin-runtime serve` as a separate process (fresh data dir), uploads and activates
the plugin, warms its sandbox, then posts signed events from a few concurrent senders, twice:
as fast as they can (throughput; latency there is mostly queueing) and paced at --rate
(event-to-applied latency: POST sent -> run finished, from the run's finished_at).
Targets: >= 300 events/s, p99 < 100 ms once warm.

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
    parser.add_argument("--rate", type=float, default=300.0, help="Offered load of the latency phase.")
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

        def phase(offset: int, rate: float | None) -> tuple[float, float, list[float]]:
            """Send args.events events (paced at ``rate`` events/s when given); returns
            (acknowledged events/s, applied events/s, sorted latencies in ms)."""
            sent_at: dict[str, float] = {}
            started = time.time()
            gap = args.senders / rate if rate else 0.0

            def sender(indexes: range) -> None:
                session = requests.Session()
                for k, i in enumerate(indexes):
                    if gap:
                        time.sleep(max(0.0, started + k * gap - time.time()))
                    send(offset + i, session, sent_at)

            threads = [threading.Thread(target=sender, args=(range(k, args.events, args.senders),))
                       for k in range(args.senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent_s = time.time() - started
            while admin.get(f"{url}/healthz").json()["pending_runs"]:
                time.sleep(0.02)
            runs = [r for r in admin.get(f"{url}/v1/runs", params={"limit": 3 * args.events}).json()
                    if r["event_id"] in sent_at]
            assert len(runs) == args.events and all(r["status"] == "succeeded" for r in runs), len(runs)
            finished = {r["event_id"]: datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")).timestamp()
                        for r in runs}
            latencies = sorted((finished[e] - sent_at[e]) * 1000 for e in finished)
            return args.events / sent_s, args.events / (max(finished.values()) - started), latencies

        intake, applied, saturated = phase(0, None)
        paced_intake, _, paced = phase(args.events, args.rate)
    finally:
        server.terminate()
        server.wait(timeout=30)
    def pct(values: list[float], q: float) -> float:
        return values[int(q * (len(values) - 1))]

    print(f"events per phase                   {args.events} ({args.senders} concurrent senders, sandbox {args.sandbox})")
    print("saturation (senders as fast as they can):")
    print(f"  intake (acknowledged) events/s   {intake:8.0f}")
    print(f"  applied events/s                 {applied:8.0f}   (target >= 300)")
    print(f"  latency p50 / p99                {pct(saturated, 0.5):8.1f} / {pct(saturated, 0.99):.1f} ms (includes queueing)")
    print(f"paced at {args.rate:.0f} events/s (achieved {paced_intake:.0f}):")
    print(f"  event-to-applied latency p50     {pct(paced, 0.5):8.1f} ms")
    print(f"  event-to-applied latency p99     {pct(paced, 0.99):8.1f} ms   (target < 100)")

if __name__ == "__main__":
    main()
