"""Tests of the consensus resolution bot, through ``plugin_sdk.testing`` and the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk.metrics import consensus_mark
from plugin_sdk.testing import dry_run, load_events, load_plugin, make_event, make_label

FOLDER = Path(__file__).resolve().parent
INTERFACE = {"jobs": {
    "OBJECT_DETECTION_JOB": {"mlTask": "OBJECT_DETECTION", "tools": ["rectangle"], "isChild": False,
                             "content": {"input": "radio", "categories": {
                                 "CAR": {"name": "Car"}, "TRUCK": {"name": "Truck"}, "BUS": {"name": "Bus"}}}},
    "WEATHER_JOB": {"mlTask": "CLASSIFICATION", "isChild": False, "content": {
        "input": "radio", "categories": {"SUNNY": {"name": "Sunny"}, "RAINY": {"name": "Rainy"}}}},
}}


def rect(mid: str, category: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"mid": mid, "type": "rectangle", "categories": [{"name": category}], "children": {},
            "boundingPoly": [{"normalizedVertices": [
                {"x": x0, "y": y1}, {"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1}]}]}


def merged(mid: str, category: str, confidence: int, x0: float, y0: float, x1: float, y1: float) -> dict:
    annotation = rect(mid, category, x0, y0, x1, y1)
    annotation["categories"][0]["confidence"] = confidence
    return annotation


def labeled(author: str, minute: int, boxes: list[dict] | None, weather: str = "SUNNY", **extra) -> dict:
    response: dict = {"WEATHER_JOB": {"categories": [{"name": weather}]}}
    if boxes is not None:
        response["OBJECT_DETECTION_JOB"] = {"annotations": boxes}
    return make_label(response, id=f"label-{author}-{minute}", author_id=author,
                      created_at=f"2026-11-20T10:{minute:02d}:00Z", **extra)


def consensus_event(labels: list[dict], size: int | None = 2, metadata: dict | None = None) -> dict:
    project: dict = {"jsonInterface": INTERFACE}
    if size is not None:
        project["minConsensusSize"] = size
    submitted = max((l for l in labels if l["labelType"] == "DEFAULT"), key=lambda l: l["createdAt"])
    return make_event("onSubmit", label=submitted, labels=labels, asset_id="asset-7",
                      asset={"jsonMetadata": metadata or {}}, project=project)


@pytest.fixture
def plugin():
    return load_plugin(FOLDER)


def test_waits_until_every_consensus_label_is_in(plugin):
    result = plugin.run(consensus_event([labeled("ana", 1, [rect("a", "CAR", 0.1, 0.1, 0.3, 0.3)])]))
    assert result.status == "ok"
    assert result.actions == []
    assert [log.message for log in result.logs] == ["Asset asset-7: 1 of 2 consensus labels in, waiting"]


def test_the_project_consensus_size_is_read(plugin):
    labels = [labeled("ana", 1, []), labeled("ben", 2, [])]
    assert plugin.run(consensus_event(labels, size=3)).actions == []
    # A project that does not say waits for 2 labelers.
    assert [a.type for a in plugin.run(consensus_event(labels, size=None)).actions] == [
        "update_asset", "add_to_review"]


def test_two_agreeing_labelers_are_merged_for_review(plugin):
    labels = [
        labeled("ana", 1, [rect("a1", "CAR", 0.1, 0.5, 0.3, 0.7), rect("a2", "BUS", 0.5, 0.1, 0.9, 0.4)]),
        labeled("ben", 2, [rect("b1", "BUS", 0.52, 0.12, 0.9, 0.42), rect("b2", "CAR", 0.12, 0.52, 0.32, 0.72)]),
    ]
    result = plugin.run(consensus_event(labels, metadata={"camera": "cam-1"}))
    assert result.status == "ok"
    assert [a.type for a in result.actions] == ["append_label", "update_asset", "add_to_review"]
    proposal, update, review = result.actions
    assert proposal.asset_id == "asset-7"
    assert (proposal.label_type, proposal.model_name) == ("PREDICTION", "consensus-resolution")
    assert proposal.json_response == {"OBJECT_DETECTION_JOB": {"annotations": [
        merged("consensus-1", "CAR", 100, 0.11, 0.51, 0.31, 0.71),
        merged("consensus-2", "BUS", 100, 0.51, 0.11, 0.9, 0.41),
    ]}}
    mark = consensus_mark(labels, INTERFACE)
    assert mark == pytest.approx(0.8382, abs=1e-4)
    assert update.json_metadata == {"camera": "cam-1", "consensusMark": round(mark, 4)}
    assert update.priority is None
    assert review.asset_id == "asset-7"


def test_low_agreement_opens_an_issue_on_the_latest_label(plugin):
    labels = [
        labeled("ana", 1, [rect("a1", "CAR", 0.2, 0.3, 0.45, 0.6), rect("a2", "BUS", 0.6, 0.2, 0.95, 0.7)], "RAINY"),
        labeled("ben", 5, [rect("b1", "TRUCK", 0.21, 0.32, 0.44, 0.61)], "SUNNY"),
    ]
    result = plugin.run(consensus_event(labels))
    assert [a.type for a in result.actions] == ["append_label", "update_asset", "create_issue", "add_to_review"]
    # The class tie (CAR, TRUCK) goes to the first name; the bus only ana drew is left out.
    assert result.actions[0].json_response == {"OBJECT_DETECTION_JOB": {"annotations": [
        merged("consensus-1", "CAR", 50, 0.205, 0.31, 0.445, 0.605)]}}
    assert result.actions[1].json_metadata == {"consensusMark": 0.0}
    [issue] = result.actions_of("create_issue")
    assert issue.label_id == "label-ben-5"
    assert issue.text == ("Low consensus: mark 0.00 among 2 labelers (below 0.7); compare with the "
                          "consensus-resolution proposal")


def test_three_labelers_vote_on_classes_and_boxes(plugin):
    labels = [
        labeled("ana", 1, [rect("a1", "CAR", 0.1, 0.1, 0.4, 0.4), rect("a2", "BUS", 0.5, 0.5, 0.9, 0.9)]),
        labeled("ben", 2, [rect("b1", "CAR", 0.1, 0.1, 0.4, 0.4), rect("b2", "BUS", 0.5, 0.5, 0.9, 0.9)]),
        labeled("cid", 3, [rect("c1", "TRUCK", 0.1, 0.1, 0.4, 0.4), rect("c2", "CAR", 0.0, 0.8, 0.1, 0.95)]),
    ]
    result = plugin.run(consensus_event(labels, size=3))
    assert result.actions[0].json_response == {"OBJECT_DETECTION_JOB": {"annotations": [
        merged("consensus-1", "CAR", 67, 0.1, 0.1, 0.4, 0.4),
        merged("consensus-2", "BUS", 67, 0.5, 0.5, 0.9, 0.9),
    ]}}
    assert result.actions[1].json_metadata == {"consensusMark": round(consensus_mark(labels, INTERFACE), 4)}


def test_a_cluster_holds_at_most_one_box_per_labeler(plugin):
    # ana drew the same car twice; ben once. ben's box pairs with ana's closer box only, and
    # ana's other box, alone in its cluster, is no majority.
    labels = [
        labeled("ana", 1, [rect("a1", "CAR", 0.1, 0.1, 0.5, 0.5), rect("a2", "CAR", 0.12, 0.12, 0.5, 0.5)]),
        labeled("ben", 2, [rect("b1", "CAR", 0.1, 0.1, 0.5, 0.5)]),
    ]
    result = plugin.run(consensus_event(labels))
    assert result.actions[0].json_response == {"OBJECT_DETECTION_JOB": {"annotations": [
        merged("consensus-1", "CAR", 100, 0.1, 0.1, 0.5, 0.5)]}}


def test_boxes_below_the_iou_threshold_are_not_merged(plugin):
    labels = [labeled("ana", 1, [rect("a", "CAR", 0.0, 0.0, 0.4, 0.4)]),
              labeled("ben", 2, [rect("b", "CAR", 0.2, 0.0, 0.6, 0.4)])]  # IoU 1/3
    result = plugin.run(consensus_event(labels))
    assert result.actions[0].json_response == {"OBJECT_DETECTION_JOB": {"annotations": []}}


def test_merges_once_unless_a_label_is_newer(plugin):
    labels = [labeled("ana", 1, [rect("a", "CAR", 0.1, 0.1, 0.3, 0.3)]),
              labeled("ben", 2, [rect("b", "CAR", 0.1, 0.1, 0.3, 0.3)])]
    done = make_label({}, id="merge-1", label_type="PREDICTION", author_id=None,
                      created_at="2026-11-20T10:03:00Z", modelName="consensus-resolution")
    other_model = {**done, "id": "pre-1", "modelName": "yolo-v8"}
    result = plugin.run(consensus_event([*labels, done]))
    assert result.actions == []
    assert "already merged" in result.logs[-1].message
    assert plugin.run(consensus_event([*labels, other_model])).actions != []
    # ben resubmits after the merge: merged again.
    again = plugin.run(consensus_event([*labels, done, labeled("ben", 9, [rect("b", "BUS", 0.1, 0.1, 0.3, 0.3)])]))
    assert [a.type for a in again.actions] == ["append_label", "update_asset", "create_issue", "add_to_review"]


def test_labels_without_boxes_or_with_odd_data_are_skipped_not_fatal(plugin):
    broken = rect("x", "CAR", 0.1, 0.1, 0.2, 0.2)
    broken["boundingPoly"][0]["normalizedVertices"][0]["x"] = "left"
    labels = [
        labeled("ana", 1, None),  # no object-detection job at all
        labeled("ben", 2, [broken, {"mid": "p", "type": "polygon"}, rect("n", "CAR", 0.3, 0.3, 0.3, 0.5)]),
    ]
    result = plugin.run(consensus_event(labels, metadata={"camera": "cam-2"}))
    assert result.status == "ok"
    # No proposal (no valid box to merge); the malformed box scores 0 against nothing, so the
    # mark is low: it is written, an issue is opened, the asset goes to review.
    assert [a.type for a in result.actions] == ["update_asset", "create_issue", "add_to_review"]
    metadata = result.actions[0].json_metadata
    assert metadata["camera"] == "cam-2" and metadata["consensusMark"] < plugin.plugin.AGREEMENT_THRESHOLD
    messages = [log.message for log in result.logs]
    assert "Asset asset-7: ana has no OBJECT_DETECTION_JOB annotations" in messages
    assert "Asset asset-7: no object-detection box to merge" in messages

    odd = [labeled("ana", 1, None), make_label(None, author_id="ben", created_at="2026-11-20T10:02:00Z")]
    odd[1]["jsonResponse"] = {"OBJECT_DETECTION_JOB": {"annotations": "oops"}}
    result = plugin.run(consensus_event(odd))
    assert result.status == "ok"
    assert [a.type for a in result.actions] == ["update_asset", "create_issue", "add_to_review"]


def test_an_event_without_context_is_logged_and_skipped(plugin):
    result = plugin.run(make_event("onSubmit", json_response={}, context=False))
    assert result.status == "ok"
    assert result.actions == []
    assert "cannot read its labels" in result.logs[0].message


def test_the_shipped_events_carry_their_asset_labels_and_project():
    for event in load_events(FOLDER / "events.jsonl"):
        asset, project = event["context"]["asset"], event["context"]["project"]
        assert asset["id"] == event["asset_id"]
        assert event["label"] in asset["labels"]
        assert project["id"] == event["project_id"] and project["jsonInterface"]["jobs"]


def test_recorded_events_dry_run_through_the_cli():
    results = dry_run(FOLDER, FOLDER / "events.jsonl")
    assert all(r["status"] == "ok" for r in results)
    # In input order, each event with the types of its actions.
    assert [(r["event_id"], [a["type"] for a in r["actions"]]) for r in results] == list({
        "evt-cr-0001": [],  # 1 of 2 labelers
        "evt-cr-0002": ["append_label", "update_asset", "add_to_review"],
        "evt-cr-0003": ["append_label", "update_asset", "create_issue", "add_to_review"],
        "evt-cr-0004": ["append_label", "update_asset", "create_issue", "add_to_review"],  # 3 labelers
        "evt-cr-0005": [],  # 2 of 3 labelers
        "evt-cr-0006": [],  # already merged
        "evt-cr-0007": ["update_asset", "create_issue", "add_to_review"],  # nothing to merge
        "evt-cr-0008": ["append_label", "update_asset", "add_to_review"],  # merged again
    }.items())
    by_id = {r["event_id"]: r for r in results}
    assert by_id["evt-cr-0002"]["actions"][1]["json_metadata"] == {
        "camera": "cam-12", "capturedAt": "2026-11-19T17:42:00Z", "consensusMark": 0.9038}
    categories = [a["categories"][0] for a in
                  by_id["evt-cr-0004"]["actions"][0]["json_response"]["OBJECT_DETECTION_JOB"]["annotations"]]
    assert categories == [{"name": "CAR", "confidence": 67}, {"name": "BUS", "confidence": 67}]
