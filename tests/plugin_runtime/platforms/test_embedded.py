"""The embedded platform on a real SQLite file: state changes as a labeling platform makes
them, and quality marks computed as labels arrive."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_runtime.applier import policy
from plugin_runtime.platforms.embedded import EmbeddedPlatform, PlatformError
from plugin_runtime.store import Store

COLORS = {"jobs": {"COLOR": {"mlTask": "CLASSIFICATION", "content": {"input": "radio", "categories": {
    "WHITE": {"name": "White"}, "BLACK": {"name": "Black"}, "RED": {"name": "Red"}, "BLUE": {"name": "Blue"}}}}}}


def color(name: str) -> dict:
    return {"COLOR": {"categories": [{"name": name}]}}


@pytest.fixture()
def platform(tmp_path: Path):
    store = Store(tmp_path / "db.sqlite")
    embedded = EmbeddedPlatform(store)
    with store.write() as db:
        embedded.create_project(db, "proj", json_interface=COLORS)
        embedded.create_asset(db, "proj", {"id": "car-1", "externalId": "car-1.jpg", "jsonMetadata": {"kept": True}})
    yield embedded, store
    store.close()


def asset(platform, asset_id: str = "car-1") -> dict:
    embedded, store = platform
    return embedded.asset(store.read(), "proj", asset_id)


def test_submissions_and_actions_move_the_asset_as_the_platform_does(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        event = embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("RED"), "authorId": "ana"})
    assert event["type"] == "onSubmit" and asset(platform)["status"] == "LABELED"
    with store.write() as db:
        emitted = embedded.apply_in(db, "run-1", [
            {"type": "update_asset", "asset_id": "car-1", "json_metadata": {"replaced": 1}, "priority": 7},
            {"type": "send_back_to_queue", "asset_id": "car-1"},
            {"type": "create_issue", "asset_id": "car-1", "label_id": event["label"]["id"], "text": "why red?",
             "object_mid": None},
        ])
    state = asset(platform)
    assert state["status"] == "ONGOING" and state["priority"] == 7
    assert state["jsonMetadata"] == {"replaced": 1}  # replaced, as Kili does
    assert [(i["text"], i["status"]) for i in state["issues"]] == [("why red?", "OPEN")]
    assert [e["type"] for e in emitted] == ["onSendBackToQueue"]
    with store.write() as db:
        embedded.apply_in(db, "run-2", [{"type": "add_to_review", "asset_id": "car-1"}])
        review = embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("RED"), "labelType": "REVIEW"})
    assert review["type"] == "onReview" and asset(platform)["status"] == "REVIEWED"


def test_the_inference_mark_follows_the_seed_flow(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        embedded.apply_in(db, "run", [{"type": "append_label", "asset_id": "car-1", "json_response": color("WHITE"),
                                    "label_type": "INFERENCE", "model_name": "model-v1"}])
        embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("WHITE"), "authorId": "ana"})
    assert asset(platform)["inferenceMark"] == 1.0
    with store.write() as db:
        embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("BLACK"), "authorId": "ana"})
    state = asset(platform)
    assert 0 < state["inferenceMark"] < 1  # 0.5 on a 4-class radio job
    [human] = [l for l in state["labels"] if l["labelType"] == "DEFAULT" and l["jsonResponse"] == color("BLACK")]
    assert human["inferenceMark"] == state["inferenceMark"]


def test_consensus_and_honeypot_marks(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("RED"), "authorId": "ana"})
    assert asset(platform)["consensusMark"] is None  # one labeler: no consensus yet
    with store.write() as db:
        embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("RED"), "authorId": "bob"})
    assert asset(platform)["consensusMark"] == 1.0
    with store.write() as db:
        embedded.submit_label(db, "proj", "car-1", {"jsonResponse": color("BLUE"), "authorId": "bob"})
    assert asset(platform)["consensusMark"] < 1.0  # bob's latest label now disagrees
    with store.write() as db:
        embedded.apply_in(db, "run", [{"type": "update_asset", "asset_id": "car-1", "is_honeypot": True},
                                   {"type": "append_label", "asset_id": "car-1", "json_response": color("RED"),
                                    "label_type": "REVIEW", "model_name": None}])
    marks = {l["authorId"]: l["honeypotMark"] for l in asset(platform)["labels"] if l["labelType"] == "DEFAULT"}
    assert asset(platform)["honeypotMark"] == pytest.approx((1.0 + marks["bob"]) / 2)


def test_an_event_for_another_projects_asset_is_refused(platform) -> None:
    embedded, store = platform
    event = {"id": "e", "type": "onSubmit", "project_id": "other", "asset_id": "car-1",
             "label": {"id": "l-x", "jsonResponse": {}}}
    with pytest.raises(PlatformError, match="belongs to another project"), store.write() as db:
        embedded.ingest(db, event)
    assert asset(platform)["labels"] == []


def test_checks_name_what_is_wrong(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        embedded.create_project(db, "other")
        embedded.create_asset(db, "other", {"id": "theirs"})
        label = embedded.submit_label(db, "other", "theirs", {"jsonResponse": {}})["label"]
    # The applier's policy over what the platform knows of the records the actions name.
    actions = [
        {"type": "add_to_review", "asset_id": "theirs"},
        {"type": "add_to_review", "asset_id": "ghost"},
        {"type": "create_issue", "asset_id": "car-1", "label_id": label["id"], "text": "x"},
        {"type": "update_asset", "asset_id": "car-1", "json_metadata": {"x": "y" * 70_000}},
        {"type": "add_to_review", "asset_id": "car-1"},
    ]
    facts = embedded.facts(*policy.named(actions))
    reasons = [policy.refusal(action, "proj", facts) for action in actions]
    assert "another project" in reasons[0] and "does not exist" in reasons[1]
    assert "another asset" in reasons[2] and "over the limit" in reasons[3] and reasons[4] is None
