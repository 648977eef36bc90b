"""Scale-out on one machine: applied events/s and p99 event-to-applied latency with 1, 2 and 4
workers on a shared PostgreSQL, for a plugin whose hook waits 20 ms (I/O bound: the machine's
cores are not the limit), and a trivial plugin on PostgreSQL versus SQLite.

Each configuration starts its own processes: a PostgreSQL (Debian's, in a temporary directory,
as the tests start it, fsync on), one ``serve --workers 0`` (the intake) and N ``worker
--concurrency 1``. Events go to 8 projects (8 lanes, so 4 workers have work). The events are
stored first, then N workers drain them: applied events/s is measured from the first run's
start to the last one's end (the workers' rate, apart from the intake's, printed beside it),
and, in brackets, while all N workers ran (from the last worker's first run to the first
worker's last: the processes start up to a second apart on a loaded machine, and a lane is
drained by one worker, so the last lanes end with fewer workers busy).
Latency: events sent one by one at half the measured rate; a run's ``finished_at`` minus its
event's send time, p99. SQLite is one ``serve`` with its in-process lanes, its events sent as
fast as they are taken.
Targets (issue 14): 2 workers >= 1.8x and 4 workers >= 3.2x one worker's throughput on the
waiting plugin; the trivial plugin on PostgreSQL >= 500 applied events/s.

    .venv/bin/python bench/scale.py [--events 800] [--trivial-events 2000] [--sandbox process]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin_runtime.webhooks import headers  # noqa: E402
from tests.plugin_runtime.store.pg_service import PostgresServer, free_port  # noqa: E402

WAITING = '''
import time
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        time.sleep(0.02)  # a call to a slow service, as far as the worker can tell
        self.kili.add_to_review(asset_ids=[asset_id])
'''
TRIVIAL = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''
TOKEN, SECRET = "bench-token", "bench-secret"
#: Applied events/s while every worker ran, by (plugin code, workers).
RUNNING: dict[tuple[str, int], float | None] = {}
PROJECTS = [f"proj-{n}" for n in range(8)]


class Processes:
    def __init__(self, root: Path, database_url: str | None, sandbox: str) -> None:
        self.root, self.database_url, self.sandbox = root, database_url, sandbox
        self.running: list[subprocess.Popen] = []
        self.url = ""

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PLUGIN_RUNTIME_TOKEN": TOKEN, "PLUGIN_RUNTIME_WEBHOOK_SECRET": SECRET,
               "PLUGIN_RUNTIME_LOG_LEVEL": "WARNING", "PLUGIN_RUNTIME_MAX_QUEUE": "100000",
               "PLUGIN_RUNTIME_MAX_QUEUE_PER_PROJECT": "100000", "PLUGIN_RUNTIME_DEFAULT_PACKAGES": ""}
        if self.database_url:
            env["PLUGIN_RUNTIME_DATABASE_URL"] = self.database_url
        return env

    def spawn(self, *args: str) -> None:
        log = open(self.root / f"process-{len(self.running)}.log", "ab")  # noqa: SIM115 - the child's
        self.running.append(subprocess.Popen([sys.executable, "-m", "plugin_runtime", *args], env=self.env(),
                                             stdout=log, stderr=log, cwd=self.root))

    def serve(self, workers: int | None) -> None:
        port = free_port()
        self.spawn("serve", "--sandbox", self.sandbox, "--port", str(port), "--data-dir", str(self.root / "data"),
                   *(["--workers", str(workers)] if workers is not None else []))
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the intake did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def deploy(processes: Processes, code: str) -> None:
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {TOKEN}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    response = admin.post(f"{processes.url}/v1/plugins/bench/versions", params={"create": "true"},
                          data=buffer.getvalue(), timeout=600)
    response.raise_for_status()
    deadline = time.monotonic() + 600
    while admin.get(f"{processes.url}/v1/plugins/bench/versions/1", timeout=30).json()["status"] == "deploying":
        if time.monotonic() > deadline:
            raise SystemExit("the plugin was not built")
        time.sleep(0.2)
    for project in PROJECTS:
        admin.put(f"{processes.url}/v1/plugins/bench/projects/{project}", timeout=30).raise_for_status()


def send_all(url: str, prefix: str, count: int, senders: int = 4, interval: float = 0.0) -> dict[str, float]:
    """Post ``count`` signed events from ``senders`` threads (each waiting ``interval`` between
    two); returns each event's send time."""
    sent: dict[str, float] = {}
    host, port = url.removeprefix("http://").split(":")

    def sender(offset: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for number in range(offset, count, senders):
            event_id = f"{prefix}-{number}"
            project = PROJECTS[number % len(PROJECTS)]
            body = json.dumps({"id": event_id, "type": "onSubmit", "project_id": project,
                               "asset_id": f"{project}-asset-{number % 50}",
                               "label": {"id": f"label-{event_id}", "jsonResponse": {}}}).encode()
            while True:
                sent[event_id] = time.time()
                connection.request("POST", "/v1/events", body, {"Content-Type": "application/json",
                                                                 **headers(SECRET, event_id, body)})
                response = connection.getresponse()
                response.read()
                if response.status in (200, 202):
                    break
                time.sleep(0.05)  # 429/503: send again
            if interval:
                time.sleep(max(0.0, sent[event_id] + interval - time.time()))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def ended(processes: Processes, prefix: str, count: int) -> dict[str, tuple[float, float]]:
    """Each event's run's (start, end) in epoch seconds, once ``count`` ended (read from the database)."""
    query = ("SELECT event_id, started_at, finished_at FROM runs WHERE event_id LIKE '" + prefix
             + "-%' AND finished_at IS NOT NULL")
    deadline = time.monotonic() + 1800
    while True:
        if processes.database_url:
            with psycopg.connect(processes.database_url) as connection:
                rows = connection.execute(query).fetchall()
        else:
            with sqlite3.connect(f"file:{processes.root / 'data' / 'runtime.db'}?mode=ro", uri=True) as connection:
                rows = connection.execute(query).fetchall()
        if len(rows) >= count:
            return {event_id: (_epoch(start), _epoch(end)) for event_id, start, end in rows}
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(rows)} of {count} runs ended")
        time.sleep(0.2)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def paced(processes: Processes, prefix: str, rate: float, seconds: float) -> float:
    """p99 event-to-applied latency (ms) of events sent at ``rate`` per second."""
    count = max(20, int(rate * seconds))
    sent = send_all(processes.url, prefix, count, senders=1, interval=1 / rate)
    ends = ended(processes, prefix, count)
    latencies = sorted((ends[event_id][1] - at) * 1000 for event_id, at in sent.items())
    return latencies[max(0, int(len(latencies) * 0.99) - 1)]


