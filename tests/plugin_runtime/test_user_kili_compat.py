"""Kili plugins that work on Kili's hosted runtime, and what they do here: through the service
(process sandbox, so they run fast; the Docker sandbox runs the same SDK) and the dry-run, as
a user ports them. Each xfail is a place where a plugin that works on Kili fails here or does
something else, with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import (
    REPO,
    Service,
    start_service,
    stop_service,
)

PROJECT = "proj-compat"


@pytest.fixture()
def service(tmp_path: Path):
    running = start_service(tmp_path / "data", "process")
    yield running
    stop_service(running)


def cli(service: Service, *args: str) -> str:
    done = service.cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def deploy(service: Service, tmp_path: Path, name: str, code: str, project: str = PROJECT) -> None:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.py").write_text(code)
    cli(service, "plugins", "upload", str(folder), "--name", name)
    cli(service, "plugins", "activate", name, "--project", project)


def submit(service: Service, asset: str, response: dict, author: str, project: str = PROJECT) -> str:
    out = json.loads(cli(service, "labels", "submit", "--project", project, "--asset", asset, "--json-response",
                         json.dumps(response), "--author", author, "--json"))
    service.settle(120)
    return out["label"]["id"]


def create_assets(service: Service, *assets: str, project: str = PROJECT) -> None:
    cli(service, "projects", "create", project)
    for asset in assets:
        cli(service, "assets", "create", "--project", project, "--id", asset, "--external-id", f"{asset}.jpg")


def runs_of(service: Service, plugin: str) -> list[dict]:
    listed = json.loads(cli(service, "runs", "list", "--plugin", plugin, "--json"))
    return [json.loads(cli(service, "runs", "show", run["id"], "--json")) for run in reversed(listed)]


def only_run(service: Service, plugin: str) -> dict:
    [run] = runs_of(service, plugin)
    return run


def asset(service: Service, asset_id: str) -> dict:
    return service.admin.get(f"{service.url}/v1/projects/{PROJECT}/assets/{asset_id}", timeout=30).json()


RETURNS_A_VALUE = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"]:
            return self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                           text_array=["Empty label"])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"checked": True}])
        return True
'''


def test_a_hook_returning_what_kili_ignores_still_applies_its_writes(service: Service, tmp_path: Path) -> None:
    deploy(service, tmp_path, "returner", RETURNS_A_VALUE)
    create_assets(service, "ret-1", "ret-2")
    empty = submit(service, "ret-1", {}, "alice")
    submit(service, "ret-2", {"CLASSIFICATION_JOB": {"categories": [{"name": "CAT"}]}}, "alice")
    runs = runs_of(service, "returner")
    assert all(run["status"] == "succeeded" for run in runs), [run["error"] for run in runs]
    assert all("ignored, as on Kili" in run["logs"][-1]["message"] for run in runs), [run["logs"] for run in runs]
    assert [(i["labelId"], i["text"]) for i in asset(service, "ret-1")["issues"]] == [(empty, "Empty label")]
    assert asset(service, "ret-2")["jsonMetadata"] == {"checked": True}


AUTHORS = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        labels = self.kili.labels(project_id=self.project_id, asset_id=asset_id, fields=["id", "author.email"])
        by_filter = self.kili.labels(project_id=self.project_id, asset_id=asset_id, author_in=["alice@example.com"],
                                     fields=["id"])
        self.logger.info("emails %s", [l["author"]["email"] for l in labels])
        self.logger.info("alice's %d", len(by_filter))
'''


def test_the_author_email_a_label_is_found_by_is_the_one_reads_return(service: Service, tmp_path: Path) -> None:
    deploy(service, tmp_path, "authors", AUTHORS)
    create_assets(service, "auth-1")
    submit(service, "auth-1", {}, "alice@example.com")
    run = only_run(service, "authors")
    assert run["status"] == "succeeded", run["error"]
    assert [log["message"] for log in run["logs"]] == ["emails ['alice@example.com']", "alice's 1"]


OTHER_ASSET = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    """A labeler whose label fails: an issue on their earlier labels of the project too."""

    def on_submit(self, label, asset_id):
        if label["jsonResponse"]:
            return
        earlier = self.kili.labels(project_id=self.project_id, author_in=[label["authorId"]], fields=["id", "assetId"])
        others = [l["id"] for l in earlier if l["id"] != label["id"]]
        self.kili.create_issues(project_id=self.project_id, label_id_array=others,
                                text_array=["Please check this label again"] * len(others))
'''


def test_an_issue_on_a_label_of_another_asset_of_the_project_is_made(service: Service, tmp_path: Path) -> None:
    deploy(service, tmp_path, "flagger", OTHER_ASSET)
    create_assets(service, "flag-1", "flag-2")
    earlier = submit(service, "flag-1", {"CLASSIFICATION_JOB": {"categories": [{"name": "CAT"}]}}, "carol")
    submit(service, "flag-2", {}, "carol")
    run = runs_of(service, "flagger")[-1]
    assert [a["status"] for a in run["actions"]] == ["applied"], run["actions"]
    assert [(i["labelId"], i["text"]) for i in asset(service, "flag-1")["issues"]] == [
        (earlier, "Please check this label again")]


EXTERNAL_IDS = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    """A page of a document fails: the whole document (its other pages) goes back to the queue."""

    def on_submit(self, label, asset_id):
        if label["jsonResponse"]:
            return
        [me] = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["externalId"])
        document = me["externalId"].split("-page")[0]
        pages = [a["externalId"] for a in self.kili.assets(project_id=self.project_id, fields=["externalId"])
                 if a["externalId"].startswith(document)]
        self.kili.send_back_to_queue(external_ids=pages, project_id=self.project_id)
'''


def test_external_ids_of_the_projects_other_assets_resolve_in_the_service(service: Service, tmp_path: Path) -> None:
    deploy(service, tmp_path, "pages", EXTERNAL_IDS)
    create_assets(service, "doc-page1", "doc-page2")
    submit(service, "doc-page2", {"CLASSIFICATION_JOB": {"categories": [{"name": "CAT"}]}}, "dave")
    submit(service, "doc-page1", {}, "dave")
    run = runs_of(service, "pages")[-1]
    assert run["status"] == "succeeded", run["error"]
    assert [asset(service, a)["status"] for a in ("doc-page1", "doc-page2")] == ["ONGOING", "ONGOING"]


SLEEPER = '''
import time

from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        time.sleep(3600)
'''

QUICK = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def test_events_send_waits_for_its_own_events_runs_only(service: Service, tmp_path: Path) -> None:
    folder = tmp_path / "sleeper"
    folder.mkdir()
    (folder / "main.py").write_text(SLEEPER)
    cli(service, "plugins", "upload", str(folder), "--name", "sleeper", "--limit", "timeout_s=45")
    cli(service, "plugins", "activate", "sleeper", "--project", "proj-slow")
    deploy(service, tmp_path, "quick", QUICK)
    assert service.post_event({"id": "slow-1", "type": "onSubmit", "project_id": "proj-slow", "asset_id": "slow-a",
                               "label": {"id": "slow-l", "jsonResponse": {}}}).status_code == 202
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "quick-1", "type": "onSubmit", "project_id": PROJECT, "asset_id": "quick-a",
                                  "label": {"id": "quick-l", "jsonResponse": {}}}) + "\n")
    sender = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "events", "send", str(events),
                               "--wait-for-runs", "--url", service.url, "--secret", "test-secret"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def quick_done() -> bool:
            listed = json.loads(cli(service, "runs", "list", "--plugin", "quick", "--json"))
            return [run["status"] for run in listed] == ["succeeded"]

        deadline = time.monotonic() + 60
        while not quick_done():
            assert time.monotonic() < deadline, "the quick plugin's run did not end"
            time.sleep(0.1)
        # Its event's run has ended: the command polls every 50 ms, so it returns well within this.
        deadline = time.monotonic() + 20
        while sender.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sender.poll() == 0, "still waiting, for another project's run"
    finally:
        sender.kill()
        sender.communicate()


@pytest.mark.xfail(strict=True, reason=(
    "a plugin folder whose main.py is a symbolic link (a monorepo's shared bot) is refused with "
    "'no main.py (... `plugin-runtime init NAME` writes a working one)' though a main.py is there; other "
    "links are named as 'symbolic links are not followed', which is what the user needs to read"))
def test_a_main_py_that_is_a_link_is_refused_naming_the_link(tmp_path: Path) -> None:
    from plugin_runtime.errors import PluginInvalid
    from plugin_runtime.source import load_source

    shared = tmp_path / "shared_bot.py"
    shared.write_text(QUICK)
    folder = tmp_path / "bot"
    folder.mkdir()
    (folder / "main.py").symlink_to(shared)
    with pytest.raises(PluginInvalid) as refused:
        load_source(folder)
    assert "symbolic link" in str(refused.value), str(refused.value)
