"""Label Studio end to end: how soon a trivial plugin's metadata reaches a task after the
annotator's save, and what the runtime's webhook adds to that save.

Starts a real Label Studio (the cached venv of ``scripts/services/label-studio.sh``, a fresh
data dir, SSRF protection off) and ``plugin-runtime serve`` as separate processes, connects a
project, uploads a plugin that writes the annotation's id into the task's meta, then saves
``--annotations`` annotations as a person (after one warm-up save per project), interleaved,
in a rotating order, with as many saves in two projects that are not connected: one with no
webhook, one whose webhook (configured as ``connect`` configures the runtime's) calls a
trivial receiver on 127.0.0.1 that answers 200 at once. For each save on the connected
project it polls the task until its meta names the annotation: save returned -> meta updated.

Label Studio (without Redis) calls a project's webhooks inside the save, so the webhook's cost
to the annotator is the difference of the save times: connected minus no webhook is what the
runtime adds; the trivial receiver's project shows how much of it any webhook at all costs
(Label Studio's own work: finding the webhooks, posting on a new connection); connected minus
trivial is the runtime's own share. The runtime's intake is also timed alone (a poke posted
as Label Studio posts it, a new connection each), and CPU is counted per save in Label Studio
and per event in the runtime (its process and its sandboxes), figures a loaded machine
distorts less than times. Targets: p99 < 1 s from save to meta; the runtime adds < 10 ms to a
save.

Label Studio Community (1.23.2 tested) has no Redis (its settings fix ``REDIS_ENABLED =
False``: "OSS version does not support Redis"), so it always runs webhooks inside the save;
only Enterprise queues them to RQ workers. What a webhook costs it there (timed inside Label
Studio, 40 saves each, a loaded 2-core machine): 13-18 ms when the webhook carries a payload
(serializing the annotation, its task and its project, then posting it), 3-5 ms without one
(finding the webhooks, posting ``{"action": ...}`` on a new connection). So ``connect`` makes
a payload-less webhook, a poke: the runtime answers it in about a millisecond and fetches the
newest tasks itself, one more Label Studio call between save and meta.

    .venv/bin/python bench/label_studio.py [--annotations 200] [--sandbox process] [--poll-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.plugin_runtime.platforms.label_studio.conftest import (  # noqa: E402
    BOT, PERSON, VENV, _environment, _start, _stop,
)
from tests.plugin_runtime.service_fixtures import free_port  # noqa: E402

TRIVIAL = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"seen": label["id"]}])
'''
CONFIG = ('<View><Text name="text" value="$text"/><Choices name="ok" toName="text">'
          '<Choice value="yes"/><Choice value="no"/></Choices></View>')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def show(name: str, values: list[float]) -> None:
    print(f"{name:38} p50 {percentile(values, 0.5) * 1000:8.1f} ms   p99 {percentile(values, 0.99) * 1000:8.1f} ms"
          f"   mean {statistics.fmean(values) * 1000:8.1f} ms   n={len(values)}")


class Trivial:
    """An HTTP receiver that answers 200 at once (a thread of the bench's, on 127.0.0.1)."""

    def __init__(self) -> None:
        self.port = free_port()
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True).start()
        if not ready.wait(30):
            raise SystemExit("the trivial receiver did not start")
        self.url = f"http://127.0.0.1:{self.port}/webhook"

    async def _serve(self, ready: threading.Event) -> None:
        server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)
        ready.set()
        async with server:
            await server.serve_forever()

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its living descendants (a runtime's sandboxes)."""
    tick, total, parents = os.sysconf("SC_CLK_TCK"), 0.0, {pid}
    stats = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            stats.append((int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / tick))
    for _ in range(8):  # a few generations deep is enough for a runtime and its sandboxes
        parents |= {p for p, parent, _ in stats if parent in parents}
    for p, _, used in stats:
        if p in parents:
            total += used
    return total


def serve(data: Path, sandbox: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    data.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLUGIN_RUNTIME_TOKEN": "bench-token", "PLUGIN_RUNTIME_WEBHOOK_SECRET": "bench-secret",
           "PLUGIN_RUNTIME_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--port", str(port), "--data-dir",
                                str(data), "--sandbox", sandbox], env=env, stdout=subprocess.DEVNULL,
                               stderr=open(data.parent / "runtime.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=2)
            return process, url
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the runtime did not start: see runtime.log") from None
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=200)
    parser.add_argument("--sandbox", choices=["process", "docker"], default="process")
    parser.add_argument("--poll-ms", type=float, default=5.0,
                        help="how often the task is read for its meta (each read is Label Studio's work too)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-label-studio-"))
    binary = VENV / "bin" / "label-studio"
    if not binary.exists():
        raise SystemExit("Label Studio is not installed: run scripts/services/label-studio.sh")
    data = work / "label-studio"
    data.mkdir()
    env = _environment(data, ssrf=False)
    print("starting Label Studio (the first start migrates its database: a minute or two)...", file=sys.stderr)
    subprocess.run([str(binary), "init", "--quiet", "--username", BOT[0], "--password", BOT[1], "--user-token",
                    BOT[2], "--enable-legacy-api-token"], env=env, cwd=data, check=True, capture_output=True)
    studio = _start(binary, data, env, data / "label-studio.log")
    runtime = None
    try:
        runtime, url = serve(work / "runtime" / ".plugin-runtime", args.sandbox)
        run(studio, runtime, url, args.annotations, args.poll_ms / 1000)
    finally:
        if runtime is not None:
            runtime.terminate()
            runtime.wait(timeout=30)
        _stop(studio)
        shutil.rmtree(work, ignore_errors=True)


