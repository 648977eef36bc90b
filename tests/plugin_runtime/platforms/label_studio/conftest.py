"""A real Label Studio for the tests, on 127.0.0.1 and a free port, in a temporary data
directory, from the cached virtual environment ``scripts/services/label-studio.sh`` makes.

Users are made by Label Studio's own command line before it starts (its REST API makes no
user with a token): the runtime's bot user (``label-studio init``, which also creates the
organization with legacy tokens enabled) and a person who annotates (``start`` creates it from
``LABEL_STUDIO_USERNAME``/``_PASSWORD``/``_USER_TOKEN``). Everything else goes through its
REST API. Telemetry, Sentry and version checks are off: it makes no traffic but to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.plugin_runtime.service_fixtures import free_port

VENV = Path(os.environ.get("PLUGIN_RUNTIME_CACHE") or Path.home() / ".cache" / "plugin-runtime") / "label-studio" / "venv"
BOT = ("bot@plugin-runtime.test", "bot-password-1", "bot0token0for0the0runtime0000000000000001")
PERSON = ("person@plugin-runtime.test", "person-password-1", "person0token0annotates000000000000000002")
#: The first start migrates a fresh database: about a minute, more on a busy machine.
START_TIMEOUT_S = 600.0


def _environment(data: Path, ssrf: bool) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "DJANGO_DB": "sqlite",
            "SSRF_PROTECTION_ENABLED": "true" if ssrf else "false", "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
            "SECRET_KEY": "tests-only-secret-key", "LOG_LEVEL": "WARNING", "NO_PROXY": "127.0.0.1,localhost"}


@dataclass
class LabelStudio:
    url: str
    process: subprocess.Popen
    data: Path
    log: Path

    def session(self, token: str) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Token {token}"
        return session

    def call(self, method: str, path: str, token: str = PERSON[2], **kwargs: Any) -> Any:
        response = self.session(token).request(method, self.url + path, timeout=60, **kwargs)
        assert response.status_code < 400, (method, path, response.status_code, response.text[:500])
        return response.json() if response.content else None

    def project(self, title: str, config: str, tasks: list[dict[str, Any]]) -> tuple[int, list[int]]:
        """A project with these tasks (``data``), made by the person; its id and task ids."""
        project = self.call("POST", "/api/projects/", json={"title": title, "label_config": config})
        self.call("POST", f"/api/projects/{project['id']}/import", json=tasks)
        found = self.call("GET", "/api/tasks/", params={"project": project["id"], "page_size": 10_000})["tasks"]
        return project["id"], sorted(task["id"] for task in found)

    def annotate(self, task_id: int, result: list[dict[str, Any]], token: str = PERSON[2], **extra: Any) -> dict:
        """An annotation saved as a labeler saves it (by default the person's)."""
        return self.call("POST", f"/api/tasks/{task_id}/annotations/", token=token,
                         json={"result": result, "lead_time": 4.2, **extra})

    def task(self, task_id: int) -> dict[str, Any]:
        return self.call("GET", f"/api/tasks/{task_id}/")

    def webhooks(self, project: int) -> list[dict[str, Any]]:
        return self.call("GET", "/api/webhooks/", params={"project": project})


def _label_studio() -> Path:
    binary = VENV / "bin" / "label-studio"
    if not binary.exists():
        pytest.skip(f"Label Studio is not installed in {VENV}: run scripts/services/label-studio.sh")
    return binary


def _start(binary: Path, data: Path, env: dict[str, str], log: Path) -> LabelStudio:
    port = free_port()
    person = {"LABEL_STUDIO_USERNAME": PERSON[0], "LABEL_STUDIO_PASSWORD": PERSON[1],
              "LABEL_STUDIO_USER_TOKEN": PERSON[2]}
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([str(binary), "start", "--internal-host", "127.0.0.1", "--port", str(port),
                                "--no-browser"], env={**env, **person}, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True, cwd=data)
    handle.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, f"Label Studio exited ({process.returncode}): {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"Label Studio did not answer within {START_TIMEOUT_S} s: {log}"
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                whoami = requests.get(f"{url}/api/current-user/whoami", timeout=5,
                                      headers={"Authorization": f"Token {PERSON[2]}"})
                if whoami.status_code == 200:
                    break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return LabelStudio(url, process, data, log)


def _stop(studio: LabelStudio) -> None:
    if studio.process.poll() is None:
        os.killpg(studio.process.pid, signal.SIGTERM)
        try:
            studio.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(studio.process.pid, signal.SIGKILL)
            studio.process.wait(timeout=30)


@pytest.fixture(scope="session")
def label_studio_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Label Studio database holding the bot user (its organization has legacy
    tokens enabled), to start one or more Label Studios from."""
    binary = _label_studio()
    data = tmp_path_factory.mktemp("label-studio-template")
    env = _environment(data, ssrf=False)
    init = subprocess.run([str(binary), "init", "--quiet", "--username", BOT[0], "--password", BOT[1],
                           "--user-token", BOT[2], "--enable-legacy-api-token"], env=env, cwd=data,
                          capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    return data


@pytest.fixture(scope="session")
def label_studio(label_studio_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """Label Studio with SSRF protection off (so it may call the runtime on 127.0.0.1)."""
    data = tmp_path_factory.mktemp("label-studio")
    shutil.copytree(label_studio_data, data, dirs_exist_ok=True)
    studio = _start(_label_studio(), data, _environment(data, ssrf=False), data / "label-studio.log")
    yield studio
    _stop(studio)


@pytest.fixture(scope="session")
def guarded_label_studio(label_studio_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """Label Studio as it ships: SSRF protection on (it refuses webhooks to local addresses)."""
    data = tmp_path_factory.mktemp("label-studio-guarded")
    shutil.copytree(label_studio_data, data, dirs_exist_ok=True)
    studio = _start(_label_studio(), data, _environment(data, ssrf=True), data / "label-studio.log")
    yield studio
    _stop(studio)
