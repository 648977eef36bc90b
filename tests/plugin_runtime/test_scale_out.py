"""A runtime on several processes over one PostgreSQL, as real processes: two ``serve`` (API
and intake only) and three ``worker``, under kills and a database restart."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from plugin_runtime.intake.webhooks import headers
from tests.plugin_runtime.service_fixtures import start_service, stop_service
from tests.plugin_runtime.store import pg_service

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "scale-token"
SECRET = "scale-secret"
PROJECTS = [f"proj-{n}" for n in range(6)]
ASSETS_PER_PROJECT = 4
#: Each run reads the asset's list of seen numbers and writes it back with its own appended,
#: and opens an issue: an effect applied twice, lost or out of order shows in the list.
RECORDER = """
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        [asset] = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])
        seen = (asset.get("jsonMetadata") or {}).get("seen", [])
        number = label["jsonResponse"]["n"]
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"seen": seen + [number]}])
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=[f"n={number}"])
"""


@dataclass
class Cluster:
    database_url: str
    root: Path
    serves: list[tuple[subprocess.Popen, str]]
    workers: dict[str, subprocess.Popen]
    sandbox: str = "process"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PLUGIN_RUNTIME_TOKEN": TOKEN, "PLUGIN_RUNTIME_WEBHOOK_SECRET": SECRET,
                "PLUGIN_RUNTIME_DATABASE_URL": self.database_url, "PLUGIN_RUNTIME_DEFAULT_PACKAGES": ""}

    def start_serve(self, number: int) -> None:
        port = pg_service.free_port()
        log = open(self.root / f"serve-{number}.log", "ab")  # noqa: SIM115 - the process's, closed with it
        process = subprocess.Popen(
            [sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", self.sandbox, "--workers", "0",
             "--port", str(port), "--data-dir", str(self.root / f"serve-{number}")],
            env=self.env(), stdout=log, stderr=log, cwd=REPO)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, f"serve {number} did not start")
        self.serves.append((process, url))

    def start_worker(self, name: str) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the process's, closed with it
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "plugin_runtime", "worker", "--sandbox", self.sandbox, "--concurrency", "2",
             "--name", name], env=self.env(), stdout=log, stderr=log, cwd=REPO)

    def admin(self, method: str, path: str, serve: int = 0, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.serves[serve][1]}{path}", timeout=60,
                                headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(query, params).fetchall()

    def stop(self) -> None:
        for process in [p for p, _ in self.serves] + list(self.workers.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [p for p, _ in self.serves] + list(self.workers.values()):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.fixture
def own_postgres(postgres_server) -> Iterator[pg_service.PostgresServer]:
    """A PostgreSQL of the test's own (after the session's: skipped likewise): it is restarted
    under load, which the session's other tests must not see."""
    server = pg_service.PostgresServer()
    yield server
    server.close()


