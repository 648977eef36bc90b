"""Plugins Kili publishes, and Kili's newer write methods, through the real dry-run command and
the service (process sandbox, so they run fast; ``test_kili_plugins`` runs them in Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin_sdk.testing import dry_run
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service
from tests.plugin_sdk.kili_published import (
    DOCUMENT_RECIPE, FOLDER_FIXTURE_HELPERS, FOLDER_FIXTURE_MAIN, FOLDER_FIXTURE_REQUIREMENTS,
)

PROJECT = "proj-invoices"


def invoice(iban: str, currency: str) -> dict:
    def box(mid: str, category: str, job: str, text: str) -> dict:
        return {"mid": mid, "categories": [{"name": category}], "children": {job: {"text": text}}}
    return {"JOB_0": {"annotations": [box("m-iban", "IBAN", "TRANSCRIPTION_JOB", iban),
                                      box("m-cur", "CURRENCY", "TRANSCRIPTION_JOB_2", currency)]}}


def submitted(event_id: str, asset: str, response: dict, label: str | None = None) -> dict:
    return {"id": event_id, "type": "onSubmit", "project_id": PROJECT, "asset_id": asset,
            "label": {"id": label or f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response},
            "context": {"asset": {"id": asset, "externalId": f"{asset}.pdf", "jsonMetadata": {"pages": 2}}}}


def folder(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "main.py").write_text(code)
    return path


@pytest.fixture()
def service(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)


def upload(service: Service, path: Path, name: str) -> None:
    done = service.cli("plugins", "upload", str(path), "--name", name)
    assert done.returncode == 0, done.stderr
    assert service.cli("plugins", "activate", name, "--project", PROJECT).returncode == 0


def asset(service: Service, asset_id: str) -> dict:
    return service.admin.get(f"{service.url}/v1/projects/{PROJECT}/assets/{asset_id}", timeout=30).json()


def test_kilis_document_recipe_dry_runs_with_its_metadata_read(tmp_path: Path) -> None:
    plugin = folder(tmp_path, "document", DOCUMENT_RECIPE)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in [
        submitted("e-de", "invoice-1", invoice("DE89 3704", "EURO")),
        submitted("e-fr", "invoice-2", invoice("FR76 3000", "YEN")),
    ]))
    results = dry_run(plugin, events)
    assert [r["status"] for r in results] == ["ok", "ok"], results
    assert [[a["type"] for a in r["actions"]] for r in results] == [
        ["create_issue", "add_to_review", "update_asset"]] * 2
    assert [r["actions"][2]["json_metadata"] for r in results] == [{"accuracy": 50.0}, {"accuracy": 50.0}]
    assert results[1]["actions"][0]["text"] == "Authorized currencies are only Euro and Dollar"


def test_kilis_document_recipe_in_the_service_writes_its_accuracy(tmp_path: Path, service: Service) -> None:
    upload(service, folder(tmp_path, "document", DOCUMENT_RECIPE), "document")
    assert service.post_event(submitted("e-de", "invoice-1", invoice("DE89 3704", "EURO"))).status_code == 202
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", timeout=30).json()
    assert run["status"] == "succeeded", run
    state = asset(service, "invoice-1")
    assert state["jsonMetadata"] == {"accuracy": 50.0}  # replaced, as on Kili
    assert state["status"] == "TO_REVIEW"
    assert [(i["text"], i["status"]) for i in state["issues"]] == [("IBAN number should start by FR", "OPEN")]


RESOLVER = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    """Opens an issue on a label without IBAN and resolves the asset's open issues once a
    label has one; pre-annotates the currency and asks when it is unusual."""

    def on_submit(self, label, asset_id):
        iban = label["jsonResponse"].get("IBAN", {}).get("text")
        if not iban:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["No IBAN"])
            self.kili.set_assets_priority(priority=10, asset_ids=[asset_id], project_id=self.project_id)
            return
        for issue in self.kili.issues(project_id=self.project_id, asset_id=asset_id, issue_type="ISSUE",
                                      status="OPEN"):
            self.kili.update_issue_status(issue_id=issue["id"], status="SOLVED")
        self.kili.create_predictions(project_id=self.project_id, asset_id_array=[asset_id],
                                     json_response_array=[{"CURRENCY": {"categories": [{"name": "EUR"}]}}],
                                     model_name="currency-guess", overwrite=True)
        self.kili.add_metadata(json_metadata=[{"iban_checked": True}], project_id=self.project_id,
                               asset_ids=[asset_id])
        self.kili.assign_assets_to_labelers(to_be_labeled_by_array=[["reviewer-1"]], asset_ids=[asset_id])
        if not iban.startswith("FR"):
            self.kili.create_questions(project_id=self.project_id, text_array=[f"Foreign IBAN {iban[:4]}?"],
                                       asset_id_array=[asset_id])
'''


def test_issues_resolved_predictions_metadata_and_questions_in_the_service(tmp_path: Path, service: Service) -> None:
    upload(service, folder(tmp_path, "resolver", RESOLVER), "resolver")
    assert service.post_event(submitted("e-1", "invoice-1", {})).status_code == 202
    service.settle()
    first = asset(service, "invoice-1")
    assert [(i["text"], i["status"]) for i in first["issues"]] == [("No IBAN", "OPEN")]
    assert first["priority"] == 10
    for number in (2, 3):  # the second one finds no open issue and overwrites its own prediction
        event = submitted(f"e-{number}", "invoice-1", {"IBAN": {"text": "DE89 3704"}})
        del event["context"]  # the asset is known now: its metadata stays as the platform has it
        assert service.post_event(event).status_code == 202
        service.settle()
    state = asset(service, "invoice-1")
    assert [r["status"] for r in service.admin.get(f"{service.url}/v1/runs", timeout=30).json()] == ["succeeded"] * 3
    assert [(i["type"], i["text"], i["status"]) for i in state["issues"]] == [
        ("ISSUE", "No IBAN", "SOLVED"), ("QUESTION", "Foreign IBAN DE89?", "OPEN"),
        ("QUESTION", "Foreign IBAN DE89?", "OPEN")]
    assert state["jsonMetadata"] == {"pages": 2, "iban_checked": True}  # merged into what the asset had
    assert state["toBeLabeledBy"] == ["reviewer-1"]
    predictions = [label for label in state["labels"] if label["labelType"] == "PREDICTION"]
    assert [(p["modelName"], p["jsonResponse"]) for p in predictions] == [
        ("currency-guess", {"CURRENCY": {"categories": [{"name": "EUR"}]}})]


def kili_plugin_folder(tmp_path: Path) -> Path:
    """Kili's own fixture of a plugin folder: main.py imports `.sub_folder.helpers`."""
    path = folder(tmp_path, "plugin_folder", FOLDER_FIXTURE_MAIN)
    (path / "sub_folder").mkdir()
    (path / "sub_folder" / "helpers.py").write_text(FOLDER_FIXTURE_HELPERS)
    (path / "requirements.txt").write_text(FOLDER_FIXTURE_REQUIREMENTS)
    return path


