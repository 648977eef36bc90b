"""End to end through the HTTP intake with the Docker sandbox: a trivial plugin, 1,000 events.

Starts `plugin-runtime serve` as a separate process (fresh data dir), uploads and activates
the plugin, warms its sandbox, then posts signed events from a few concurrent senders, twice:
as fast as they can (throughput; latency there is mostly queueing) and paced at --rate
(event-to-applied latency: POST sent -> run finished, from the run's finished_at).
Targets on a 2-core machine: >= 1,000 applied events/s; p99 < 20 ms paced at 300 events/s.

The load (senders, events, what a phase measures) is ``_load.py``'s, shared with shadow.py.
Each phase also reports the CPU the server process and the senders used per event, a figure
that stays comparable when the machine is busy.

    .venv/bin/python bench/e2e.py [--events 1000] [--senders 4] [--sandbox docker] [--rate 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import SECRET, TRIVIAL, Phase, Sender, phase, port  # the load, shared with shadow.py

from plugin_runtime.source import load_source


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

        def runs() -> list[dict]:
            return admin.get(f"{url}/v1/runs", params={"limit": 3 * args.events}).json()

        def measure(offset: int, rate: float | None) -> Phase:
            return phase(p, server.pid, args.events, args.senders, offset, rate, lambda: idle(0.05), runs)

        saturated = measure(0, None)
        paced = measure(args.events, args.rate)
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
