"""A Kili project connected to a running service, end to end: ``connect kili`` registers the
webhook, Kili's webhook (as Kili documents its payload) runs the active plugin, whose reads are
answered by Kili and whose actions land there once; ``connections remove`` undoes it. Kili is
the FAKE Kili GraphQL API on 127.0.0.1 (its cloud cannot run here), driven through the real
``kili`` package; the runtime is real (HTTP, SQLite or PostgreSQL, process sandbox)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

BOT = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        [asset] = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])
        annotations = label["jsonResponse"].get("JOB_0", {}).get("annotations", [])
        if not annotations:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=["Nothing annotated"])
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[
            str({**asset["jsonMetadata"], "checked": True})])
        self.logger.info("vendor %s", asset["jsonMetadata"].get("vendor"))
'''


@pytest.fixture()
def service(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)


def eventually(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def connect(service: Service, fake, key: str | None = None) -> subprocess.CompletedProcess:
    """``connect kili`` as an admin runs it (its runtime options are --runtime-url/--runtime-token)."""
    return subprocess.run([sys.executable, "-m", "plugin_runtime", "connect", "kili", "--api-key", key or fake.api_key,
                           "--api-endpoint", fake.endpoint, "--project", "kili-proj", "--as", "proj-invoices",
                           "--runtime-url", service.url, "--runtime-token", service.runtime.token],
                          capture_output=True, text=True, timeout=300)


def kili_webhook(fake, run_id: str, label_id: str, asset_id: str) -> requests.Response:
    """What Kili posts for a submitted label (its create_webhook documentation)."""
    plugin = fake.plugins["plugin-runtime-proj-invoices"]
    label = fake.labels[label_id]
    body = {"eventType": "onSubmit", "logPayload": {"runId": run_id, "projectId": "kili-proj"},
            "payload": {"asset_id": asset_id, "label": {"id": label_id, "labelType": "DEFAULT",
                                                        "jsonResponse": json.dumps(label["jsonResponse"]),
                                                        "authorId": label["authorId"],
                                                        "createdAt": label["createdAt"]}}}
    return requests.post(plugin["webhookUrl"], json=body, headers={"Authorization": plugin["header"]}, timeout=30)


def test_a_connected_kili_project_runs_its_plugins_and_gets_their_actions(tmp_path: Path, service: Service,
                                                                          fake_kili) -> None:
    done = connect(service, fake_kili)
    assert done.returncode == 0, done.stderr
    assert "connected Kili project kili-proj (Invoices) as proj-invoices" in done.stdout
    assert fake_kili.api_key not in done.stdout + done.stderr
    plugin = fake_kili.plugins["plugin-runtime-proj-invoices"]
    assert plugin["webhookUrl"] == f"{service.url}/v1/connections/proj-invoices/webhook"
    assert plugin["projectIds"] == ["kili-proj"]
    listed = json.loads(service.cli("connections", "list", "--json", check=True).stdout)
    assert [(c["project_id"], c["kind"], c["config"]["project"]) for c in listed] == [
        ("proj-invoices", "kili", "kili-proj")]
    assert fake_kili.api_key not in json.dumps(listed)

    folder = tmp_path / "bot"
    folder.mkdir()
    (folder / "main.py").write_text(BOT)
    assert service.cli("plugins", "upload", str(folder)).returncode == 0
    service.cli("plugins", "activate", "bot", "--project", "proj-invoices", check=True)

    answer = kili_webhook(fake_kili, "run-77", "kili-label-1", "kili-asset-1")
    assert (answer.status_code, answer.json()) == (200, {"events": 1, "stored": 1})
    again = kili_webhook(fake_kili, "run-77", "kili-label-1", "kili-asset-1")  # Kili delivering twice
    assert again.json() == {"events": 1, "stored": 0}
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", timeout=30).json()
    assert (run["status"], run["event_id"]) == ("succeeded", "kili-run-77"), run
    asset = fake_kili.assets["kili-asset-1"]
    eventually(lambda: asset["jsonMetadata"].get("checked") is True)  # applied after the run, from the outbox
    eventually(lambda: asset["status"] == "ONGOING")
    assert asset["jsonMetadata"] == {"vendor": "ACME", "checked": True}
    assert [i["text"] for i in fake_kili.issues.values() if i["assetId"] == "kili-asset-1"] == ["Nothing annotated"]
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "bot"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == ["vendor ACME"]  # read live from Kili


def test_a_webhook_without_the_secret_is_refused_and_remove_undoes_the_connection(service: Service,
                                                                                 fake_kili) -> None:
    assert connect(service, fake_kili).returncode == 0
    url = fake_kili.plugins["plugin-runtime-proj-invoices"]["webhookUrl"]
    forged = requests.post(url, json={"eventType": "onSubmit", "logPayload": {"runId": "r", "projectId": "kili-proj"},
                                      "payload": {}}, headers={"Authorization": "guess"}, timeout=30)
    assert forged.status_code == 401 and service.count("events") == 0
    assert connect(service, fake_kili).returncode == 0  # again: the same webhook, a new secret
    assert list(fake_kili.plugins) == ["plugin-runtime-proj-invoices"]
    removed = service.cli("connections", "remove", "proj-invoices")
    assert removed.returncode == 0 and "proj-invoices disconnected" in removed.stdout, removed.stderr
    assert fake_kili.plugins == {}
    assert requests.post(url, json={}, headers={"Authorization": "x"}, timeout=30).status_code == 404


def test_a_refused_connect_says_why_and_keeps_nothing(service: Service, fake_kili) -> None:
    done = connect(service, fake_kili, key="wrong")
    assert done.returncode == 1 and "Kili refused the API key" in done.stderr
    assert json.loads(service.cli("connections", "list", "--json", check=True).stdout) == []
    assert fake_kili.plugins == {}
