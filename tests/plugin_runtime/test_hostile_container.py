"""Hostile plugins in the service's Docker sandbox, end to end (upload, activation, signed
webhooks): a thief looking for the runtime's secrets and a way out, and a plugin ending its
own process every way Python allows. Each is contained: its run is recorded with a clear
outcome, nothing secret reaches it, the other plugin of the project goes on, the service stays
healthy."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

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

BENIGN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("benign saw %s", asset_id)
        self.kili.send_back_to_queue(asset_ids=[asset_id])
'''

PROJECT = "proj-hostile-docker"


def deploy(service: Service, name: str, code: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    response = service.admin.post(f"{service.url}/v1/plugins/{name}/versions", params={"create": "true"},
                                  data=buffer.getvalue(), timeout=60)
    assert response.status_code == 202, response.text
    assert service.runtime.registry.wait(name, response.json()["version"], 600)["status"] == "active"
    assert service.admin.put(f"{service.url}/v1/plugins/{name}/projects/{PROJECT}", timeout=30).status_code == 200


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    running = start_service(tmp_path_factory.mktemp("hostile-container") / "data", "docker")
    for name, code in (("thief", THIEF), ("crasher", CRASHER), ("benign", BENIGN)):
        deploy(running, name, code)
    yield running
    stop_service(running)


def send(service: Service, event_id: str, response: dict) -> dict[str, dict]:
    """One event to the project's plugins; their runs once ended, by plugin."""
    event = {"id": event_id, "type": "onSubmit", "project_id": PROJECT, "asset_id": f"asset-{event_id}",
             "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response}}
    assert service.post_event(event).status_code == 202
    service.settle(300)
    runs = service.admin.get(f"{service.url}/v1/runs", params={"project_id": PROJECT, "limit": 10_000},
                             timeout=30).json()
    return {run["plugin"]: service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
            for run in runs if run["event_id"] == event_id}


def assert_benign_ran(runs: dict[str, dict]) -> None:
    benign = runs["benign"]
    assert benign["status"] == "succeeded" and [a["status"] for a in benign["actions"]] == ["applied"], benign


def test_a_thief_finds_no_secret_and_no_way_out(service: Service) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    runs = send(service, "thief-1", {"PORT": port, "CRASH": "none"})
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
    runs = send(service, f"crash-{how}", {"CRASH": how, "PORT": 0})
    assert_benign_ran(runs)
    crasher = runs["crasher"]
    assert (crasher["status"], crasher["outcome"]) == ("failed", outcome), (crasher["outcome"], crasher["error"])
    assert crasher["actions"] == [] and words in crasher["error"], crasher["error"]
    # Its next event gets a working container.
    after = send(service, f"after-{how}", {"CRASH": "none", "PORT": 0})
    assert_benign_ran(after)
    assert after["crasher"]["status"] == "succeeded", after["crasher"]["error"]
    assert service.admin.get(f"{service.url}/healthz", timeout=30).status_code == 200


def test_sigkill_sent_by_the_plugin_to_itself_is_ignored_as_pid_1(service: Service) -> None:
    runs = send(service, "crash-sigkill-self", {"CRASH": "sigkill-self", "PORT": 0})
    assert_benign_ran(runs)
    crasher = runs["crasher"]
    assert crasher["status"] == "succeeded", crasher["error"]
    assert [a["action"]["type"] for a in crasher["actions"]] == ["add_to_review"]

