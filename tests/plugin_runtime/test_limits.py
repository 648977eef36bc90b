"""The service's size limits on actions, applied by the dry-run through the same check: an
action the service refuses is reported rejected by the dry-run, with the same reason."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from plugin_runtime.applier.policy import MAX_JSON_RESPONSE_BYTES, MAX_METADATA_BYTES, size_refusal, stored_size
from plugin_sdk.testing import make_event, make_label
from tests.plugin_runtime.service_fixtures import REPO, start_service, stop_service

#: Sends the asset back, writes 6 MB of metadata (over the limit) and adds a small label.
PLUGIN = """
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"blob": "x" * (6 << 20)}])
        self.kili.append_labels(asset_id_array=[asset_id], json_response_array=[{"OK": {"text": "fine"}}])
        self.logger.info("done with %s", asset_id)
"""


def test_size_refusal_measures_what_the_store_would_hold() -> None:
    at_limit = {"type": "update_asset", "asset_id": "a", "json_metadata": {"k": "x" * (MAX_METADATA_BYTES - 8)}}
    assert stored_size(at_limit["json_metadata"]) == MAX_METADATA_BYTES and size_refusal(at_limit) is None
    over = {**at_limit, "json_metadata": {"k": "é" * (MAX_METADATA_BYTES // 2)}}  # 2 bytes each in UTF-8
    assert size_refusal(over) == f"json_metadata is {MAX_METADATA_BYTES + 8} bytes, over the limit of {MAX_METADATA_BYTES} bytes"
    label = {"type": "append_label", "asset_id": "a", "label_type": "DEFAULT",
             "json_response": {"k": "x" * MAX_JSON_RESPONSE_BYTES}}
    assert size_refusal(label) == (f"json_response is {MAX_JSON_RESPONSE_BYTES + 8} bytes, over the limit of "
                                   f"{MAX_JSON_RESPONSE_BYTES} bytes")
    assert size_refusal({"type": "update_asset", "asset_id": "a", "priority": 3}) is None  # no metadata: nothing to weigh
    assert size_refusal({"type": "create_issue", "asset_id": "a", "label_id": "l", "text": "x" * 10_000}) is None
    assert stored_size({"k": "\ud800"}) == 11  # a lone surrogate is weighed, not a crash


def test_dry_run_rejects_what_the_service_rejects_with_the_same_reason(tmp_path: Path, write_plugin,
                                                                        write_events, database) -> None:
    plugin = write_plugin(tmp_path, PLUGIN)
    event = make_event(id="evt-big", project_id="proj-big", asset_id="asset-big",
                       label=make_label({"OK": {"text": "x"}}, id="label-big"))
    events = write_events(tmp_path / "events.jsonl", event)
    command = [sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events", str(events)]

    dry = subprocess.run([*command, "--format", "json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert dry.returncode == 1, dry.stderr  # an action the service would reject fails the dry-run
    [line] = [json.loads(text) for text in dry.stdout.splitlines()]
    assert line["status"] == "ok" and [a["type"] for a in line["actions"]] == [
        "send_back_to_queue", "update_asset", "append_label"]
    assert "1 ok; 1 action(s) the service would reject" in dry.stderr
    [rejected] = line["rejected"]
    assert rejected["index"] == 1 and rejected["reason"].startswith("json_metadata is 629")

    human = subprocess.run([*command, "--format", "human"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert human.returncode == 1
    assert f"REJECTED by the service: {rejected['reason']}" in human.stdout
    assert "[info] done with asset-big" in human.stdout  # the event's whole result is still shown

    service = start_service(tmp_path / "data", "process", database)
    try:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("main.py", PLUGIN)
        assert service.admin.post(f"{service.url}/v1/plugins/big/versions", params={"create": "true"},
                                  data=buffer.getvalue(), timeout=30).status_code == 202
        assert service.runtime.registry.wait("big", 1, 60)["status"] == "active"
        service.runtime.registry.activate("big", "proj-big")
        assert service.post_event(event).status_code == 202
        service.settle()
        [run] = service.admin.get(f"{service.url}/v1/runs", params={"plugin": "big"},
                                  timeout=30).json()
        shown = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
    finally:
        stop_service(service)
    assert shown["status"] == "succeeded" and shown["rejected"] == 1
    assert [(a["action"]["type"], a["status"], a["reason"]) for a in shown["actions"]] == [
        ("send_back_to_queue", "applied", None),
        ("update_asset", "rejected", rejected["reason"]),  # the dry-run's reason, word for word
        ("append_label", "applied", None),
    ]