def run(studio, runtime: subprocess.Popen, url: str, count: int, poll_s: float) -> None:
    tasks = [{"text": f"text {i}"} for i in range(count + 1)]  # the first of each project warms up
    projects = {name: studio.project(f"Bench {name}", CONFIG, tasks) for name in ("connected", "trivial", "alone")}
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer bench-token"
    answer = admin.post(f"{url}/v1/connections", timeout=60, json={
        "kind": "label-studio", "runtime_url": url,
        "params": {"url": studio.url, "token": BOT[2], "project": projects["connected"][0]}})
    answer.raise_for_status()
    project_id = answer.json()["project_id"]
    [hook] = studio.webhooks(projects["connected"][0])
    trivial = Trivial()
    studio.call("POST", "/api/webhooks/", json={"project": projects["trivial"][0], "url": trivial.url, **{
        k: hook[k] for k in ("send_payload", "send_for_all_actions", "actions", "headers", "is_active")}})
    deploy(admin, url, project_id)
    person = studio.session(PERSON[2])
    result = [{"id": "r1", "from_name": "ok", "to_name": "text", "type": "choices", "value": {"choices": ["yes"]}}]

    def save(task: int) -> tuple[float, float, dict]:
        """The save's time, Label Studio's CPU during it, the annotation."""
        used, started = cpu_s(studio.process.pid), time.perf_counter()
        response = person.post(f"{studio.url}/api/tasks/{task}/annotations/", json={"result": result}, timeout=60)
        response.raise_for_status()
        return time.perf_counter() - started, cpu_s(studio.process.pid) - used, response.json()

    for _, ids in projects.values():  # first saves of each project: caches, the plugin's process
        save(ids[0])
    wait_meta(person, studio.url, projects["connected"][1][0], None)
    saves: dict[str, list[float]] = {name: [] for name in projects}
    cpu: dict[str, float] = {name: 0.0 for name in projects}
    to_meta: list[float] = []
    returned: dict[str, tuple[float, float]] = {}  # task id -> its save returned (the epoch), seconds to meta
    names, runtime_used = list(projects), cpu_s(runtime.pid)
    for i in range(1, count + 1):
        for name in names[i % 3:] + names[:i % 3]:
            took, used, annotation = save(projects[name][1][i])
            saves[name].append(took)
            cpu[name] += used
            if name == "connected":
                saved, epoch = time.perf_counter(), time.time()
                wait_meta(person, studio.url, projects[name][1][i], str(annotation["id"]), poll_s)
                to_meta.append(time.perf_counter() - saved)
                returned[str(projects[name][1][i])] = (epoch, to_meta[-1])
    runtime_used = cpu_s(runtime.pid) - runtime_used
    report(studio.url, url, saves, cpu, to_meta, runtime_used, intake(url, project_id, hook, trivial.url))
    stages(admin.get(f"{url}/v1/runs", params={"project_id": project_id, "limit": 10_000}, timeout=60).json(),
           returned)


def stages(runs: list[dict], returned: dict[str, tuple[float, float]]) -> None:
    """Where save -> meta goes, from the runs' own stamps: save returned -> run created (the
    webhook's poke, the look at Label Studio, the event stored), -> run finished (the plugin),
    -> meta seen (the action applied in Label Studio through the outbox, and the poll)."""
    from datetime import datetime

    found: dict[str, list[float]] = {"event": [], "run": [], "applied": []}
    for run in runs:
        if run["asset_id"] not in returned or not run.get("finished_at"):
            continue
        created, finished = (datetime.fromisoformat(run[k].replace("Z", "+00:00")).timestamp()
                             for k in ("created_at", "finished_at"))
        epoch, took = returned[run["asset_id"]]
        found["event"].append(created - epoch)
        found["run"].append(finished - created)
        found["applied"].append(epoch + took - finished)
    if found["event"]:
        print(f"{'where save -> meta goes (medians)':38} event stored {statistics.median(found['event']) * 1000:.0f} ms"
              f", plugin run {statistics.median(found['run']) * 1000:.0f} ms, applied and seen "
              f"{statistics.median(found['applied']) * 1000:.0f} ms (stamps to the millisecond)")


