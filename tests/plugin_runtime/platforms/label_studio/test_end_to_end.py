"""A Kili plugin, unchanged, on a real Label Studio: connected with the CLI, triggered by a
person's annotations, its actions seen in Label Studio; webhooks missed while the runtime is
down reconciled once; the runtime's own edits, replays and unsigned calls run nothing.

Real parts: Label Studio (``conftest``), the runtime's HTTP service with the process sandbox,
the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.plugin_runtime.platforms.label_studio.conftest import BOT, LabelStudio
from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]

TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single"><Choice value="Positive"/><Choice value="Negative"/></Choices>
  <TextArea name="comment" toName="text"/>
</View>"""

KILI_PLUGIN = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        [project] = self.kili.projects(project_id=self.project_id)
        people = self.kili.count_labels(project_id=self.project_id, asset_id=asset_id, type_in=["DEFAULT"])
        sentiment = label["jsonResponse"].get("sentiment", {}).get("categories", [{}])[0].get("name")
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{
            "checked_by": "qa-bot", "sentiment": sentiment, "jobs": sorted(project["jsonInterface"]["jobs"]),
            "people_labels": people, "comment": label["jsonResponse"].get("comment", {}).get("text")}])
        if sentiment == "Negative":
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=["negative: check it again"])
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.append_labels(asset_id_array=[asset_id], label_type="PREDICTION", model_name="qa-model",
                                json_response_array=[{"sentiment": {"categories": [{"name": "Positive"}]}}])
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def choice(value: str) -> list[dict[str, Any]]:
    return [{"id": f"r-{value}", "from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": [value]}},
            {"id": "r-comment", "from_name": "comment", "to_name": "text", "type": "textarea",
             "value": {"text": ["first line", "second line"]}}]


def wait_for(check: Callable[[], Any], timeout: float = 90, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def cli(service: Service, *args: str, token: str | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plugin_runtime", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, input=input, env={"PATH": "/usr/bin:/bin", "PLUGIN_RUNTIME_URL": service.url,
                                                      "PLUGIN_RUNTIME_TOKEN": token or service.runtime.token})


def connect(service: Service, studio: LabelStudio, project: int, token: str = BOT[2], *extra: str) -> dict[str, Any]:
    done = cli(service, "connect", "label-studio", "--url", studio.url, "--token", "-", "--project", str(project),
               "--json", *extra, input=token + "\n")
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    return json.loads(done.stdout)


def runs(service: Service) -> list[dict[str, Any]]:
    return service.admin.get(f"{service.url}/v1/runs", params={"limit": 1000}, timeout=30).json()


def settled(service: Service, count: int) -> list[dict[str, Any]]:
    """Wait for ``count`` runs, all ended, and for their actions to have left the outbox."""
    def done() -> list[dict[str, Any]] | None:
        found = runs(service)
        pending = service.runtime.store.read().execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        ended = len(found) == count and all(r["status"] not in ("pending", "running") for r in found)
        return found if ended and pending.fetchone()[0] == 0 else None
    return wait_for(done, what=f"{count} run(s) applied")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = start_service(tmp_path / "runtime", "process", reconcile_interval_s=1.0)
    yield running
    stop_service(running)


