"""The event matcher given at upload and dry-run (``--event-matcher``), as Kili takes it at
``upload_plugin(..., event_matcher=[...])``: checked on the host, stored with the version, and
given to the plugin process, through the real CLI and service (process sandbox)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_runtime.errors import PluginInvalid
from plugin_runtime.event_matcher import patterns_of, with_event_matcher
from plugin_runtime.source import check_files
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service
from tests.plugin_sdk.kili_published import ON_EVENT_FIXTURE

READER = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_event(self, payload):
        self.logger.info("%s on %s by %s: %s", payload["event"], payload["assetId"], payload["userId"],
                         payload["payload"]["status"])
        if payload["event"] == "asset.skipped":
            self.kili.add_to_review(asset_ids=[payload["assetId"]], project_id=self.project_id)
'''
SUBMITS = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
           "    def on_submit(self, label, asset_id):\n        pass\n")
KILI_EVENTS = ("from kili.plugins import PluginCore, on_kili_event\nfrom kili_events import AssetSkippedEvent\n\n"
               "class PluginHandler(PluginCore):\n    @on_kili_event\n"
               "    def skipped(self, event: AssetSkippedEvent):\n        pass\n")


def source(code: str):
    return check_files({"main.py": code.encode()}, [], "test")


def skipped(event_id: str, asset: str = "a-1") -> dict:
    return {"id": event_id, "type": "asset.skipped", "project_id": "proj-1", "user_id": "u-7",
            "organization_id": "org-1", "payload": {"assetId": asset, "skipped": True, "status": "ONGOING",
                                                    "externalId": None}}


def test_the_patterns_replace_the_class_attribute_in_the_subscriptions() -> None:
    matched = with_event_matcher(source(READER), ["asset.*", "label.workflow.*", "asset.*"])
    assert (matched.event_matcher, matched.subscriptions) == (["asset.*", "label.workflow.*"],
                                                              ["asset.*", "label.workflow.*"])
    assert with_event_matcher(source(READER), []) == source(READER)
    assert patterns_of(["onSubmit", "asset.*", "onProjectUpdated"]) == ["asset.*"]
    assert patterns_of(None) == []


@pytest.mark.parametrize(("code", "patterns", "message"), [
    (READER, ["*.skipped"], "--event-matcher: invalid event pattern '*.skipped'"),
    (SUBMITS, ["asset.*"], "--event-matcher: PluginHandler has no on_event(self, payload)"),
    (KILI_EVENTS, ["asset.*"], "its @on_kili_event methods"),
])
def test_what_a_plugin_cannot_take_is_refused_saying_what_to_change(code: str, patterns: list[str],
                                                                   message: str) -> None:
    with pytest.raises(PluginInvalid) as raised:
        with_event_matcher(source(code), patterns)
    assert message in str(raised.value)


def dry_run(plugin: Path, events: list[dict], *options: str) -> subprocess.CompletedProcess:
    (plugin.parent / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events",
                           str(plugin.parent / "events.jsonl"), "--format", "json", *options],
                          capture_output=True, text=True, timeout=300)


def test_dry_run_takes_the_event_matcher_kili_takes_at_upload(tmp_path: Path) -> None:
    plugin = tmp_path / "main.py"
    plugin.write_text(ON_EVENT_FIXTURE)  # Kili's fixture: on_event, no class attribute
    done = dry_run(plugin, [skipped("e-1")], "--event-matcher", "asset.*")
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (done.returncode, result["status"], result["skipped"]) == (0, "ok", False), done.stderr
    without = dry_run(plugin, [skipped("e-1")])
    assert without.returncode == 1 and "upload it with --event-matcher PATTERN" in without.stdout
    refused = dry_run(plugin, [skipped("e-1")], "--event-matcher", "*")
    assert refused.returncode == 2 and "invalid event pattern '*'" in refused.stderr


@pytest.fixture()
def service(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)


def test_an_upload_with_event_matchers_receives_those_events_in_the_service(tmp_path: Path, service: Service) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / "main.py").write_text(READER)
    done = service.cli("plugins", "upload", str(folder), "--event-matcher", "asset.skipped",
                       "--event-matcher", "asset.workflow.*")
    assert done.returncode == 0, done.stderr
    [version] = json.loads(service.cli("plugins", "versions", "reader", "--json", check=True).stdout)
    assert version["subscriptions"] == ["asset.skipped", "asset.workflow.*"]
    service.cli("plugins", "activate", "reader", "--project", "proj-1", check=True)
    assert service.post_event(skipped("e-1")).status_code == 202
    assert service.post_event({**skipped("e-2"), "type": "asset.unskipped"}).status_code == 202  # not matched
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", timeout=30).json()
    assert (run["event_id"], run["status"]) == ("e-1", "succeeded")
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "reader"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == ["asset.skipped on a-1 by u-7: ONGOING"]
    asset = service.admin.get(f"{service.url}/v1/projects/proj-1/assets/a-1", timeout=30)
    assert asset.status_code == 404  # a dotted event names no asset the platform keeps: the action is refused
    [action] = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()["actions"]
    assert action["status"] == "rejected" and "does not exist" in action["reason"]


def test_an_event_matcher_the_plugin_cannot_take_is_refused_at_upload(tmp_path: Path, service: Service) -> None:
    folder = tmp_path / "submits"
    folder.mkdir()
    (folder / "main.py").write_text(SUBMITS)
    done = service.cli("plugins", "upload", str(folder), "--event-matcher", "asset.*")
    assert done.returncode != 0 and "has no on_event(self, payload)" in done.stderr
    zipped = check_files({"main.py": SUBMITS.encode()}, [], "x").archive()
    response = service.admin.post(f"{service.url}/v1/plugins/submits/versions",
                                  params={"create": "true", "event_matcher": ["asset.*"]}, data=zipped, timeout=30)
    assert response.status_code == 422 and "has no on_event(self, payload)" in response.text
    assert service.admin.get(f"{service.url}/v1/plugins", timeout=30).json() == []
