"""Hostile plugins in the service's Docker sandbox, end to end (upload, activation, signed
webhooks): a thief looking for the runtime's secrets and a way out, and a plugin ending its
own process every way Python allows. Each is contained: its run is recorded with a clear
outcome, nothing secret reaches it, the other plugin of the project goes on, the service stays
healthy."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from plugin_sdk.testing import dry_run
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

pytestmark = pytest.mark.docker

THIEF = r'''
import json
import os
import socket

from plugin_sdk import PluginCore

#: What the test's service is configured with (its admin token, its webhook secrets).
#: Spelled in pieces, so that this file itself holds none of them.
WANTED = [("test-" + "token").encode(), ("test-" + "secret").encode(), ("b2xkLXNlY3JldC0x" + "MjM0NQ").encode(),
          ("old-secret-" + "12345").encode()]
SKIP = ("/proc", "/sys", "/dev")


def scan_files(found):
    scanned = 0
    for top, folders, files in os.walk("/"):
        folders[:] = [f for f in folders if os.path.join(top, f) not in SKIP]
        for name in files:
            path = os.path.join(top, name)
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > 4_000_000:
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            scanned += 1
            found.extend(f"{path}: {w.decode()}" for w in WANTED if w in data)
    return scanned


def scan_processes(found):
    seen = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        seen.append(pid)
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            found.extend(f"/proc/{pid}/{part}: {w.decode()}" for w in WANTED if w in data)
    return seen


def reach(port):
    """Each way out tried, and what happened."""
    tries = {}
    for name, attempt in {
        "runtime-api": lambda: socket.create_connection(("127.0.0.1", port), timeout=2),
        "docker-socket": lambda: socket.socket(socket.AF_UNIX).connect("/var/run/docker.sock"),
        "dns": lambda: socket.getaddrinfo("pypi.org", 443),
        "interfaces": lambda: [n for _, n in socket.if_nameindex() if n != "lo"] or None,
    }.items():
        try:
            tries[name] = f"REACHED {attempt()!r}"
        except OSError as error:
            tries[name] = f"refused: {type(error).__name__}"
        if tries[name] == "REACHED None":
            tries[name] = "refused: only the loopback interface"
    return tries


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        found = [f"env {k}" for k, v in os.environ.items() if any(w.decode() in v for w in WANTED)]
        scanned = scan_files(found)
        pids = scan_processes(found)
        report = {"found": found, "scanned": scanned, "pids": pids, "uid": os.getuid(),
                  "environment": sorted(os.environ),
                  "network": reach(label["jsonResponse"]["PORT"])}
        self.logger.info(json.dumps(report))
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[report])
'''

CRASHER = r'''
import ctypes
import os
import signal
import sys
import threading

from plugin_sdk import PluginCore


class Escape(BaseException):
    pass


def forever(n):
    return forever(n + 1) + 1


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        how = label["jsonResponse"]["CRASH"]
        if how == "os-exit":
            os._exit(3)
        if how == "sys-exit":
            sys.exit("bye")
        if how == "keyboard-interrupt":
            raise KeyboardInterrupt
        if how == "base-exception":
            raise Escape("not an Exception")
        if how == "recursion":
            forever(0)
        if how == "segfault":
            ctypes.string_at(0)
        if how == "sigkill-self":  # PID 1 of its container: the kernel ignores it
            os.kill(os.getpid(), signal.SIGKILL)
            os.kill(1, signal.SIGSEGV)
        if how == "close-channel":  # every descriptor but the standard ones, the protocol's included
            os.closerange(3, 1024)
        if how == "exit-from-thread":
            threading.Thread(target=lambda: os._exit(0)).start()
            threading.Event().wait(30)
        self.kili.add_to_review(asset_ids=[asset_id])
'''

HOG = r'''
import os
import threading
import time

from plugin_sdk import PluginCore


def spin():
    while True:
        pass


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        how = label["jsonResponse"]["HOG"]
        if how == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(64 * 1024 * 1024))
        if how == "threads":
            started = 0
            try:
                for _ in range(10_000):
                    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
                    started += 1
            finally:
                self.logger.info("started %d threads", started)
        if how == "fork-bomb":
            while True:
                os.fork()
        if how == "disk":
            written = 0
            try:
                with open("/tmp/fill", "wb") as handle:
                    while written < 1 << 30:
                        handle.write(b"x" * (1 << 20))
                        written += 1 << 20
            finally:
                self.logger.info("wrote %d MB", written >> 20)
        if how == "spin-after-return":  # a thread left burning CPU between events
            threading.Thread(target=spin, daemon=True).start()
        self.kili.add_to_review(asset_ids=[asset_id])
'''

TENANT = r'''
import os

from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    """Active on two projects: what one project's runs leave in /tmp, the other's look for."""

    def on_submit(self, label, asset_id):
        seen = sorted(name for name in os.listdir("/tmp") if name.startswith("left-by-"))
        with open(f"/tmp/left-by-{self.project_id}", "w") as handle:
            handle.write(asset_id)
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"seen": seen}])
'''

BENIGN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("benign saw %s", asset_id)
        self.kili.send_back_to_queue(asset_ids=[asset_id])
'''

PROJECT = "proj-hostile-docker"


def deploy(service: Service, name: str, code: str | None, project: str = PROJECT) -> None:
    """Upload ``code`` as plugin ``name`` (None: already uploaded) and activate it on ``project``."""
    if code is not None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("main.py", code)
        response = service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": "true"},
                                      data=buffer.getvalue(), timeout=60)
        assert response.status_code == 202, response.text
        assert service.runtime.registry.wait(name, response.json()["version"], 600)["status"] == "active"
    assert service.admin.put(f"{service.url}/v1/plugins/{name}/projects/{project}", timeout=30).status_code == 200


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    running = start_service(tmp_path_factory.mktemp("hostile-container") / "data", "docker")
    for name, code in (("thief", THIEF), ("crasher", CRASHER), ("hog", HOG), ("benign", BENIGN)):
        deploy(running, name, code)
    deploy(running, "tenant", TENANT, "proj-tenant-a")
    deploy(running, "tenant", None, "proj-tenant-b")
    yield running
    stop_service(running)


def send(service: Service, event_id: str, response: dict, project: str = PROJECT) -> dict[str, dict]:
    """One event to the project's plugins; their runs once ended, by plugin."""
    event = {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": f"asset-{event_id}",
             "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response}}
    assert service.post_event(event).status_code == 202
    service.settle(300)
    listed: dict[str, str | int] = {"project_id": project, "limit": 10_000}
    runs = service.admin.get(f"{service.url}/v1/runs", params=listed, timeout=30).json()
    return {run["plugin"]: service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
            for run in runs if run["event_id"] == event_id}


def assert_benign_ran(runs: dict[str, dict]) -> None:
    benign = runs["benign"]
    assert benign["status"] == "succeeded" and [a["status"] for a in benign["actions"]] == ["applied"], benign


def test_a_thief_finds_no_secret_and_no_way_out(service: Service) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    runs = send(service, "thief-1", {"PORT": port, "CRASH": "none", "HOG": "none"})
    assert_benign_ran(runs)
    thief = runs["thief"]
    assert thief["status"] == "succeeded", thief["error"]
    [update] = [a["action"] for a in thief["actions"] if a["action"]["type"] == "update_asset"]
    report = update["json_metadata"]
    assert report["found"] == [], report["found"]
    assert report["scanned"] > 1000, report  # it did look: the image's Python, the SDK, its own code
    assert report["pids"] == ["1"], report  # only itself: no host process, no other plugin
    assert report["uid"] != 0
    assert report["environment"] == ["HOME", "HOSTNAME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE",
                                     "PYTHONIOENCODING"]
    assert all(outcome.startswith("refused") for outcome in report["network"].values()), report["network"]
    # The runtime's secrets appear nowhere the plugin's output went.
    stored = json.dumps(service.admin.get(f"{service.url}/v1/runs/{thief['id']}", timeout=30).json())
    for secret in ("test-token", "test-secret", "b2xkLXNlY3JldC0xMjM0NQ"):
        assert secret not in stored


#: How each crash reads on its run: (outcome, words of its error).
CRASHES = {
    "os-exit": ("error", "exited during the hook: exit code 3"),
    "sys-exit": ("error", "SystemExit"),
    "keyboard-interrupt": ("error", "KeyboardInterrupt"),
    "base-exception": ("error", "Escape: not an Exception"),
    "recursion": ("error", "RecursionError"),
    "segfault": ("error", "exited during the hook: exit code 139"),
    "close-channel": ("error", "exited during the hook"),
    "exit-from-thread": ("error", "exited during the hook: exit code 0"),
}


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_a_plugin_ending_its_process_fails_only_its_run(service: Service, how: str) -> None:
    outcome, words = CRASHES[how]
    runs = send(service, f"crash-{how}", {"CRASH": how, "PORT": 0, "HOG": "none"})
    assert_benign_ran(runs)
    crasher = runs["crasher"]
    assert (crasher["status"], crasher["outcome"]) == ("failed", outcome), (crasher["outcome"], crasher["error"])
    assert crasher["actions"] == [] and words in crasher["error"], crasher["error"]
    # Its next event gets a working container.
    after = send(service, f"after-{how}", {"CRASH": "none", "PORT": 0, "HOG": "none"})
    assert_benign_ran(after)
    assert after["crasher"]["status"] == "succeeded", after["crasher"]["error"]
    assert service.admin.get(f"{service.url}/healthz", timeout=30).status_code == 200


def test_sigkill_sent_by_the_plugin_to_itself_is_ignored_as_pid_1(service: Service) -> None:
    runs = send(service, "crash-sigkill-self", {"CRASH": "sigkill-self", "PORT": 0, "HOG": "none"})
    assert_benign_ran(runs)
    crasher = runs["crasher"]
    assert crasher["status"] == "succeeded", crasher["error"]
    assert [a["action"]["type"] for a in crasher["actions"]] == ["add_to_review"]



#: How each exhaustion reads on its run: (outcome, words of its error).
EXHAUSTIONS = {
    "memory": ("oom_killed", "ran out of memory (limit 512 MB)"),
    "threads": ("error", "RuntimeError: can't start new thread"),
    "fork-bomb": ("error", "BlockingIOError: [Errno 11] Resource temporarily unavailable"),
    "disk": ("error", "OSError: [Errno 28] No space left on device"),
}


@pytest.mark.parametrize("how", sorted(EXHAUSTIONS))
def test_a_plugin_exhausting_its_container_fails_only_its_own_run(service: Service, how: str) -> None:
    project = f"proj-hog-{how}"  # a container of its own: what one attack leaves does not meet the next
    for name in ("hog", "benign"):
        deploy(service, name, None, project)
    runs = send(service, f"hog-{how}", {"HOG": how}, project)
    assert_benign_ran(runs)
    hog = runs["hog"]
    outcome, words = EXHAUSTIONS[how]
    assert (hog["status"], hog["outcome"]) == ("failed", outcome), (hog["outcome"], hog["error"])
    assert hog["actions"] == [] and words in hog["error"], hog["error"]
    after = send(service, f"after-hog-{how}", {"HOG": "none"}, project)
    assert_benign_ran(after)
    if how == "fork-bomb" and after["hog"]["status"] == "failed":
        # Each forked copy of the plugin ended the hook with its own result: the copies' stray
        # results, still on the channel, end its next run (the plugin's doing), then a fresh container.
        assert (after["hog"]["outcome"], after["hog"]["error"]) == (
            "invalid_output", "unexpected 'result' message during the hook")
        after = send(service, f"after-hog-{how}-again", {"HOG": "none"}, project)
        assert_benign_ran(after)
    assert after["hog"]["status"] == "succeeded", after["hog"]["error"]
    assert service.admin.get(f"{service.url}/healthz", timeout=30).status_code == 200


def test_a_plugin_active_on_two_projects_sees_nothing_the_other_projects_runs_left(service: Service) -> None:
    first = send(service, "tenant-a-1", {}, "proj-tenant-a")["tenant"]
    second = send(service, "tenant-b-1", {}, "proj-tenant-b")["tenant"]
    again = send(service, "tenant-a-2", {}, "proj-tenant-a")["tenant"]
    seen = [[a["action"]["json_metadata"]["seen"] for a in run["actions"]] for run in (first, second, again)]
    # Its own project's file is there at its next event (a warm container), never the other's.
    assert seen == [[[]], [[]], [["left-by-proj-tenant-a"]]]


def cpu_seconds(container) -> float:
    return container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def test_a_thread_left_spinning_after_the_hook_costs_no_cpu_between_events(service: Service, docker_client) -> None:
    deploy(service, "hog", None, "proj-spin")
    [run] = send(service, "spin-1", {"HOG": "spin-after-return"}, "proj-spin").values()
    assert run["status"] == "succeeded", run["error"]
    [container] = docker_client.containers.list(filters={"name": "plugin-runtime-proj-spin"})
    start = cpu_seconds(container)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and cpu_seconds(container) - start < 1.0:
        time.sleep(0.5)
    # No event is running: the container should not have used a second of CPU.
    assert cpu_seconds(container) - start < 1.0


PLANTED = r'''
import os

MARKERS = {marker!r}


def plant(name):
    os.makedirs(MARKERS, exist_ok=True)
    with open(os.path.join(MARKERS, name), "w") as handle:
        handle.write(str(os.getpid()))


plant("{module}")
'''

PLANTED_MAIN = PLANTED + r'''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        plant("hook")
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def test_the_host_never_runs_a_plugins_code_at_upload_build_dry_run_or_run(service: Service, tmp_path) -> None:
    """Every file of the plugin that Python or pip would run if the host imported, installed or
    tested it writes a marker on the host's disk: none may appear there."""
    markers = tmp_path / "markers"
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "main.py").write_text(PLANTED_MAIN.format(marker=str(markers), module="main"))
    for module in ("setup", "helpers", "sitecustomize", "usercustomize", "conftest", "__init__"):
        (folder / f"{module}.py").write_text(PLANTED.format(marker=str(markers), module=module))
    (folder / "planted.pth").write_text(f"import os; os.makedirs({str(markers)!r}); open({str(markers / 'pth')!r}, 'w')\n")
    (folder / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setup"\n')
    (folder / "requirements.txt").write_text("requests\n")
    done = service.cli("plugins", "upload", str(folder), "--name", "planted")
    assert done.returncode == 0, done.stdout + done.stderr
    assert service.cli("plugins", "activate", "planted", "--project", "proj-planted").returncode == 0
    runs = send(service, "planted-1", {}, "proj-planted")
    assert runs["planted"]["status"] == "succeeded", runs["planted"]["error"]  # it ran, in its container
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "e1", "type": "onSubmit", "project_id": "p", "asset_id": "a",
                                  "label": {"id": "l", "jsonResponse": {}}}) + "\n")
    [replayed] = dry_run(folder, events, sandbox="docker")
    assert replayed["status"] == "ok", replayed["error"]
    assert not markers.exists(), sorted(p.name for p in markers.iterdir())