def test_kilis_plugin_folder_with_a_relative_import_dry_runs(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(submitted("e-1", "invoice-1", {})) + "\n")
    [result] = dry_run(kili_plugin_folder(tmp_path), events)
    assert (result["status"], result["error"], result["actions"]) == ("ok", None, [])


def test_kilis_plugin_folder_with_a_relative_import_runs_in_the_service(tmp_path: Path, service: Service) -> None:
    upload(service, kili_plugin_folder(tmp_path), "plugin-folder")  # the static check accepts it
    assert service.post_event(submitted("e-1", "invoice-1", {})).status_code == 202
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", timeout=30).json()
    assert (run["status"], run["error"]) == ("succeeded", None)


SETTINGS_WATCHER = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_project_updated(self, settings_updated):
        for setting in settings_updated:
            self.logger.info(setting)
        [project] = self.kili.projects(project_id=self.project_id, fields=["reviewCoverage", "title"])
        self.logger.info("now %s, %s%% reviewed", project["title"], project["reviewCoverage"])
'''


def test_project_settings_changed_in_the_service_reach_on_project_updated(tmp_path: Path, service: Service) -> None:
    upload(service, folder(tmp_path, "watcher", SETTINGS_WATCHER), "watcher")
    service.cli("projects", "create", PROJECT, "--title", "Invoices", check=True)
    changed = service.cli("projects", "update", PROJECT, "--review-coverage", "20", "--title", "Invoices 2026")
    assert changed.returncode == 0 and "updated (title, reviewCoverage)" in changed.stdout, changed.stderr
    unchanged = service.cli("projects", "update", PROJECT, "--review-coverage", "20")
    assert "nothing changed" in unchanged.stdout
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", timeout=30).json()
    assert run["status"] == "succeeded", run
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "watcher"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == [
        "{'key': 'title', 'newValue': 'Invoices 2026', 'oldValue': 'Invoices'}",
        "{'key': 'reviewCoverage', 'newValue': 20, 'oldValue': 0}",
        "now Invoices 2026, 20% reviewed"]
    # Recorded with the project as its context: the exported event dry-runs the same way.
    exported = tmp_path / "recorded.jsonl"
    service.cli("events", "export", "--project", PROJECT, "-o", str(exported), check=True)
    [result] = dry_run(tmp_path / "watcher", exported)
    assert result["status"] == "ok", result["error"]
    assert [log["message"] for log in result["logs"]] == [line["message"] for line in logs]