def all_running(url: str, prefix: str) -> float | None:
    """Runs ended per second while every worker ran (None: too short a time to tell)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT worker, started_at, finished_at FROM runs WHERE event_id LIKE %s",
                                  (prefix + "-%",)).fetchall()
    spans: dict[str, tuple[float, float]] = {}
    for worker, start, end in rows:
        first, last = spans.get(worker, (float("inf"), 0.0))
        spans[worker] = (min(first, _epoch(start)), max(last, _epoch(end)))
    begin, finish = max(first for first, _ in spans.values()), min(last for _, last in spans.values())
    if finish - begin < 0.5:
        return None
    return sum(1 for _, _, end in rows if begin < _epoch(end) <= finish) / (finish - begin)


def on_postgres(server: PostgresServer, code: str, workers: int, count: int, sandbox: str, label: str) -> float:
    """Events stored first (the intake alone), then drained by ``workers`` worker processes:
    applied events/s from the first run's start to the last one's end; then latency, paced at
    half that rate."""
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    processes = Processes(root, server.database(), sandbox)
    try:
        processes.serve(workers=0)
        deploy(processes, code)
        prefix = f"drain-{workers}"
        started = time.time()
        send_all(processes.url, prefix, count)
        stored = count / (time.time() - started)
        for number in range(workers):
            processes.spawn("worker", "--sandbox", sandbox, "--concurrency", "1", "--name", f"bench-{number}")
        runs = ended(processes, prefix, count)
        rate = count / (max(end for _, end in runs.values()) - min(start for start, _ in runs.values()))
        steady = all_running(processes.database_url or "", prefix)
        p99 = paced(processes, f"paced-{workers}", min(rate, stored) / 2, 6)
        print(f"{label:34} {rate:7.1f} applied events/s [{f'{steady:.1f}' if steady else 'n/a'} while all ran]"
              f"   p99 event-to-applied {p99:6.0f} ms at {min(rate, stored) / 2:.0f} events/s"
              f"   (intake stored {stored:.0f} events/s)", flush=True)
        RUNNING[(code, workers)] = steady
        return rate
    finally:
        processes.stop()


def on_sqlite(code: str, count: int, sandbox: str) -> float:
    """One serve, its in-process lanes: applied events/s from the first send to the last end."""
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    processes = Processes(root, None, sandbox)
    try:
        processes.serve(workers=None)
        deploy(processes, code)
        started = time.time()
        send_all(processes.url, "all", count)
        runs = ended(processes, "all", count)
        rate = count / (max(end for _, end in runs.values()) - started)
        p99 = paced(processes, "paced", rate / 2, 6)
        print(f"{'trivial, SQLite (one serve)':34} {rate:7.1f} applied events/s   p99 event-to-applied {p99:6.0f} ms at "
              f"{rate / 2:.0f} events/s", flush=True)
        return rate
    finally:
        processes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=800, help="events per run of the waiting plugin")
    parser.add_argument("--trivial-events", type=int, default=2000)
    parser.add_argument("--sandbox", choices=["process", "docker"], default="process")
    args = parser.parse_args()
    server = PostgresServer(fsync=os.environ.get("BENCH_FSYNC", "on") == "on")
    try:
        rates = {n: on_postgres(server, WAITING, n, args.events, args.sandbox, f"waiting 20 ms, {n} worker(s)")
                 for n in (1, 2, 4)}
        print(f"speed-up: 2 workers {rates[2] / rates[1]:.2f}x (target 1.8x), "
              f"4 workers {rates[4] / rates[1]:.2f}x (target 3.2x)")
        running = [RUNNING.get((WAITING, n)) for n in (1, 2, 4)]
        if running[0] and running[1] and running[2]:
            print(f"  while all ran: 2 workers {running[1] / running[0]:.2f}x, 4 workers {running[2] / running[0]:.2f}x")
        trivial = on_postgres(server, TRIVIAL, 4, args.trivial_events, args.sandbox, "trivial, PostgreSQL, 4 workers")
        sqlite = on_sqlite(TRIVIAL, args.trivial_events, args.sandbox)
        print(f"trivial plugin: PostgreSQL {trivial:.0f} events/s (target 500), SQLite {sqlite:.0f} events/s")
    finally:
        server.close()


if __name__ == "__main__":
    main()
