"""What a shadow costs the live runs of its project: bench/e2e.py's load, with and without one.

Starts `plugin-runtime serve` (fresh data dir), uploads e2e's trivial plugin live and a variant
as a candidate (`plugins update --candidate`), then runs phases of --events events each on the
same project, without and with the candidate shadowed there, in alternating order (--rounds
times each, so that neither a machine getting busier or quieter nor a fuller database favours
one side): as fast as the senders
can (live applied events/s) and paced at --rate (event-to-applied latency of the live runs).
After each shadowed phase it waits for the shadow lane to catch up and says how long that
took. Target (issue 16): the shadow costs the live runs at most 10% of their throughput.

    .venv/bin/python bench/shadow.py [--events 1000] [--senders 4] [--sandbox docker] [--rate 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import SECRET, TRIVIAL, Phase, Sender, phase, port  # e2e's load, unchanged

from plugin_runtime.source import load_source

#: The candidate: e2e's plugin, also sending good work to review (so its actions differ).
CANDIDATE = TRIVIAL.replace('''        if not label["jsonResponse"].get("OK"):
            self.kili.add_to_review(asset_ids=[asset_id])''',
                            '''        self.kili.add_to_review(asset_ids=[asset_id])''')


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        work = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
        for name, code in (("live", TRIVIAL), ("candidate", CANDIDATE)):
            (work / name).mkdir()
            (work / name / "main.py").write_text(code)
        self.work, self.port = work, port()
        env = {**os.environ, "PLUGIN_RUNTIME_DATA_DIR": str(work / "data"), "PLUGIN_RUNTIME_TOKEN": "bench-token",
               "PLUGIN_RUNTIME_WEBHOOK_SECRET": SECRET}
        self.server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--port", str(self.port),
                                        "--sandbox", args.sandbox], env=env, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = requests.Session()
        self.admin.headers["Authorization"] = "Bearer bench-token"
        self.offset = 0

    def api(self, method: str, path: str, **kwargs) -> dict:
        response = self.admin.request(method, self.url + path, timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_up(self) -> None:
        for _ in range(400):
            try:
                self.admin.get(f"{self.url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        uploads = (("live", {"create": "true"}), ("candidate", {"candidate": "true"}))
        for version, (name, params) in enumerate(uploads, 1):
            archive = load_source(self.work / name / "main.py").archive()
            self.api("POST", "/v1/plugins/bench/versions", params=params, data=archive)
            assert self.api("GET", f"/v1/plugins/bench/versions/{version}", params={"wait": 300})["status"] in (
                "active", "inactive")
        self.api("PUT", "/v1/plugins/bench/projects/proj-bench")
        # Both versions' sandboxes warm before anything is measured.
        self.api("PUT", "/v1/plugins/bench/shadows/proj-bench", json={"version": 2})
        Sender("127.0.0.1", self.port).send(-1, {})
        self.caught_up()
        self.api("DELETE", "/v1/plugins/bench/shadows")

    def idle(self) -> None:
        while self.api("GET", "/healthz")["pending_runs"]:
            time.sleep(0.02)

    def caught_up(self) -> float:
        """Seconds until the shadow lane has no run waiting (0 without a shadow)."""
        started = time.monotonic()
        self.idle()
        while any(r["events"]["waiting"] for r in self.api("GET", "/v1/shadows", params={"differences": 0})["shadows"]):
            time.sleep(0.05)
        return time.monotonic() - started

    def phase(self, rate: float | None) -> Phase:
        """Send --events events as e2e does; the live runs' figures."""
        args, offset = self.args, self.offset
        self.offset += args.events
        # idle: the live runs, not the shadow's.
        return phase(self.port, self.server.pid, args.events, args.senders, offset, rate, self.idle,
                     lambda: self.api("GET", "/v1/runs", params={"limit": 2 * args.events}))

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=60)


def pct(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--sandbox", default="docker", choices=["docker", "process"])
    parser.add_argument("--rate", type=float, default=300.0, help="Offered load of the latency phases.")
    parser.add_argument("--rounds", type=int, default=2, help="Phases of each kind, alternating.")
    args = parser.parse_args()
    bench = Bench(args)
    results: dict[bool, dict[str, list]] = {False: {"saturated": [], "paced": [], "catch_up": []},
                                            True: {"saturated": [], "paced": [], "catch_up": []}}
    try:
        bench.set_up()
        for number in range(args.rounds):
            # A B, then B A: neither side always runs on the fuller database.
            for shadowed in ((False, True) if number % 2 == 0 else (True, False)):
                if shadowed:
                    bench.api("PUT", "/v1/plugins/bench/shadows/proj-bench", json={"version": 2})
                for kind, rate in (("saturated", None), ("paced", args.rate)):
                    results[shadowed][kind].append(bench.phase(rate))
                    results[shadowed]["catch_up"].append(bench.caught_up())
                if shadowed:
                    bench.api("DELETE", "/v1/plugins/bench/shadows")
        [report] = bench.api("GET", "/v1/shadows", params={"plugin": "bench", "differences": 0})["shadows"]
    finally:
        bench.close()
    print(f"events per phase {args.events} ({args.senders} senders, sandbox {args.sandbox}), {args.rounds} round(s), "
          "live runs' figures (median of the rounds)")
    print(f"{'':34}{'no shadow':>12}{'shadow':>12}{'change':>9}")

    def row(label: str, values: dict[bool, float], unit: str = "") -> None:
        change = 100 * (values[True] - values[False]) / values[False] if values[False] else 0.0
        print(f"  {label:32}{values[False]:12.1f}{values[True]:12.1f}{change:+8.1f}%  {unit}")

    def median(shadowed: bool, kind: str, key) -> float:
        return statistics.median(key(phase) for phase in results[shadowed][kind])

    row("saturated: applied events/s", {s: median(s, "saturated", lambda p: p.applied) for s in (False, True)})
    row("saturated: intake events/s", {s: median(s, "saturated", lambda p: p.intake) for s in (False, True)})
    row("saturated: server CPU ms/event", {s: median(s, "saturated", lambda p: p.server_cpu_ms) for s in (False, True)},
        "(the shadow's own runs partly counted)")
    row(f"paced {args.rate:.0f}/s: latency p50 ms", {s: median(s, "paced", lambda p: pct(p.latencies, 0.5))
                                                   for s in (False, True)})
    row(f"paced {args.rate:.0f}/s: latency p99 ms", {s: median(s, "paced", lambda p: pct(p.latencies, 0.99))
                                                   for s in (False, True)})
    catch_up = results[True]["catch_up"]
    print(f"  shadow lane caught up after a phase in {min(catch_up):.1f} to {max(catch_up):.1f} s; it saw "
          f"{report['events']['seen']} events ({report['events']['differing']} differing, "
          f"{report['events']['not_run']} not run)")


if __name__ == "__main__":
    main()