def test_a_kili_plugin_runs_unchanged_on_a_label_studio_project(service: Service, label_studio: LabelStudio) -> None:
    project, (first, second, third) = label_studio.project("Reviews", TEXT_CONFIG, [
        {"text": "great"}, {"text": "awful"}, {"text": "fine"}])
    connected = connect(service, label_studio, project)
    project_id = f"label-studio-{project}"
    assert connected == {"project_id": project_id, "webhook_id": connected["webhook_id"], "token_kind": "legacy"}
    [hook] = label_studio.webhooks(project)
    assert hook["id"] == connected["webhook_id"] and hook["url"] == f"{service.url}/v1/connections/{project_id}/webhook"
    service.deploy("qa-bot", KILI_PLUGIN, project=project_id)

    started = time.perf_counter()
    annotation = label_studio.annotate(first, choice("Positive"))
    meta = wait_for(lambda: label_studio.task(first)["meta"].get("checked_by") and label_studio.task(first)["meta"],
                    what="the plugin's metadata in Label Studio")
    assert time.perf_counter() - started < 60
    # What the plugin saw: the annotation as a Kili DEFAULT label, the project's jsonInterface,
    # its own project's labels; what it wrote: the task's meta, replaced.
    assert meta == {"checked_by": "qa-bot", "sentiment": "Positive", "jobs": ["comment", "sentiment"],
                    "people_labels": 1, "comment": "first line\nsecond line"}
    [run] = settled(service, 1)
    assert run["status"] == "succeeded" and run["asset_id"] == str(first) and run["rejected"] == 1
    detail = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
    assert detail["event_id"] == f"ls-{project}-{annotation['id']}-{annotation['updated_at']}"
    refused = [a for a in detail["actions"] if a["status"] == "rejected"]
    assert [a["reason"] for a in refused] == ["add_to_review: Label Studio Community has no review stage"]
    [prediction] = label_studio.call("GET", "/api/predictions/", params={"task": first})
    assert prediction["model_version"] == "qa-model"
    assert prediction["result"][0]["value"] == {"choices": ["Positive"]}
    assert label_studio.task(first)["is_labeled"]

    # A negative annotation: an issue in the task's meta, and the task back in the queue, the
    # person's annotation kept (cancelled, its result intact).
    negative = label_studio.annotate(second, choice("Negative"))
    settled(service, 2)
    task = label_studio.task(second)
    [issue] = task["meta"]["issues"]
    assert {k: issue[k] for k in ("text", "label_id", "object_mid", "plugin")} == {
        "text": "negative: check it again", "label_id": str(negative["id"]), "object_mid": None, "plugin": "qa-bot"}
    assert task["meta"]["sentiment"] == "Negative" and not task["is_labeled"]
    [kept] = [a for a in label_studio.call("GET", "/api/tasks/", params={"project": project, "fields": "all"})["tasks"]
              if a["id"] == second][0]["annotations"]
    assert kept["id"] == negative["id"] and kept["was_cancelled"] and kept["result"] == negative["result"]

    # The runtime's own edits (its send-back above, an annotation by its user) trigger nothing,
    # nor does a replayed webhook; a call without the secret is refused and stores nothing.
    label_studio.annotate(third, choice("Positive"), token=BOT[2])
    events_before = service.count("events")
    hook_url = f"{service.url}/v1/connections/{project_id}/webhook"
    replay = {"action": "ANNOTATION_CREATED", "annotation": {**negative, "task": second, "project": project}}
    secret = service.runtime.store.connections.get(service.runtime.store.read(), project_id).secret
    answer = requests.post(hook_url, json=replay, headers={"X-Plugin-Runtime-Secret": secret}, timeout=30)
    assert answer.status_code == 200 and answer.json() == {"events": 1, "stored": 0}
    unsigned = requests.post(hook_url, json=replay, timeout=30)
    assert unsigned.status_code == 401 and "X-Plugin-Runtime-Secret" in unsigned.json()["detail"]
    time.sleep(3)  # three reconciliations: they must not find anything new either
    assert service.count("events") == events_before and len(settled(service, 2)) == 2


def test_an_annotation_saved_while_the_runtime_is_down_is_processed_once(tmp_path: Path,
                                                                       label_studio: LabelStudio) -> None:
    project, (first, second) = label_studio.project("Down and up", TEXT_CONFIG, [{"text": "a"}, {"text": "b"}])
    service = start_service(tmp_path / "runtime", "process", reconcile_interval_s=1.0)
    try:
        connect(service, label_studio, project)
        service.deploy("qa-bot", KILI_PLUGIN, project=f"label-studio-{project}")
        label_studio.annotate(first, choice("Positive"))
        settled(service, 1)
    finally:
        stop_service(service)
    # Saved while nothing listens: Label Studio's webhook fails once and is never sent again.
    missed = label_studio.annotate(second, choice("Positive"))
    again = start_service(tmp_path / "runtime", "process", reconcile_interval_s=1.0)
    try:
        found = settled(again, 2)
        assert sorted(r["asset_id"] for r in found) == [str(first), str(second)]
        wait_for(lambda: label_studio.task(second)["meta"].get("checked_by"), what="the missed annotation's meta")
        time.sleep(3)  # more looks find nothing new: processed once
        events = [r["event_id"] for r in runs(again)]
        assert events.count(f"ls-{project}-{missed['id']}-{missed['updated_at']}") == 1 and len(events) == 2
    finally:
        stop_service(again)


