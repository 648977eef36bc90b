"""The service's scope checks, applied by the dry-run through the same policy: an action naming
an asset of another project, a missing asset or label, or another asset's label is reported
rejected by ``plugin-runtime dry-run`` with the reason the service records for the same plugin
and events; one the dry-run cannot judge (its event carries no context) is a warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plugin_sdk.testing import make_event, make_label
from tests.plugin_runtime.service_fixtures import REPO, start_service, stop_service

#: On asset-main only: one issue on its own label (fine), then one action per scope refusal.
PLUGIN = """
from plugin_sdk import PluginCore
from plugin_sdk.actions import CreateIssue


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if asset_id != "asset-main":
            return []
        self.kili.create_issues(self.project_id, [label["id"]], text_array=["own label"])
        self.kili.send_back_to_queue(asset_ids=["asset-other"])
        self.kili.add_to_review(asset_ids=["asset-ghost"])
        return [CreateIssue(asset_id=asset_id, label_id="label-ghost", text="missing label"),
                CreateIssue(asset_id=asset_id, label_id="label-sibling", text="another asset's label")]
"""
PROJECT = "proj-scope"
#: What the service records for each of the plugin's actions, in order.
SERVICE_REASONS = [
    None,
    f"asset 'asset-other' belongs to another project than the event's ({PROJECT!r})",
    "asset 'asset-ghost' does not exist",
    "label 'label-ghost' does not exist",
    "label 'label-sibling' belongs to another asset than 'asset-main'",
]


def submit(event_id: str, project: str, asset_id: str, context: bool = True) -> dict:
    return make_event(id=event_id, project_id=project, asset_id=asset_id, context=context,
                      label=make_label({"OK": {"text": "x"}}, id=f"label-{asset_id.removeprefix('asset-')}"))


EVENTS = [submit("evt-other", "proj-other", "asset-other"), submit("evt-sibling", PROJECT, "asset-sibling"),
          submit("evt-main", PROJECT, "asset-main")]


def dry_run(plugin: Path, events: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events", str(events),
                           *options], check=False, capture_output=True, text=True, timeout=300, cwd=REPO)


def service_reasons(tmp_path: Path, plugin: Path) -> list[str | None]:
    """The reasons the service records for the actions of evt-main's run (None: applied)."""
    from plugin_runtime.source import load_source

    service = start_service(tmp_path / "data", "process")
    try:
        upload = service.admin.post(f"{service.url}/v1/plugins/scoped/versions", params={"create": "true"},
                                    data=load_source(plugin).archive(), timeout=60)
        assert upload.status_code == 202, upload.text
        assert service.runtime.registry.wait("scoped", 1, 60)["status"] == "active"
        service.runtime.registry.activate("scoped", PROJECT)
        for event in EVENTS:
            assert service.post_event(event).status_code == 202
        service.settle()
        runs = service.admin.get(f"{service.url}/v1/runs", params={"plugin": "scoped"}, timeout=30).json()
        [run] = [r for r in runs if r["event_id"] == "evt-main"]
        shown = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
    finally:
        stop_service(service)
    assert shown["status"] == "succeeded" and shown["rejected"] == 4
    return [action["reason"] for action in shown["actions"]]


def test_dry_run_refuses_out_of_scope_actions_with_the_services_reasons(tmp_path: Path, write_plugin,
                                                                        write_events) -> None:
    plugin = write_plugin(tmp_path, PLUGIN)
    events = write_events(tmp_path / "events.jsonl", *EVENTS)

    dry = dry_run(plugin, events)
    assert dry.returncode == 1, dry.stderr  # what the service would refuse fails the dry-run
    lines = {line["event_id"]: line for line in map(json.loads, dry.stdout.splitlines())}
    main = lines["evt-main"]
    assert main["status"] == "ok" and main["warnings"] == []
    reasons = [None] * len(main["actions"])
    for item in main["rejected"]:
        reasons[item["index"]] = item["reason"]
    assert "3 ok; 4 action(s) the service would reject" in dry.stderr

    assert reasons == SERVICE_REASONS
    assert service_reasons(tmp_path, plugin) == reasons  # word for word

    human = dry_run(plugin, events, "--format", "human")
    for reason in SERVICE_REASONS[1:]:
        assert f"REJECTED by the service: {reason}" in human.stdout


