"""Plugins written for Kili's hosted runtime, run unchanged in the Docker sandbox: with the
real ``kili`` package in their requirements (its PluginCore, ``@on_kili_event``) and without
(the import resolves to the SDK)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_sdk.kili_published import (
    DOCUMENT_RECIPE, FOLDER_FIXTURE_HELPERS, FOLDER_FIXTURE_MAIN, ON_EVENT_FIXTURE,
)

pytestmark = pytest.mark.docker

KILI_PLUGIN = '''
from typing import Dict

from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label: Dict, asset_id: str) -> None:
        categories = label["jsonResponse"].get("CLASSIFICATION_JOB", {}).get("categories", [])
        if not categories:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=["Pick a category"])
            self.kili.send_back_to_queue(asset_ids=[asset_id])
            return
        self.kili.update_properties_in_assets(asset_ids=[asset_id],
                                              json_metadatas=['{"category": "%s"}' % categories[0]["name"]])
        self.logger.info("checked")
'''

KILI_EVENTS_PLUGIN = '''
from kili.plugins import PluginCore, on_kili_event
from kili_events import AssetSkippedEvent


class PluginHandler(PluginCore):
    @on_kili_event
    def on_skip(self, event: AssetSkippedEvent) -> None:
        self.logger.info(f"{event.user_id} skipped {event.payload.asset_id}")
        self.kili.add_to_review(asset_ids=[event.payload.asset_id], project_id=self.project_id)
'''

EVENTS = [
    {"id": "e-empty", "type": "onSubmit", "project_id": "p", "asset_id": "a1",
     "label": {"id": "l1", "labelType": "DEFAULT", "jsonResponse": {}}},
    {"id": "e-red", "type": "onSubmit", "project_id": "p", "asset_id": "a2",
     "label": {"id": "l2", "labelType": "DEFAULT", "jsonResponse": {"CLASSIFICATION_JOB": {"categories": [{"name": "RED"}]}}}},
]
SKIP = {"id": "e-skip", "type": "asset.skipped", "project_id": "p", "organization_id": "org", "user_id": "u-7",
        "payload": {"assetId": "a3", "skipped": True, "status": "ONGOING", "externalId": "x"}}


def dry_run(folder: Path, events: list[dict], sandbox: str, whole_folder: bool = False, *options: str) -> list[dict]:
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    target = folder if whole_folder else folder / "main.py"
    result = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(target),
                             "--events", str(folder / "events.jsonl"), "--sandbox", sandbox, "--format", "json",
                             *options],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def plugin(tmp_path: Path, name: str, code: str, requirements: str | None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.py").write_text(code)
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def test_a_kili_plugin_gives_the_same_actions_with_and_without_the_real_kili(tmp_path: Path) -> None:
    shim = dry_run(plugin(tmp_path, "shim", KILI_PLUGIN, None), EVENTS, "docker")
    real = dry_run(plugin(tmp_path, "real", KILI_PLUGIN, "kili\n"), EVENTS, "docker")
    strip = lambda results: [(r["event_id"], r["status"], r["actions"]) for r in results]  # noqa: E731
    assert strip(shim) == strip(real)
    assert [a["type"] for a in shim[0]["actions"]] == ["create_issue", "send_back_to_queue"]
    assert shim[1]["actions"] == [{"type": "update_asset", "asset_id": "a2", "json_metadata": {"category": "RED"}}]


def test_kilis_published_plugins_give_in_docker_what_they_give_in_the_process_sandbox(tmp_path: Path) -> None:
    # Kili's plugin folder fixture (a relative import of sub_folder/helpers.py) without its
    # requirements.txt (scikit-learn, which it never imports: a large download for nothing),
    # and Kili's document recipe (metadata as the text of a Python dict).
    package = plugin(tmp_path, "plugin_folder", FOLDER_FIXTURE_MAIN, None)
    (package / "sub_folder").mkdir()
    (package / "sub_folder" / "helpers.py").write_text(FOLDER_FIXTURE_HELPERS)
    document = plugin(tmp_path, "document", DOCUMENT_RECIPE, None)
    invoice = {"JOB_0": {"annotations": [
        {"mid": "m-1", "categories": [{"name": "IBAN"}], "children": {"TRANSCRIPTION_JOB": {"text": "DE89"}}}]}}
    events = [{**EVENTS[0], "label": {"id": "l1", "labelType": "DEFAULT", "jsonResponse": invoice}}]
    strip = lambda results: [(r["status"], r["error"], r["actions"]) for r in results]  # noqa: E731
    for folder in (package, document):
        docker = dry_run(folder, events, "docker", whole_folder=True)
        assert strip(docker) == strip(dry_run(folder, events, "process", whole_folder=True))
        assert docker[0]["status"] == "ok", docker[0]["error"]
    assert docker[0]["actions"][-1] == {"type": "update_asset", "asset_id": "a1", "json_metadata": {"accuracy": 0.0}}


SETTINGS = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_project_updated(self, settings_updated):
        self.logger.info(", ".join(f"{s['key']}: {s['oldValue']} -> {s['newValue']}" for s in settings_updated))
'''


def test_the_upload_event_matcher_and_on_project_updated_reach_the_plugin_in_docker(tmp_path: Path) -> None:
    [event] = dry_run(plugin(tmp_path, "on_event", ON_EVENT_FIXTURE, None), [SKIP], "docker", False,
                      "--event-matcher", "asset.*")
    assert (event["status"], event["skipped"]) == ("ok", False), event["error"]  # Kili's fixture, no class attribute
    updated = {"id": "e-settings", "type": "onProjectUpdated", "project_id": "p",
               "settings_updated": [{"key": "reviewCoverage", "newValue": 20, "oldValue": 0}]}
    [result] = dry_run(plugin(tmp_path, "settings", SETTINGS, None), [updated], "docker")
    assert result["status"] == "ok", result["error"]
    assert [log["message"] for log in result["logs"]] == ["reviewCoverage: 0 -> 20"]


def test_on_kili_event_methods_receive_typed_events(tmp_path: Path) -> None:
    [result] = dry_run(plugin(tmp_path, "events", KILI_EVENTS_PLUGIN, "kili\n"), [SKIP], "docker")
    assert result["status"] == "ok", result["error"]
    assert result["actions"] == [{"type": "add_to_review", "asset_id": "a3"}]
    assert [log["message"] for log in result["logs"]] == ["u-7 skipped a3"]


def test_on_kili_event_without_the_kili_package_says_what_to_add(tmp_path: Path) -> None:
    folder = plugin(tmp_path, "noreq", KILI_EVENTS_PLUGIN, None)
    (folder / "events.jsonl").write_text(json.dumps(SKIP) + "\n")
    out = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(folder), "--events",
                          str(folder / "events.jsonl"), "--sandbox", "docker", "--format", "json"],
                         capture_output=True, text=True, timeout=600)
    line = json.loads(out.stdout.splitlines()[0])
    assert out.returncode == 1 and line["status"] == "error"
    assert "add `kili` to the plugin's requirements.txt" in line["error"]


def test_a_kili_plugin_with_the_real_kili_runs_in_the_service(tmp_path: Path) -> None:
    from tests.plugin_runtime.service_fixtures import start_service, stop_service

    service = start_service(tmp_path / "data", "docker")
    try:
        folder = plugin(tmp_path, "service", KILI_PLUGIN, "kili\n")
        upload = service.cli("plugins", "upload", str(folder), "--name", "kili-real")
        assert upload.returncode == 0, upload.stderr
        freeze = json.loads(service.cli("plugins", "versions", "kili-real", "--json").stdout)[0]["freeze"]
        assert any(line.startswith("kili==") for line in freeze)
        service.cli("plugins", "activate", "kili-real", "--project", "p", check=True)
        for event in EVENTS:
            assert service.post_event(event).status_code == 202
        service.settle(120)
        empty = json.loads(service.cli("assets", "show", "a1", "--project", "p", "--json").stdout)
        assert empty["status"] == "ONGOING" and [i["text"] for i in empty["issues"]] == ["Pick a category"]
        red = json.loads(service.cli("assets", "show", "a2", "--project", "p", "--json").stdout)
        assert red["json_metadata"] == {"category": "RED"} and red["status"] == "LABELED"
    finally:
        stop_service(service)