def deploy(admin: requests.Session, url: str, project_id: str) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", TRIVIAL)
    admin.post(f"{url}/v1/plugins/trivial/versions", params={"create": "true"}, data=buffer.getvalue(),
               timeout=60).raise_for_status()
    admin.put(f"{url}/v1/plugins/trivial/projects/{project_id}", timeout=30).raise_for_status()
    deadline = time.monotonic() + 300
    while admin.get(f"{url}/v1/plugins/trivial", timeout=30).json().get("current_version") is None:
        if time.monotonic() > deadline:
            raise SystemExit("the plugin did not deploy")
        time.sleep(0.2)


def intake(url: str, project_id: str, hook: dict, trivial: str, count: int = 200) -> dict[str, list[float]]:
    """The runtime's intake answering the poke Label Studio sends, and the trivial receiver
    answering it, interleaved; each posted on a new connection, as Label Studio posts."""
    body = json.dumps({"action": "ANNOTATION_CREATED"}).encode()
    headers = {"Content-Type": "application/json", **hook["headers"]}
    took: dict[str, list[float]] = {"runtime": [], "trivial": []}
    for _, (name, target) in zip(range(2 * count), itertools.cycle(
            [("runtime", f"{url}/v1/connections/{project_id}/webhook"), ("trivial", trivial)])):
        started = time.perf_counter()
        requests.post(target, data=body, headers=headers, timeout=30).raise_for_status()
        took[name].append(time.perf_counter() - started)
    return took


def report(studio: str, url: str, saves: dict[str, list[float]], cpu: dict[str, float], to_meta: list[float],
           runtime_cpu: float, answers: dict[str, list[float]]) -> None:
    count, median = len(to_meta), statistics.median
    print(f"Label Studio {studio}, runtime {url}: {count} annotations")
    show("save returned -> task meta updated", to_meta)
    show("annotator's save, project connected", saves["connected"])
    show("annotator's save, trivial receiver", saves["trivial"])
    show("annotator's save, no webhook", saves["alone"])
    added = median(saves["connected"]) - median(saves["alone"])
    any_hook = median(saves["trivial"]) - median(saves["alone"])
    print(f"{'the webhook adds to a save (medians)':38} {added * 1000:8.1f} ms   of which any webhook (trivial "
          f"receiver) {any_hook * 1000:.1f} ms, the runtime's own share {(added - any_hook) * 1000:.1f} ms")
    print(f"{'intake answers a poke (new connection)':38} {median(answers['runtime']) * 1000:8.2f} ms   trivial "
          f"receiver {median(answers['trivial']) * 1000:.2f} ms (medians)")
    per_save = {name: used / count * 1000 for name, used in cpu.items()}
    print(f"{'Label Studio CPU per save':38} connected {per_save['connected']:.1f} ms (with the runtime's look at "
          f"the newest tasks, served meanwhile), trivial receiver {per_save['trivial']:.1f} ms, no webhook "
          f"{per_save['alone']:.1f} ms")
    print(f"{'runtime CPU per event (with sandboxes)':38} {runtime_cpu / count * 1000:8.1f} ms")
    print(json.dumps({"annotations": count, "p50_ms": percentile(to_meta, 0.5) * 1000,
                      "p99_ms": percentile(to_meta, 0.99) * 1000, "save_added_ms": added * 1000,
                      "any_webhook_ms": any_hook * 1000, "runtime_share_ms": (added - any_hook) * 1000,
                      "intake_ms": median(answers["runtime"]) * 1000, "trivial_ms": median(answers["trivial"]) * 1000,
                      "label_studio_cpu_per_save_ms": per_save, "runtime_cpu_per_event_ms": runtime_cpu / count * 1000}))


def wait_meta(session: requests.Session, base: str, task: int, annotation_id: str | None,
              poll_s: float = 0.005) -> None:
    deadline = time.monotonic() + 60
    while True:
        meta = session.get(f"{base}/api/tasks/{task}/", timeout=30).json().get("meta") or {}
        if meta.get("seen") and (annotation_id is None or meta["seen"] == annotation_id):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"task {task}: the plugin's meta never came")
        time.sleep(poll_s)


if __name__ == "__main__":
    main()
