"""Label Studio end to end: how soon a trivial plugin's metadata reaches a task after the
annotator's save, and what the runtime's webhook adds to that save.

Starts a real Label Studio (the cached venv of ``scripts/services/label-studio.sh``, a fresh
data dir, SSRF protection off) and ``plugin-runtime serve`` as separate processes, connects a
project, uploads a plugin that writes the annotation's id into the task's meta, then saves
``--annotations`` annotations as a person, interleaved with as many saves in a project that is
not connected. For each save on the connected project it polls the task until its meta names
the annotation: save returned -> meta updated. The webhook's cost to the annotator is the
difference of the two projects' save times (Label Studio calls the webhook inside the save).
Targets: p99 < 1 s from save to meta; the runtime adds < 10 ms to a save.

    .venv/bin/python bench/label_studio.py [--annotations 200] [--sandbox process]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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
        run(studio, url, args.annotations)
    finally:
        if runtime is not None:
            runtime.terminate()
            runtime.wait(timeout=30)
        _stop(studio)
        shutil.rmtree(work, ignore_errors=True)


def run(studio, url: str, count: int) -> None:
    tasks = [{"text": f"text {i}"} for i in range(count)]
    connected, connected_tasks = studio.project("Bench connected", CONFIG, tasks)
    alone, alone_tasks = studio.project("Bench alone", CONFIG, tasks)
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer bench-token"
    answer = admin.post(f"{url}/v1/connections", timeout=60, json={
        "kind": "label-studio", "runtime_url": url, "params": {"url": studio.url, "token": BOT[2], "project": connected}})
    answer.raise_for_status()
    project_id = answer.json()["project_id"]
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
    person = studio.session(PERSON[2])
    result = [{"id": "r1", "from_name": "ok", "to_name": "text", "type": "choices", "value": {"choices": ["yes"]}}]

    def save(task: int) -> tuple[float, dict]:
        started = time.perf_counter()
        response = person.post(f"{studio.url}/api/tasks/{task}/annotations/", json={"result": result}, timeout=60)
        response.raise_for_status()
        return time.perf_counter() - started, response.json()

    for warm in (connected_tasks[0], alone_tasks[0]):  # first saves of each project: caches, the plugin's process
        save(warm)
    wait_meta(person, studio.url, connected_tasks[0], None)
    with_runtime, without_runtime, to_meta = [], [], []
    for task, other in zip(connected_tasks[1:], alone_tasks[1:]):
        took, annotation = save(task)
        with_runtime.append(took)
        saved = time.perf_counter()
        wait_meta(person, studio.url, task, str(annotation["id"]))
        to_meta.append(time.perf_counter() - saved)
        took, _ = save(other)
        without_runtime.append(took)
    print(f"Label Studio {studio.url}, runtime {url}: {len(to_meta)} annotations")
    show("save returned -> task meta updated", to_meta)
    show("annotator's save, project connected", with_runtime)
    show("annotator's save, project not connected", without_runtime)
    added = statistics.median(with_runtime) - statistics.median(without_runtime)
    print(f"{'the webhook adds to a save (medians)':38} {added * 1000:8.1f} ms")
    print(json.dumps({"annotations": len(to_meta), "p50_ms": percentile(to_meta, 0.5) * 1000,
                      "p99_ms": percentile(to_meta, 0.99) * 1000, "save_added_ms": added * 1000}))


def wait_meta(session: requests.Session, base: str, task: int, annotation_id: str | None) -> None:
    deadline = time.monotonic() + 60
    while True:
        meta = session.get(f"{base}/api/tasks/{task}/", timeout=30).json().get("meta") or {}
        if meta.get("seen") and (annotation_id is None or meta["seen"] == annotation_id):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"task {task}: the plugin's meta never came")
        time.sleep(0.005)


if __name__ == "__main__":
    main()
