"""End to end through the HTTP intake with the Docker sandbox: a trivial plugin, 1,000 events.

Starts `plugin-runtime serve` as a separate process (fresh data dir), uploads and activates
the plugin, warms its sandbox, then posts signed events from a few concurrent senders, twice:
as fast as they can (throughput; latency there is mostly queueing) and paced at --rate
(event-to-applied latency: POST sent -> run finished, from the run's finished_at).
Targets on a 2-core machine: >= 1,000 applied events/s; p99 < 20 ms paced at 300 events/s.

The senders keep one connection each and use ``http.client``, not ``requests``: on two cores
the load generator shares the CPU with the server, and ``requests`` spent ~0.7 ms of it per
event, as much as the server's own work. Each phase also reports the CPU the server process
and the senders used per event, a figure that stays comparable when the machine is busy.

    .venv/bin/python bench/e2e.py [--events 1000] [--senders 4] [--sandbox docker] [--rate 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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
SECRET = "bench-secret"


def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def event(i: int) -> bytes:
    return json.dumps({
        "id": f"bench-{i}", "type": "onSubmit", "project_id": "proj-bench", "asset_id": f"asset-{i % 200}",
        "label": {"id": f"label-{i}", "labelType": "DEFAULT", "jsonResponse": {"OK": i % 2 == 0}},
    }).encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sender:
    """One keep-alive connection posting signed events."""

    def __init__(self, host: str, port_: int) -> None:
        self.connection = http.client.HTTPConnection(host, port_, timeout=60)

    def send(self, i: int, sent_at: dict[str, float]) -> None:
        body = event(i)
        signed = {**headers(SECRET, f"bench-{i}", body), "Content-Type": "application/json"}
        sent_at[f"bench-{i}"] = time.time()
        self.connection.request("POST", "/v1/events", body, signed)
        response = self.connection.getresponse()
        answer = response.read()
        assert response.status == 202, (response.status, answer)


@dataclass
class Phase:
    intake: float  # acknowledged events/s
    applied: float  # applied events/s
    latencies: list[float]  # sorted, ms
    server_cpu_ms: float  # per event
    client_cpu_ms: float  # per event


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
           "PLUGIN_RUNTIME_WEBHOOK_SECRET": SECRET}
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--port", str(p), "--sandbox", args.sandbox],
                              env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{p}"
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer bench-token"
    try:
        deadline = time.monotonic() + 120  # a loaded machine takes a while to import the server
        while True:
            try:
                admin.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        source = load_source(work / "plugin" / "main.py")
        admin.post(f"{url}/v1/plugins/bench/versions?create=true", data=source.archive()).raise_for_status()
        info = admin.get(f"{url}/v1/plugins/bench/versions/1?wait=300").json()
        assert info["status"] == "active", info
        admin.put(f"{url}/v1/plugins/bench/projects/proj-bench").raise_for_status()

        def idle(poll: float) -> None:
            while admin.get(f"{url}/healthz").json()["pending_runs"]:
                time.sleep(poll)

        Sender("127.0.0.1", p).send(-1, {})  # the first event starts the warm container
        idle(0.05)

        def phase(offset: int, rate: float | None) -> Phase:
            """Send args.events events (paced at ``rate`` events/s when given)."""
            sent_at: dict[str, float] = {}
            senders = [Sender("127.0.0.1", p) for _ in range(args.senders)]
            gap = args.senders / rate if rate else 0.0
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            started = time.time()

            def send_all(sender: Sender, indexes: range) -> None:
                for k, i in enumerate(indexes):
                    if gap:
                        time.sleep(max(0.0, started + k * gap - time.time()))
                    sender.send(offset + i, sent_at)

            threads = [threading.Thread(target=send_all, args=(sender, range(k, args.events, args.senders)))
                       for k, sender in enumerate(senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent_s = time.time() - started
            client_cpu = time.process_time() - client_cpu
            idle(0.05)
            server_cpu = cpu_seconds(server.pid) - server_cpu
            runs = [r for r in admin.get(f"{url}/v1/runs", params={"limit": 3 * args.events}).json()
                    if r["event_id"] in sent_at]
            assert len(runs) == args.events and all(r["status"] == "succeeded" for r in runs), len(runs)
            finished = {r["event_id"]: datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")).timestamp()
                        for r in runs}
            latencies = sorted((finished[e] - sent_at[e]) * 1000 for e in finished)
            return Phase(args.events / sent_s, args.events / (max(finished.values()) - started), latencies,
                         1000 * server_cpu / args.events, 1000 * client_cpu / args.events)

        saturated = phase(0, None)
        paced = phase(args.events, args.rate)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report(args, saturated, paced)


def report(args: argparse.Namespace, saturated: Phase, paced: Phase) -> None:
    def pct(values: list[float], q: float) -> float:
        return values[int(q * (len(values) - 1))]

    print(f"events per phase                   {args.events} ({args.senders} concurrent senders, sandbox {args.sandbox})")
    print("saturation (senders as fast as they can):")
    print(f"  intake (acknowledged) events/s   {saturated.intake:8.0f}")
    print(f"  applied events/s                 {saturated.applied:8.0f}   (target >= 1000)")
    print(f"  latency p50 / p99                {pct(saturated.latencies, 0.5):8.1f} / "
          f"{pct(saturated.latencies, 0.99):.1f} ms (includes queueing)")
    print(f"  CPU per event: server / senders  {saturated.server_cpu_ms:8.3f} / {saturated.client_cpu_ms:.3f} ms")
    print(f"paced at {args.rate:.0f} events/s (achieved {paced.intake:.0f}):")
    print(f"  event-to-applied latency p50     {pct(paced.latencies, 0.5):8.1f} ms")
    print(f"  event-to-applied latency p99     {pct(paced.latencies, 0.99):8.1f} ms   (target < 20)")
    print(f"  CPU per event: server / senders  {paced.server_cpu_ms:8.3f} / {paced.client_cpu_ms:.3f} ms")


if __name__ == "__main__":
    main()