def test_a_personal_access_token_is_exchanged_and_connect_again_updates_the_webhook(
        service: Service, label_studio: LabelStudio) -> None:
    project, (task,) = label_studio.project("Personal token", TEXT_CONFIG, [{"text": "x"}])
    legacy = connect(service, label_studio, project)
    bot = label_studio.session(BOT[2])
    personal = bot.get(f"{label_studio.url}/api/token/", timeout=30).json()
    refresh = (bot.post(f"{label_studio.url}/api/token/", timeout=30).json()["token"] if not personal
               else pytest.fail("the bot already has a personal token"))
    again = connect(service, label_studio, project, refresh)
    assert again["token_kind"] == "personal" and again["webhook_id"] == legacy["webhook_id"]
    assert len(label_studio.webhooks(project)) == 1  # updated, not added
    listed = cli(service, "connections", "list", "--json")
    assert listed.returncode == 0 and refresh not in listed.stdout and BOT[2] not in listed.stdout
    service.deploy("qa-bot", KILI_PLUGIN, project=f"label-studio-{project}")
    label_studio.annotate(task, choice("Positive"))
    assert wait_for(lambda: label_studio.task(task)["meta"].get("people_labels")) == 1
    removed = cli(service, "connections", "remove", f"label-studio-{project}")
    assert removed.returncode == 0, removed.stderr
    assert label_studio.webhooks(project) == []
    assert json.loads(cli(service, "connections", "list", "--json").stdout) == []


def test_a_send_back_the_projects_skip_queue_would_ignore_is_refused_with_the_setting(
        service: Service, label_studio: LabelStudio) -> None:
    project, (task,) = label_studio.project("Ignore skipped", TEXT_CONFIG, [{"text": "x"}])
    label_studio.call("PATCH", f"/api/projects/{project}/", json={"skip_queue": "IGNORE_SKIPPED"})
    connect(service, label_studio, project)
    service.deploy("qa-bot", KILI_PLUGIN, project=f"label-studio-{project}")
    label_studio.annotate(task, choice("Negative"))
    [run] = settled(service, 1)
    detail = service.admin.get(f"{service.url}/v1/runs/{run['id']}", timeout=30).json()
    reasons = {a["action"]["type"]: a["reason"] for a in detail["actions"] if a["status"] == "rejected"}
    assert "'Ignore skipped'" in reasons["send_back_to_queue"] and "Requeue for others" in reasons["send_back_to_queue"]
    assert label_studio.task(task)["is_labeled"]  # nothing cancelled: the annotation counts as it was


IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="objects" toName="image"><Label value="Car"/><Label value="Person"/></RectangleLabels>
</View>"""

BOX_PLUGIN = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        [box] = label["jsonResponse"]["objects"]["annotations"]
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{
            "category": box["categories"][0]["name"], "corners": box["boundingPoly"][0]["normalizedVertices"]}])
        moved = [{"x": v["x"] + 0.1, "y": v["y"]} for v in box["boundingPoly"][0]["normalizedVertices"]]
        self.kili.append_labels(asset_id_array=[asset_id], label_type="PREDICTION", json_response_array=[{
            "objects": {"annotations": [{"categories": [{"name": "Person"}], "type": "rectangle",
                                         "boundingPoly": [{"normalizedVertices": moved}]}]}}])
'''


def test_rectangles_reach_a_plugin_in_kilis_shape_and_its_prediction_comes_back(
        service: Service, label_studio: LabelStudio) -> None:
    project, (task,) = label_studio.project("Images", IMAGE_CONFIG, [{"image": "/static/images/logo.png"}])
    connect(service, label_studio, project)
    service.deploy("boxes", BOX_PLUGIN, project=f"label-studio-{project}")
    label_studio.annotate(task, [{"id": "box1", "from_name": "objects", "to_name": "image", "type": "rectanglelabels",
                                  "original_width": 400, "original_height": 200,
                                  "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0,
                                            "rectanglelabels": ["Car"]}}])
    settled(service, 1)
    meta = label_studio.task(task)["meta"]
    assert meta["category"] == "Car"
    assert meta["corners"] == [{"x": 0.1, "y": 0.6}, {"x": 0.1, "y": 0.2}, {"x": 0.4, "y": 0.2}, {"x": 0.4, "y": 0.6}]
    [prediction] = label_studio.call("GET", "/api/predictions/", params={"task": task})
    [region] = prediction["result"]
    assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == ["Person"]
    assert {k: round(region["value"][k], 6) for k in ("x", "y", "width", "height")} == {
        "x": 20.0, "y": 20.0, "width": 30.0, "height": 40.0}
