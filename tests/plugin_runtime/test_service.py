"""End to end over HTTP on 127.0.0.1 with the real Docker sandbox: upload, activate, signed
events in, actions applied, runs and logs readable, bad requests refused with nothing stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from plugin_runtime.webhooks import headers
from tests.plugin_runtime.service_fixtures import INVOICE, Service, start_service, stop_service

pytestmark = pytest.mark.docker

EVENTS = [json.loads(line) for line in (INVOICE / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    running = start_service(tmp_path_factory.mktemp("service"), "docker")
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def invoice(service: Service) -> Service:
    upload = service.cli("plugins", "upload", str(INVOICE), "--name", "invoice-qa")
    assert upload.returncode == 0, upload.stderr
    assert "invoice-qa v1 deployed: the live version" in upload.stdout
    assert "dropped: README.md" in upload.stderr  # the user is told which files were not kept
    activate = service.cli("plugins", "activate", "invoice-qa", "--project", "proj-invoices")
    assert activate.returncode == 0, activate.stderr
    for event in EVENTS:
        response = service.post_event(event)
        assert response.status_code == 202, response.text
        service.settle()
    return service


def test_events_apply_the_bots_actions_to_the_embedded_platform(invoice: Service) -> None:
    shown = invoice.cli("assets", "show", "asset-04", "--project", "proj-invoices", "--json")
    assert shown.returncode == 0, shown.stderr
    asset = json.loads(shown.stdout)
    assert {"id", "external_id", "status", "json_metadata", "priority", "labels", "issues"} <= set(asset)
    assert asset["status"] == "ONGOING"  # sent back to the queue
    assert asset["json_metadata"] == {"supplier": "ACME", "batch": "2026-11", "accuracy": 0.0}
    assert sorted(i["objectMid"] for i in asset["issues"]) == ["20261120090401-iban", "20261120090402-cur"]
    good = json.loads(invoice.cli("assets", "show", "asset-06", "--project", "proj-invoices", "--json").stdout)
    assert good["status"] == "LABELED" and good["issues"] == [] and good["json_metadata"]["accuracy"] == 100.0


def test_runs_and_logs_are_readable(invoice: Service) -> None:
    listed = invoice.cli("runs", "list", "--plugin", "invoice-qa", "--json")
    runs = json.loads(listed.stdout)
    assert len(runs) == 7  # 8 events, the review is not subscribed
    assert all({"id", "event_id", "asset_id", "plugin", "version", "status", "outcome"} <= set(r) for r in runs)
    assert {r["status"] for r in runs} == {"succeeded"}
    run = next(r for r in runs if r["event_id"] == "evt-0002")
    shown = json.loads(invoice.cli("runs", "show", run["id"], "--json").stdout)
    assert [a["action"]["type"] for a in shown["actions"]] == ["create_issue", "send_back_to_queue", "update_asset"]
    assert all(a["status"] == "applied" for a in shown["actions"])
    assert shown["logs"][0]["message"].startswith("Asset asset-02: 1 issue(s)")
    logs = invoice.cli("plugins", "logs", "invoice-qa", "--project", "proj-invoices")
    assert "Asset asset-05: 1 issue(s), accuracy 50.0%" in logs.stdout


def test_a_stored_event_id_is_answered_as_duplicate_and_not_processed_again(invoice: Service) -> None:
    before = invoice.count("runs")
    response = invoice.post_event(EVENTS[1])
    assert response.status_code == 200 and response.json() == {"id": "evt-0002", "duplicate": True}
    invoice.settle()
    assert invoice.count("runs") == before


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "stale", "malformed-json", "invalid-event", "not-object"])
def test_bad_webhooks_are_refused_and_store_nothing(invoice: Service, case: str) -> None:
    events_before, runs_before = invoice.count("events"), invoice.count("runs")
    event = {**EVENTS[0], "id": f"evt-bad-{case}"}
    body = json.dumps(event).encode()
    if case == "unsigned":
        import requests

        response = requests.post(f"{invoice.url}/v1/events", data=body, timeout=10)
        expected = 401
    elif case == "wrong-secret":
        response = invoice.post_event(event, secret="not-the-secret")
        expected = 401
    elif case == "stale":
        import requests

        old = headers("test-secret", event["id"], body, timestamp=int(time.time()) - 3600)
        response = requests.post(f"{invoice.url}/v1/events", data=body, headers=old, timeout=10)
        expected = 401
    elif case == "malformed-json":
        response = invoice.post_event(b'{"id": "evt-x", "type": ')
        expected = 422
    elif case == "invalid-event":
        response = invoice.post_event({"id": "evt-y", "type": "onSubmit", "project_id": "p"})
        expected = 422
    else:
        response = invoice.post_event(b"[1, 2, 3]")
        expected = 422
    assert response.status_code == expected, response.text
    assert response.json()["detail"]
    assert invoice.count("events") == events_before and invoice.count("runs") == runs_before


def test_the_rotated_secret_is_accepted_too(invoice: Service) -> None:
    event = {**EVENTS[5], "id": "evt-rotated"}
    response = invoice.post_event(event, secret="whsec_b2xkLXNlY3JldC0xMjM0NQ==")
    assert response.status_code == 202, response.text
    invoice.settle()


def test_admin_endpoints_need_the_token(invoice: Service) -> None:
    import requests

    assert requests.get(f"{invoice.url}/v1/plugins", timeout=10).status_code == 401
    wrong = requests.get(f"{invoice.url}/v1/plugins", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert requests.get(f"{invoice.url}/healthz", timeout=10).status_code == 200


def test_an_unknown_project_and_asset_are_created_from_the_event_context(invoice: Service) -> None:
    invoice.cli("plugins", "activate", "invoice-qa", "--project", "proj-new", check=True)
    event = {**EVENTS[1], "id": "evt-new-project", "project_id": "proj-new", "asset_id": "asset-new",
             "label": {**EVENTS[1]["label"], "id": "label-new"},
             "context": {"asset": {"id": "asset-new", "externalId": "new.pdf", "jsonMetadata": {"k": 1}}}}
    assert invoice.post_event(event).status_code == 202
    invoice.settle()
    asset = json.loads(invoice.cli("assets", "show", "asset-new", "--project", "proj-new", "--json").stdout)
    assert asset["external_id"] == "new.pdf"
    assert asset["json_metadata"] == {"k": 1, "accuracy": 50.0}
    assert [i["text"][:32] for i in asset["issues"]] == ["IBAN number should start with FR"]


def test_a_failing_requirement_fails_the_upload_with_pips_message(service: Service, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n        pass\n")
    (tmp_path / "requirements.txt").write_text("this-package-does-not-exist-plugin-runtime==1.0\n")
    result = service.cli("plugins", "upload", str(tmp_path), "--name", "broken")
    assert result.returncode == 1
    assert "this-package-does-not-exist-plugin-runtime" in result.stderr
    versions = json.loads(service.cli("plugins", "versions", "broken", "--json").stdout)
    assert versions[0]["status"] == "failed" and versions[0]["image"] is None


def test_update_and_rollback(service: Service, tmp_path: Path) -> None:
    code = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n        self.logger.info('{}')\n")
    (tmp_path / "main.py").write_text(code.format("v1"))
    assert service.cli("plugins", "upload", str(tmp_path), "--name", "versioned").returncode == 0
    (tmp_path / "main.py").write_text(code.format("v2"))
    assert service.cli("plugins", "update", str(tmp_path), "--name", "versioned").returncode == 0
    status = json.loads(service.cli("plugins", "status", "versioned", "--json").stdout)
    assert status["current_version"] == 2
    assert [v["status"] for v in status["versions"]] == ["inactive", "active"]
    assert service.cli("plugins", "rollback", "versioned", "--to", "1").returncode == 0
    status = json.loads(service.cli("plugins", "status", "versioned", "--json").stdout)
    assert status["current_version"] == 1
    missing = service.cli("plugins", "rollback", "versioned", "--to", "9")
    assert missing.returncode == 1 and "no version 9" in missing.stderr
    assert service.cli("plugins", "delete", "versioned").returncode == 0
    assert service.cli("plugins", "status", "versioned").returncode == 1


def test_deleting_a_plugin_removes_its_image(service: Service, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                      "    def on_submit(self, label, asset_id):\n        pass\n")
    assert service.cli("plugins", "upload", str(tmp_path), "--name", "short-lived").returncode == 0
    image = json.loads(service.cli("plugins", "versions", "short-lived", "--json").stdout)[0]["image"]
    client = service.runtime.sandboxes.client
    assert client.images.get(image)
    assert service.cli("plugins", "delete", "short-lived").returncode == 0
    from docker.errors import ImageNotFound

    with pytest.raises(ImageNotFound):
        client.images.get(image)