def test_without_context_an_unknown_record_is_a_warning_not_a_silent_ok(tmp_path: Path, write_plugin,
                                                                         write_events) -> None:
    plugin = write_plugin(tmp_path, PLUGIN)
    bare = [submit(e["id"], e["project_id"], e["asset_id"], context=False) for e in EVENTS]
    events = write_events(tmp_path / "events.jsonl", *bare)

    dry = dry_run(plugin, events)
    assert dry.returncode == 1, dry.stderr
    main = {line["event_id"]: line for line in map(json.loads, dry.stdout.splitlines())}["evt-main"]
    # Another project's asset, and another asset's label, are known from the other events:
    # refused as the service refuses them, context or not.
    assert [(item["index"], item["reason"]) for item in main["rejected"]] == [
        (1, SERVICE_REASONS[1]), (4, SERVICE_REASONS[4])]
    # Whether asset-ghost and label-ghost exist, nothing here says: warned, not passed as ok.
    assert [item["index"] for item in main["warnings"]] == [2, 3]
    assert main["warnings"][0]["warning"].startswith(
        "not checked: the service refuses this action if asset 'asset-ghost' does not exist in project 'proj-scope'; "
        "the event carries no context")
    assert "label 'label-ghost' does not exist" in main["warnings"][1]["warning"]
    assert "2 action(s) the dry-run could not check (their events' recorded context does not tell)" in dry.stderr

    human = dry_run(plugin, events, "--format", "human")
    assert "WARNING: not checked: the service refuses this action if asset 'asset-ghost'" in human.stdout


#: Status changes of an issue of its own asset (fine), of another asset's issue, and of no issue.
ISSUE_PLUGIN = """
from plugin_sdk import PluginCore, UpdateIssueStatus


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        [own] = self.kili.issues(project_id=self.project_id, asset_id=asset_id, fields=["id"])
        self.kili.update_issue_status(own["id"], "SOLVED")
        return [UpdateIssueStatus(asset_id=asset_id, issue_id=name, status="CANCELLED")
                for name in ("issue-sibling", "issue-ghost")]
"""


def with_issue(event_id: str, asset_id: str, issues: list | None) -> dict:
    event = submit(event_id, PROJECT, asset_id)
    if issues is None:
        del event["context"]["asset"]["issues"]
    else:
        event["context"]["asset"]["issues"] = issues
    return event


def test_a_status_change_of_an_issue_not_on_its_asset_is_refused_as_the_service_refuses_it(
        tmp_path: Path, write_plugin, write_events) -> None:
    plugin = write_plugin(tmp_path, ISSUE_PLUGIN)
    sibling = with_issue("evt-sibling", "asset-sibling", [{"id": "issue-sibling", "status": "OPEN"}])
    main = with_issue("evt-main", "asset-main", [{"id": "issue-main", "status": "OPEN"}])
    events = write_events(tmp_path / "events.jsonl", sibling, main)

    dry = dry_run(plugin, events)
    assert dry.returncode == 1, dry.stderr
    line = {line["event_id"]: line for line in map(json.loads, dry.stdout.splitlines())}["evt-main"]
    assert [a["issue_id"] for a in line["actions"]] == ["issue-main", "issue-sibling", "issue-ghost"]
    assert [(item["index"], item["reason"]) for item in line["rejected"]] == [
        (1, "issue 'issue-sibling' belongs to another asset than 'asset-main'"),
        (2, "issue 'issue-ghost' does not exist")]
    assert line["warnings"] == []


def test_an_issue_on_an_asset_whose_issues_were_not_recorded_is_a_warning(tmp_path: Path, write_plugin,
                                                                          write_events) -> None:
    plugin = write_plugin(tmp_path, """
        from plugin_sdk import PluginCore, UpdateIssueStatus


        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                return UpdateIssueStatus(asset_id=asset_id, issue_id="issue-elsewhere", status="SOLVED")
    """)
    events = write_events(tmp_path / "events.jsonl", with_issue("evt-main", "asset-main", None))

    dry = dry_run(plugin, events)
    assert dry.returncode == 0, dry.stderr
    [line] = map(json.loads, dry.stdout.splitlines())
    assert line["rejected"] == []
    assert [item["warning"] for item in line["warnings"]] == [(
        "not checked: the service refuses this action if issue 'issue-elsewhere' is not an issue of asset "
        "'asset-main'; no event's context lists that asset's issues (context.asset.issues), so the dry-run cannot "
        "tell (record events with their context: plugin-runtime events export)")]
