"""The Docker engine stopped for a few seconds and started again: nothing is lost or stalled,
and nothing the engine did is blamed on a plugin.

A run whose container goes away with its engine is an infrastructure failure (retried, then
dead and redeliverable), not the plugin's crash; a warm container that died with its engine is
replaced at the next event; containers the engine could not remove while it was away are
removed once it is back. Every test here runs against a private dockerd of its own (started
from this module, on its own socket, data and exec roots), never the shared engine other
tests use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from plugin_runtime.base_image import DEFAULT_BASE_IMAGE
from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.docker import LABEL, DockerSandbox
from plugin_runtime.source import load_source
from plugin_sdk.testing import make_event, make_label
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Marks that its hook started (polled through the engine), sleeps as its label says, then
#: opens one issue named after its label.
PLUGIN = """
import pathlib
import time

from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        pathlib.Path("/tmp/in-hook").touch()
        time.sleep(float(label["jsonResponse"]["SLEEP"]["text"]))
        self.kili.create_issues(self.project_id, [label["id"]], text_array=[label["id"]])
"""
DOCKERD_FLAGS = ["--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"]


class Engine:
    """A private dockerd in ``root``: started, killed and started again on the same data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        # A pid file whose process is gone (killed with the engine) would stop the next start.
        for stale in (self.root / "docker.pid", self.root / "exec" / "containerd" / "containerd.pid"):
            if stale.exists() and not _live(stale.read_text().strip()):
                stale.unlink()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["dockerd", "--host", self.host, "--data-root", str(self.root / "data"),
                 "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"), *DOCKERD_FLAGS],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private dockerd did not start; its log ends with:\n{self.tail()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        import docker

        try:
            client = docker.DockerClient(base_url=self.host, timeout=5)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except (docker.errors.DockerException, requests.RequestException):
            return False
        finally:
            client.close()

    def stop(self, how: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Stop the engine (SIGKILL: at once, its containers orphaned; SIGTERM: it stops them)
        and wait until it is gone."""
        assert self.process is not None
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


def _live(pid: str) -> bool:
    """Whether ``pid`` is a running process (not a zombie left for init to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _unmount_under(root: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(root) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A private dockerd holding the base image; stopped and removed at the end."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("a second dockerd cannot start here: it needs root and dockerd and docker on PATH")
    # Short: a unix socket's path has a limit of 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="pr-engine-", dir="/tmp"))
    private = Engine(root)
    try:
        try:
            private.start()
        except RuntimeError as error:
            pytest.skip(f"a second dockerd cannot start here: {error}")
        save = subprocess.Popen(["docker", "save", DEFAULT_BASE_IMAGE], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", private.host, "load"], stdin=save.stdout, capture_output=True,
                                timeout=600, check=False)
        assert save.wait(timeout=600) == 0 and loaded.returncode == 0, (
            f"loading {DEFAULT_BASE_IMAGE} into the private engine failed (build it with "
            f"plugin_runtime/scripts/base-image.sh): {loaded.stderr.decode(errors='replace')}")
        yield private
    finally:
        if private.process is not None and private.process.poll() is None:
            private.stop(signal.SIGTERM)
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def on_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The private engine, running, and the runtime pointed at it (``DOCKER_HOST``)."""
    if engine.process is None or engine.process.poll() is not None:
        engine.start()
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    return engine


@pytest.fixture
def sandbox(on_engine: Engine, tmp_path: Path) -> Iterator[tuple[DockerSandbox, Any]]:
    """The plugin built in the private engine, and a sandbox on it (closed at the end); and a
    client of that engine."""
    from plugin_runtime.builder import Builder

    client = on_engine.client()
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "main.py").write_text(textwrap.dedent(PLUGIN))
    built = Builder(client, DEFAULT_BASE_IMAGE).build(load_source(folder), f"plugin-runtime-test:engine-{uuid.uuid4().hex[:8]}")
    box = DockerSandbox(client, built.image, Limits(timeout_s=60))
    yield box, client
    box.close()
    client.close()


def submit(event_id: str, project: str = "proj-engine", sleep: float = 0.0) -> dict[str, Any]:
    return make_event(id=event_id, project_id=project, asset_id=f"asset-{event_id}",
                      label=make_label({"SLEEP": {"text": str(sleep)}}, id=f"label-{event_id}"))


def sandbox_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": LABEL})


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def in_hook(client) -> bool:
    for container in client.containers.list(filters={"label": LABEL}):
        with contextlib.suppress(Exception):  # exited meanwhile
            if container.exec_run(["test", "-e", "/tmp/in-hook"]).exit_code == 0:
                return True
    return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_run_whose_engine_goes_away_is_an_infrastructure_failure_not_the_plugins(sandbox, on_engine, how) -> None:
    box, client = sandbox
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = box.run(submit("evt-inflight", sleep=30))
        except Exception as error:
            outcome["error"] = error

    runner = threading.Thread(target=run)
    runner.start()
    wait_until(lambda: in_hook(client), 60, "the hook to start")
    on_engine.stop(how)
    runner.join(timeout=90)
    assert not runner.is_alive(), "the run did not end when its engine went away"
    assert "result" not in outcome, f"reported as the plugin's doing: {outcome.get('result')}"
    assert isinstance(outcome["error"], SandboxUnavailable)
    assert "the plugin's sandbox was lost during the event" in str(outcome["error"])

    on_engine.start()
    result = box.run(submit("evt-after"))  # a new container, on the engine that is back
    assert (result.status, [a.type for a in result.actions]) == ("ok", ["create_issue"])
    assert box.cold_starts == 2


def test_a_warm_container_lost_with_its_engine_is_replaced_and_removed(sandbox, on_engine) -> None:
    box, client = sandbox
    assert box.run(submit("evt-warm")).status == "ok"
    [first] = sandbox_containers(client)

    on_engine.stop(signal.SIGKILL)
    with pytest.raises(SandboxUnavailable, match="cannot create a container"):
        box.run(submit("evt-engine-down"))  # the engine is away: nothing runs, nothing is blamed
    on_engine.start()

    result = box.run(submit("evt-engine-back"))
    assert (result.status, result.error, len(result.actions)) == ("ok", None, 1)
    assert box.cold_starts == 2
    # The container killed with the engine, which could not be removed then, is gone now.
    [second] = sandbox_containers(client)
    assert second.id != first.id


# The service: a burst, the engine away for a few seconds in its middle ------------------

PROJECTS = [f"proj-{n}" for n in range(4)]
BURST = 160


def _runs(service: Service) -> list[dict[str, Any]]:
    response = service.admin.get(f"{service.url}/v1/runs", params={"limit": 10_000}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _count(service: Service, where: str) -> int:
    return service.runtime.store.read().execute(f"SELECT COUNT(*) FROM runs WHERE {where}").fetchone()[0]


def _settle(service: Service, timeout: float = 300) -> None:
    wait_until(lambda: service.runtime.pending_runs() == 0, timeout, "every run to end")


def _issues(service: Service) -> list[str]:
    texts = []
    for project in PROJECTS:
        for asset in service.admin.get(f"{service.url}/v1/projects/{project}/assets", timeout=60).json():
            texts += [issue["text"] for issue in asset["issues"]]
    return texts


def test_a_burst_survives_its_engine_stopping_and_starting_again(on_engine, tmp_path: Path) -> None:
    # Two attempts a short backoff apart: runs caught by the outage end dead, not only late.
    service = start_service(tmp_path / "data", "docker", max_attempts=2, retry_base_s=0.25, concurrency=4)
    try:
        service.deploy("survivor", textwrap.dedent(PLUGIN), project=PROJECTS[0])
        for project in PROJECTS[1:]:
            assert service.admin.put(f"{service.url}/v1/plugins/survivor/projects/{project}",
                                     timeout=60).status_code == 200
        events = [submit(f"evt-{i:03d}", PROJECTS[i % len(PROJECTS)], sleep=0.05) for i in range(BURST)]
        refused: list[str] = []

        def send() -> None:
            for event in events:
                if service.post_event(event).status_code != 202:
                    refused.append(event["id"])

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: _count(service, "status = 'succeeded'") >= 20, 120, "the burst to get going")
        on_engine.stop(signal.SIGKILL)
        stopped = time.monotonic()
        # Away for a few seconds, and at least until the runtime met the outage.
        wait_until(lambda: time.monotonic() - stopped >= 3 and _count(service, "error IS NOT NULL"),
                   60, "a run to fail on the missing engine")
        on_engine.start()
        sender.join(timeout=300)
        assert refused == [] and not sender.is_alive()
        _settle(service)

        runs = _runs(service)
        assert len(runs) == BURST
        assert {r["status"] for r in runs} <= {"succeeded", "dead"}, json.dumps(
            [r for r in runs if r["status"] not in ("succeeded", "dead")], indent=1)[:4000]
        dead = [r for r in runs if r["status"] == "dead"]
        assert all(r["outcome"] == "infrastructure" for r in dead)
        assert dead or any(r["attempts"] > 1 for r in runs)  # the outage did meet runs

        for number, run in enumerate(dead):
            if number == 0:
                done = service.cli("runs", "retry", run["id"])
                assert done.returncode == 0 and f"{run['id']} queued again" in done.stdout, done.stderr
            else:
                retried = service.admin.post(f"{service.url}/v1/runs/{run['id']}/retry", timeout=60)
                assert retried.status_code == 200, retried.text
        _settle(service)

        runs = _runs(service)
        assert {r["status"] for r in runs} == {"succeeded"}
        assert sorted(_issues(service)) == sorted(f"label-{e['id']}" for e in events)  # each effect once
    finally:
        stop_service(service)
    client = on_engine.client()
    try:
        assert sandbox_containers(client) == []  # those killed with the engine too
    finally:
        client.close()
