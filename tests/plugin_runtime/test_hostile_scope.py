"""A hostile plugin naming records outside its scope in the actions it returns (the SDK's
checks bypassed): the victim's records stay as they were, and the run says what was refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

VICTIM = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["victim issue"])
'''

ATTACKER = '''
from plugin_sdk import PluginCore, UpdateIssueStatus


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        target = label["jsonResponse"]["ISSUE"]
        return [UpdateIssueStatus(asset_id=asset_id, issue_id=target, status="CANCELLED"),
                UpdateIssueStatus(asset_id=asset_id, issue_id="issue-that-does-not-exist", status="SOLVED")]
'''


@pytest.fixture()
def service(tmp_path: Path):
    running = start_service(tmp_path / "data", "process")
    yield running
    stop_service(running)


def event(event_id: str, project: str, asset: str, response: dict) -> dict:
    return {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": asset,
            "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response}}


@pytest.fixture()
def attacked(service: Service) -> tuple[Service, str, dict]:
    """The victim's issue, and the attacker's run that named it (on the attacker's own asset)."""
    service.deploy("victim", VICTIM, project="proj-victim")
    service.deploy("attacker", ATTACKER, project="proj-attacker")
    assert service.post_event(event("victim-1", "proj-victim", "victim-asset", {})).status_code == 202
    service.settle()
    [(issue, status)] = service.runtime.store.read().execute("SELECT id, status FROM issues").fetchall()
    assert status == "OPEN"
    assert service.post_event(event("attack-1", "proj-attacker", "attacker-asset", {"ISSUE": issue})).status_code == 202
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", params={"plugin": "attacker"}, timeout=30).json()
    return service, issue, service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()


def test_another_projects_issue_keeps_its_status(attacked: tuple[Service, str, dict]) -> None:
    service, issue, run = attacked
    assert run["status"] == "succeeded", run["error"]
    assert service.runtime.store.read().execute("SELECT status FROM issues WHERE id = ?", (issue,)).fetchone()[0] == "OPEN"


def test_a_status_change_of_an_issue_not_on_the_asset_is_recorded_as_refused(attacked: tuple[Service, str, dict]) -> None:
    _, issue, run = attacked
    assert [a["status"] for a in run["actions"]] == ["rejected", "rejected"], run["actions"]
    assert [a["reason"] for a in run["actions"]] == [
        f"issue {issue!r} belongs to another asset than 'attacker-asset'",
        "issue 'issue-that-does-not-exist' does not exist"]
    assert run["rejected"] == 2


def test_a_project_id_no_route_could_name_is_refused_at_the_intake(service: Service) -> None:
    # Stored, such an event would create a project no admin route can name (%2F is decoded before
    # routing): its events could never run. Refused, the sender is told why.
    service.deploy("victim", VICTIM, project="proj-victim")
    for project_id in ("team/invoices", ".."):
        refused = service.post_event(event(f"slash-{len(project_id)}", project_id, "slash-asset", {}))
        assert refused.status_code == 422, (refused.status_code, refused.text)
        assert "cannot name a project in the runtime's URLs" in refused.text
    assert service.runtime.store.read().execute(
        "SELECT count(*) FROM events WHERE id LIKE 'slash-%'").fetchone()[0] == 0