@pytest.fixture
def cluster(own_postgres, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """``@pytest.mark.docker`` tests get Docker sandboxes, the others process ones."""
    sandbox = "docker" if request.node.get_closest_marker("docker") else "process"
    if sandbox == "docker":
        request.getfixturevalue("docker_client")
    running = Cluster(own_postgres.database(), tmp_path, [], {}, sandbox)
    upgrade = subprocess.run([sys.executable, "-m", "plugin_runtime", "db", "upgrade"], env=running.env(),
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert upgrade.returncode == 0, upgrade.stderr
    again = subprocess.run([sys.executable, "-m", "plugin_runtime", "db", "upgrade"], env=running.env(),
                           capture_output=True, text=True, timeout=120, cwd=REPO)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr
    try:
        running.start_serve(0)
        running.start_serve(1)
        for name in ("worker-a", "worker-b", "worker-c"):
            running.start_worker(name)
        yield running
    finally:
        running.stop()


def deploy(cluster: Cluster, code: str, projects: list[str], name: str = "recorder", create: bool = True) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    response = cluster.admin("POST", f"/v1/plugins/{name}/versions", params={"create": str(create).lower()},
                             data=buffer.getvalue())
    assert response.status_code == 202, response.text
    version = response.json()["version"]
    wait_for(lambda: cluster.admin("GET", f"/v1/plugins/{name}/versions/{version}").json()["status"] == "active",
             120, "the plugin was not built")
    for project in projects:
        assert cluster.admin("PUT", f"/v1/plugins/{name}/projects/{project}").status_code == 200
    return version


def event(number: int, project: str, asset: str, n: int) -> dict[str, Any]:
    return {"id": f"evt-{number:05d}", "type": "onSubmit", "project_id": project, "asset_id": asset,
            "label": {"id": f"label-{number:05d}", "jsonResponse": {"n": n}, "authorId": "annotator"}}


def send(cluster: Cluster, body: dict[str, Any], first: int, timeout: float = 120) -> dict[str, Any]:
    """As a webhook sender behind a load balancer: to one intake, else the other, again until
    one acknowledges (2xx); 429 and 503 are waited out."""
    data = json.dumps(body).encode()
    deadline = time.monotonic() + timeout
    attempt = first
    while True:
        url = cluster.serves[attempt % len(cluster.serves)][1]
        try:
            response = requests.post(f"{url}/v1/events", data=data, headers=headers(SECRET, body["id"], data), timeout=30)
            if response.status_code in (200, 202):
                return response.json()
            assert response.status_code in (429, 503), response.text
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"no intake acknowledged {body['id']}"
        attempt += 1
        time.sleep(0.05)


def test_two_intakes_three_workers_kills_and_a_database_restart_keep_every_promise(cluster, own_postgres) -> None:
    deploy(cluster, RECORDER, PROJECTS)
    counts: Counter[str] = Counter()
    events = []
    for number in range(600):
        project = PROJECTS[number % len(PROJECTS)]
        asset = f"{project}-asset-{(number // len(PROJECTS)) % ASSETS_PER_PROJECT}"
        events.append(event(number, project, asset, counts[asset]))
        counts[asset] += 1

    for number, body in enumerate(events):
        if number == 200:  # a worker dies holding its claims: they come back after the lease
            wait_for(lambda: cluster.sql("SELECT COUNT(*) FROM runs WHERE worker = 'worker-a'")[0][0] > 0, 60,
                     "worker-a never ran anything")
            cluster.workers["worker-a"].kill()
        if number == 300:  # an intake dies: what it acknowledged is kept, the rest is resent
            cluster.serves[1][0].kill()
        if number == 400:  # the database restarts under everyone
            own_postgres.restart()
        send(cluster, body, number)
    # Resent after the intake died: each id is answered as a duplicate, stored once.
    assert send(cluster, events[250], 0) == {"id": events[250]["id"], "duplicate": True}

    wait_for(lambda: cluster.sql("SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running')")[0][0] == 0,
             300, "runs still queued")
    runs = cluster.sql("SELECT status, worker, attempts FROM runs")
    failed = cluster.sql("SELECT id, outcome, error FROM runs WHERE status <> 'succeeded' LIMIT 3")
    assert len(runs) == 600 and not failed, failed
    assert len({worker for _, worker, _ in runs}) > 1
    # Every event's effects exactly once, and each asset's in event order.
    for asset, metadata in cluster.sql("SELECT id, json_metadata FROM assets"):
        assert json.loads(metadata)["seen"] == list(range(counts[asset])), asset
    issues = cluster.sql("SELECT asset_id, text FROM issues")
    assert len(issues) == 600 and len(set(issues)) == 600
    assert cluster.sql("SELECT COUNT(*) FROM events")[0][0] == 600
    assert cluster.serves[0][0].poll() is None, "the intake left running exited"
    for name in ("worker-b", "worker-c"):
        assert cluster.workers[name].poll() is None, f"{name} exited"


@pytest.mark.docker
def test_changes_made_through_one_intake_are_seen_by_every_worker_at_once(cluster) -> None:
    """Docker sandboxes: rollback needs built images (the workers use the serve's, here)."""
    version = deploy(cluster, RECORDER, ["proj-a"])

    def ran(event_id: str) -> list[tuple]:
        return cluster.sql("SELECT version, status FROM runs WHERE event_id = %s", event_id)

    send(cluster, event(1, "proj-a", "asset-1", 0), 1)
    wait_for(lambda: ran("evt-00001") == [(version, "succeeded")], 10, "the activation was not seen")
    second = deploy(cluster, RECORDER.replace("n={number}", "v2 n={number}"), [], create=False)
    send(cluster, event(2, "proj-a", "asset-1", 1), 1)
    wait_for(lambda: ran("evt-00002") == [(second, "succeeded")], 10, "the upload was not seen")
    assert cluster.admin("POST", "/v1/plugins/recorder/rollback", json={"version": version}).status_code == 200
    send(cluster, event(3, "proj-a", "asset-1", 2), 1)
    wait_for(lambda: ran("evt-00003") == [(version, "succeeded")], 10, "the rollback was not seen")
    assert cluster.admin("DELETE", "/v1/plugins/recorder/projects/proj-a").status_code == 200
    send(cluster, event(4, "proj-a", "asset-1", 3), 1)
    assert ran("evt-00004") == []  # stored after the deactivation was acknowledged: no run
    listed = cluster.admin("GET", "/v1/runs", serve=1).json()
    assert {run["worker"] for run in listed} <= {"worker-a", "worker-b", "worker-c"} and len(listed) == 3


def test_backpressure_counts_the_shared_queue_not_one_intakes(postgres_server, tmp_path: Path) -> None:
    """Two intakes, no worker: the runs one queued fill the project for the other."""
    url = postgres_server.database()
    first = start_service(tmp_path / "a", "process", database_url=url, workers=0, max_queue_per_project=3)
    second = start_service(tmp_path / "b", "process", database_url=url, workers=0, max_queue_per_project=3)
    try:
        first.deploy("bot", RECORDER, project="proj-full")
        for number in range(3):
            assert first.post_event(event(number, "proj-full", "asset-1", number)).status_code == 202
        refused = second.post_event(event(3, "proj-full", "asset-1", 3))
        assert refused.status_code == 429 and refused.headers["Retry-After"]
        assert second.post_event(event(4, "proj-other", "asset-2", 0)).status_code == 202  # others still get in
        resent = first.post_event(event(4, "proj-other", "asset-2", 0))  # stored by the other intake
        assert resent.status_code == 200 and resent.json() == {"id": "evt-00004", "duplicate": True}
    finally:
        stop_service(second)
        stop_service(first)


def test_a_worker_without_a_database_url_says_what_to_give() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PLUGIN_RUNTIME_DATABASE_URL"}
    missing = subprocess.run([sys.executable, "-m", "plugin_runtime", "worker"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=REPO)
    assert missing.returncode == 2 and "--database-url" in missing.stderr
    wrong = subprocess.run([sys.executable, "-m", "plugin_runtime", "worker", "--database-url", "mysql://db/x"],
                           env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert wrong.returncode == 1 and "postgresql://user:password@host:port/database" in wrong.stderr


@pytest.mark.docker
def test_a_worker_builds_the_image_its_host_lacks_from_the_stored_archive(cluster, docker_client) -> None:
    """As on a new host: the serve's build is gone, the worker builds the version again."""
    import docker.errors

    version = deploy(cluster, RECORDER, ["proj-new-host"])
    image = cluster.admin("GET", f"/v1/plugins/recorder/versions/{version}").json()["image"]
    docker_client.images.remove(image, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image)
    send(cluster, event(1, "proj-new-host", "asset-1", 0), 0)
    wait_for(lambda: cluster.sql("SELECT status FROM runs WHERE event_id = 'evt-00001'") == [("succeeded",)], 600,
             "the worker did not build and run the version")
    assert docker_client.images.get(image).id
