"""Plugins written the way Kili users write them (``from kili.plugins import PluginCore``, a
folder of modules with a requirements.txt, reads of the project, JSON-string metadata), run end
to end as the README says: ``plugins upload`` to a service running them in Docker, labels
submitted with ``labels submit``, signed webhooks, then the platform's state; and the same
box checker through ``dry-run --sandbox docker`` on the events the service exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin_sdk.testing import dry_run
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

pytestmark = pytest.mark.docker

BBOX_MAIN = '''
import json
from typing import Dict

from kili.plugins import PluginCore

from rules import box_problems
from settings import JOB, MAX_ISSUES


class PluginHandler(PluginCore):
    """Checks the boxes of each submitted label and sends bad work back."""

    def on_submit(self, label: Dict, asset_id: str) -> None:
        annotations = label["jsonResponse"].get(JOB, {}).get("annotations", [])
        problems = box_problems(annotations)[:MAX_ISSUES]
        self.logger.info(f"asset {asset_id}: {len(annotations)} boxes, {len(problems)} problems")
        if problems:
            self.kili.create_issues(
                project_id=self.project_id,
                label_id_array=[label["id"]] * len(problems),
                object_mid_array=[mid for mid, _ in problems],
                text_array=[text for _, text in problems],
            )
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.update_properties_in_assets(
            asset_ids=[asset_id],
            json_metadatas=[json.dumps({"boxes": len(annotations), "problems": len(problems)})],
        )
'''

BBOX_RULES = '''
import numpy as np

from settings import MIN_AREA


def area(annotation):
    points = np.array([[v["x"], v["y"]] for v in annotation["boundingPoly"][0]["normalizedVertices"]])
    width, height = points.max(axis=0) - points.min(axis=0)
    return float(width * height)


def box_problems(annotations):
    problems = []
    for annotation in annotations:
        if not annotation.get("categories"):
            problems.append((annotation["mid"], "Box without a class"))
        elif area(annotation) < MIN_AREA:
            problems.append((annotation["mid"], f"Box too small ({area(annotation):.4f})"))
    return problems
'''

BBOX_SETTINGS = '''
JOB = "OBJECT_DETECTION_JOB"
MIN_AREA = 0.001
MAX_ISSUES = 10
'''

CLICKER = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_custom_interface_click(self, label, asset_id):
        print(f"button clicked on {asset_id}")
        self.kili.create_predictions(project_id=self.project_id, asset_id_array=[asset_id],
                                     json_response_array=[{"CLASSIFICATION_JOB": {"categories": [{"name": "CAT"}]}}],
                                     model_name="assistant")
        self.kili.set_assets_priority(priority=5, asset_ids=[asset_id], project_id=self.project_id)

    def on_send_back_to_queue(self, asset_id):
        self.logger.info("sent back: %s", asset_id)
'''

CONSENSUS = '''
from kili.plugins import PluginCore

JOB = "CLASSIFICATION_JOB"


def category(json_response):
    categories = json_response.get(JOB, {}).get("categories", [])
    return categories[0]["name"] if categories else None


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        labels = self.kili.labels(
            project_id=self.project_id,
            asset_id=asset_id,
            type_in=["DEFAULT"],
            fields=["id", "jsonResponse", "isLatestLabelForUser", "createdAt"],
            disable_tqdm=True,
        )
        latest = [l for l in labels if l["isLatestLabelForUser"]]
        if len(latest) < 2:
            self.logger.info("waiting for a second labeler")
            return
        votes = {category(l["jsonResponse"]) for l in latest}
        if len(votes) == 1:
            self.kili.append_labels(
                asset_id_array=[asset_id],
                json_response_array=[{JOB: {"categories": [{"name": votes.pop(), "confidence": 100}]}}],
                label_type="REVIEW",
                project_id=self.project_id,
            )
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"consensus": "agreed"}])
        else:
            self.kili.add_to_review(asset_ids=[asset_id], project_id=self.project_id)
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"consensus": "disagreed"}])
'''

REVIEW_FEEDBACK = '''
from kili.plugins import PluginCore

JOB = "CLASSIFICATION_JOB"


def names(json_response):
    return sorted(c["name"] for c in json_response.get(JOB, {}).get("categories", []))


class PluginHandler(PluginCore):
    def on_review(self, label, asset_id):
        reviewed = self.kili.labels(project_id=self.project_id, asset_id=asset_id, type_in=["DEFAULT"],
                                    fields=["id", "jsonResponse", "authorId"])
        if not reviewed:
            self.logger.warning("nothing to compare with")
            return
        last = reviewed[-1]
        score = 100.0 if names(label["jsonResponse"]) == names(last["jsonResponse"]) else 0.0
        asset = self.kili.assets(project_id=self.project_id, asset_id=asset_id, fields=["jsonMetadata"])[0]
        self.kili.update_properties_in_assets(asset_ids=[asset_id],
                                              json_metadatas=[{**asset["jsonMetadata"], "reviewScore": score}])
        if score < 100:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[last["id"]],
                                    text_array=[f"Reviewer chose {names(label['jsonResponse'])}"])
'''

INIT_READER = '''
from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def __init__(self, kili, project_id):
        super().__init__(kili, project_id)
        project = kili.projects(project_id=project_id, fields=["jsonInterface", "title"])[0]
        self.jobs = sorted(project["jsonInterface"]["jobs"])

    def on_submit(self, label, asset_id):
        missing = [job for job in self.jobs if job not in label["jsonResponse"]]
        if missing:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=[f"Missing job {', '.join(missing)}"])

    def on_project_updated(self, settings_updated):
        for setting in settings_updated:
            if setting["key"] == "jsonInterface":
                self.jobs = sorted(setting["newValue"]["jobs"])
        self.logger.info(f"jobs now {self.jobs}")
'''

CATEGORIES = {"input": "radio", "categories": {"CAT": {"name": "Cat"}, "DOG": {"name": "Dog"}}}
INTERFACE = {"jobs": {
    "CLASSIFICATION_JOB": {"mlTask": "CLASSIFICATION", "required": 1, "isChild": False, "content": CATEGORIES},
    "OBJECT_DETECTION_JOB": {"mlTask": "OBJECT_DETECTION", "required": 0, "isChild": False, "tools": ["rectangle"],
                             "content": CATEGORIES},
}}


def box(mid: str, categories: list[str], corner: float) -> dict:
    vertices = [{"x": 0.1, "y": corner}, {"x": 0.1, "y": 0.1}, {"x": corner, "y": 0.1}, {"x": corner, "y": corner}]
    return {"mid": mid, "type": "rectangle", "categories": [{"name": c} for c in categories],
            "boundingPoly": [{"normalizedVertices": vertices}]}


BAD_BOXES = {"CLASSIFICATION_JOB": {"categories": [{"name": "CAT"}]},
             "OBJECT_DETECTION_JOB": {"annotations": [box("m1", ["CAT"], 0.5), box("m2", [], 0.5),
                                                      box("m3", ["DOG"], 0.11)]}}


def write_plugin(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user-plugins")
    write_plugin(root, "bbox_qa", {"main.py": BBOX_MAIN, "rules.py": BBOX_RULES, "settings.py": BBOX_SETTINGS,
                                   "requirements.txt": "numpy\n"})
    write_plugin(root, "clicker", {"main.py": CLICKER})
    write_plugin(root, "consensus", {"main.py": CONSENSUS})
    write_plugin(root, "review_feedback", {"main.py": REVIEW_FEEDBACK})
    write_plugin(root, "init_reader", {"main.py": INIT_READER})
    return root


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, plugins: Path):
    running = start_service(tmp_path_factory.mktemp("user-service") / "data", "docker")
    for folder in sorted(plugins.iterdir()):
        name = folder.name.replace("_", "-")
        done = running.cli("plugins", "upload", str(folder), "--name", name)
        assert done.returncode == 0, done.stdout + done.stderr
    yield running
    stop_service(running)


def cli(service: Service, *args: str) -> str:
    done = service.cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def setup_project(service: Service, project: str, plugins: list[str], assets: list[str]) -> None:
    cli(service, "projects", "create", project, "--title", project, "--json-interface", json.dumps(INTERFACE))
    for asset in assets:
        cli(service, "assets", "create", "--project", project, "--id", asset, "--external-id", f"{asset}.jpg",
            "--metadata", json.dumps({"source": "camera-1"}))
    for plugin in plugins:
        cli(service, "plugins", "activate", plugin, "--project", project)


def submit(service: Service, project: str, asset: str, response: dict, author: str, kind: str = "DEFAULT") -> str:
    out = json.loads(cli(service, "labels", "submit", "--project", project, "--asset", asset, "--json-response",
                         json.dumps(response), "--author", author, "--type", kind, "--json"))
    service.settle(300)
    return out["label"]["id"]


def asset(service: Service, project: str, asset_id: str) -> dict:
    response = service.admin.get(f"{service.url}/v1/projects/{project}/assets/{asset_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def runs(service: Service, plugin: str) -> list[dict]:
    listed = json.loads(cli(service, "runs", "list", "--plugin", plugin, "--json"))
    return [json.loads(cli(service, "runs", "show", run["id"], "--json")) for run in reversed(listed)]


def log_lines(run: dict) -> list[str]:
    return [log["message"] for log in run["logs"]]


def cat(name: str) -> dict:
    return {"CLASSIFICATION_JOB": {"categories": [{"name": name}]}}


def test_a_box_checker_folder_with_numpy_sends_bad_work_back_with_issues_on_the_boxes(service: Service) -> None:
    setup_project(service, "proj-boxes", ["bbox-qa", "clicker"], ["box-1", "box-2"])
    label_id = submit(service, "proj-boxes", "box-1", BAD_BOXES, "alice@example.com")
    submit(service, "proj-boxes", "box-2", {**cat("DOG"), "OBJECT_DETECTION_JOB": {"annotations": [
        box("m9", ["DOG"], 0.6)]}}, "bob@example.com")
    bad, good = asset(service, "proj-boxes", "box-1"), asset(service, "proj-boxes", "box-2")
    assert bad["status"] == "ONGOING" and good["status"] == "LABELED"
    assert bad["jsonMetadata"] == {"boxes": 3, "problems": 2}  # the JSON string, replacing the metadata
    assert good["jsonMetadata"] == {"boxes": 1, "problems": 0}
    assert sorted((i["labelId"], i["objectMid"], i["text"], i["status"]) for i in bad["issues"]) == [
        (label_id, "m2", "Box without a class", "OPEN"), (label_id, "m3", "Box too small (0.0001)", "OPEN")]
    assert good["issues"] == []
    checks = runs(service, "bbox-qa")
    assert [log_lines(run) for run in checks] == [["asset box-1: 3 boxes, 2 problems"],
                                                   ["asset box-2: 1 boxes, 0 problems"]]
    # The send-back reached the plugin with on_send_back_to_queue, once, with its cause.
    [sent_back] = runs(service, "clicker")
    assert sent_back["status"] == "succeeded" and log_lines(sent_back) == ["sent back: box-1"]


def test_a_custom_interface_click_pre_annotates_and_raises_the_priority(service: Service) -> None:
    setup_project(service, "proj-click", ["clicker"], ["click-1"])
    event = {"id": "click-event-1", "type": "onCustomInterfaceClick", "project_id": "proj-click",
             "asset_id": "click-1", "label": {"id": "label-click-draft", "labelType": "AUTOSAVE", "jsonResponse": {}}}
    assert service.post_event(event).status_code == 202
    service.settle(300)
    state = asset(service, "proj-click", "click-1")
    assert state["priority"] == 5
    assert [(label["labelType"], label["modelName"], label["jsonResponse"]) for label in state["labels"]
            if label["labelType"] == "PREDICTION"] == [("PREDICTION", "assistant", cat("CAT"))]
    [click] = [run for run in runs(service, "clicker") if run["event_id"] == "click-event-1"]
    assert log_lines(click) == ["button clicked on click-1"]


def test_consensus_of_two_labelers_then_a_review_scored_against_their_labels(service: Service) -> None:
    setup_project(service, "proj-votes", ["consensus", "review-feedback"], ["vote-1", "vote-2"])
    # Two labelers agree: the consensus becomes a REVIEW label, whose review is scored.
    submit(service, "proj-votes", "vote-1", cat("CAT"), "alice@example.com")
    submit(service, "proj-votes", "vote-1", cat("CAT"), "bob@example.com")
    agreed = asset(service, "proj-votes", "vote-1")
    assert agreed["jsonMetadata"] == {"consensus": "agreed", "reviewScore": 100.0}
    assert [(label["labelType"], label["jsonResponse"]) for label in agreed["labels"]][-1] == (
        "REVIEW", {"CLASSIFICATION_JOB": {"categories": [{"name": "CAT", "confidence": 100}]}})
    assert agreed["issues"] == []
    # They disagree: to review; a reviewer's choice against the last labeler's is an issue on it.
    submit(service, "proj-votes", "vote-2", cat("CAT"), "alice@example.com")
    bobs = submit(service, "proj-votes", "vote-2", cat("DOG"), "bob@example.com")
    assert asset(service, "proj-votes", "vote-2")["status"] == "TO_REVIEW"
    submit(service, "proj-votes", "vote-2", cat("CAT"), "reviewer@example.com", kind="REVIEW")
    disputed = asset(service, "proj-votes", "vote-2")
    assert disputed["jsonMetadata"] == {"consensus": "disagreed", "reviewScore": 0.0}
    assert [(i["labelId"], i["text"]) for i in disputed["issues"]] == [(bobs, "Reviewer chose ['CAT']")]
    assert [log_lines(run) for run in runs(service, "consensus")] == [
        ["waiting for a second labeler"], [], ["waiting for a second labeler"], []]


def test_a_plugin_reading_the_ontology_in_its_init_follows_the_projects_updates(service: Service) -> None:
    setup_project(service, "proj-ontology", ["init-reader"], ["onto-1"])
    first = submit(service, "proj-ontology", "onto-1", cat("CAT"), "alice@example.com")
    only_classification = {"jobs": {"CLASSIFICATION_JOB": INTERFACE["jobs"]["CLASSIFICATION_JOB"]}}
    cli(service, "projects", "update", "proj-ontology", "--json-interface", json.dumps(only_classification))
    service.settle(300)
    submit(service, "proj-ontology", "onto-1", cat("DOG"), "alice@example.com")
    state = asset(service, "proj-ontology", "onto-1")
    assert [(i["labelId"], i["text"]) for i in state["issues"]] == [(first, "Missing job OBJECT_DETECTION_JOB")]
    updated = [run for run in runs(service, "init-reader") if log_lines(run)]
    assert [log_lines(run) for run in updated] == [["jobs now ['CLASSIFICATION_JOB']"]]
    assert all(run["status"] == "succeeded" for run in runs(service, "init-reader"))


def test_the_box_checker_replays_the_services_events_in_a_docker_dry_run_to_the_same_actions(
        service: Service, plugins: Path, tmp_path: Path) -> None:
    setup_project(service, "proj-replay", ["bbox-qa"], ["replay-1"])
    submit(service, "proj-replay", "replay-1", BAD_BOXES, "alice@example.com")
    [live] = runs(service, "bbox-qa")[-1:]
    applied = [a["action"] for a in live["actions"]]
    # The service's events, exported, replayed in the image the service runs.
    exported = tmp_path / "recorded.jsonl"
    cli(service, "events", "export", "--project", "proj-replay", "-o", str(exported))
    replays = dry_run(plugins / "bbox_qa", exported, sandbox="docker")
    [replayed] = [r for r in replays if r["event_id"] == live["event_id"]]
    assert all(r["skipped"] for r in replays if r is not replayed), replays  # the send-back it caused has no hook
    assert replayed["status"] == "ok", replayed["error"]
    assert replayed["actions"] == applied
