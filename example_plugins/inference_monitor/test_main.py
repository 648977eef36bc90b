"""Tests of the inference monitor bot, through ``plugin_sdk.testing`` and the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk.testing import dry_run, load_events, load_plugin, make_event, make_label

FOLDER = Path(__file__).resolve().parent
# The project of Kili's inference-labels recipe: one 4-color radio job.
INTERFACE = {"jobs": {"CLASSIFICATION_JOB": {
    "mlTask": "CLASSIFICATION", "required": 0, "isChild": False, "instruction": "Color",
    "content": {"input": "radio", "categories": {
        "RED": {"name": "Red"}, "BLACK": {"name": "Black"}, "WHITE": {"name": "White"}, "GREY": {"name": "Grey"}}},
}}}


def color(*names: str) -> dict:
    return {"CLASSIFICATION_JOB": {"categories": [{"name": n} for n in names]}}


def model(*names: str, id: str = "inf-1", hour: int = 8, **extra) -> dict:
    return make_label(color(*names), id=id, label_type="INFERENCE", author_id="ml-pipeline",
                      created_at=f"2026-11-20T{hour:02d}:00:00Z", modelName="color-model-v1", **extra)


def human(*names: str, id: str = "human-1") -> dict:
    return make_label(color(*names) if names else {}, id=id, author_id="maya", created_at="2026-11-20T09:00:00Z")


def submit(label: dict, models: list[dict], metadata: dict | None = None, priority: int = 0,
           interface: dict | None = INTERFACE) -> dict:
    return make_event("onSubmit", label=label, labels=[*models, label], asset_id="black_car",
                      asset={"jsonMetadata": metadata or {}, "priority": priority},
                      project={"jsonInterface": interface} if interface else {})


@pytest.fixture
def plugin():
    return load_plugin(FOLDER)


def test_model_white_human_black_is_flagged(plugin):
    result = plugin.run(submit(human("BLACK"), [model("WHITE")], metadata={"source": "production"}))
    assert result.status == "ok"
    assert [a.type for a in result.actions] == ["update_asset", "create_issue", "add_to_review"]
    update, issue, review = result.actions
    # One update: metadata (merged) and priority together.
    assert update.json_metadata == {"source": "production", "inferenceMark": 0.5}
    assert update.priority == 50
    assert (issue.asset_id, issue.label_id, issue.object_mid) == ("black_car", "human-1", None)
    assert issue.text == ("Model and human disagree (inference mark 0.50, below 0.8): "
                          "model predicted WHITE, human BLACK on CLASSIFICATION_JOB")
    assert review.asset_id == "black_car"


def test_agreement_only_writes_the_mark(plugin):
    result = plugin.run(submit(human("GREY"), [model("GREY")], metadata={"source": "production"}))
    assert [a.model_dump(exclude_none=True) for a in result.actions] == [{
        "type": "update_asset", "asset_id": "black_car",
        "json_metadata": {"source": "production", "inferenceMark": 1.0},
    }]
    assert result.logs[-1].message == "Asset black_car: inference mark 1.00 against inf-1 (color-model-v1)"


def test_the_latest_inference_label_is_compared(plugin):
    models = [model("BLACK", id="inf-new", hour=7), model("WHITE", id="inf-old", hour=5)]
    result = plugin.run(submit(human("BLACK"), models))
    assert [a.type for a in result.actions] == ["update_asset"]
    assert result.actions[0].json_metadata == {"inferenceMark": 1.0}


def test_priority_is_raised_never_lowered(plugin):
    low = plugin.run(submit(human("RED"), [model("BLACK")], priority=80))
    assert low.actions[0].priority == 80
    missing = plugin.run(submit(human(), [model("GREY")], priority=3))
    assert missing.actions[0].priority == 100
    assert missing.actions[0].json_metadata == {"inferenceMark": 0.0}
    assert missing.actions_of("create_issue")[0].text == (
        "Model and human disagree (inference mark 0.00, below 0.8): "
        "model predicted GREY, human nothing on CLASSIFICATION_JOB")


def test_several_jobs_and_categories_are_named(plugin):
    interface = {"jobs": {
        **INTERFACE["jobs"],
        "DAMAGE_JOB": {"mlTask": "CLASSIFICATION", "content": {"input": "checkbox", "categories": {
            "SCRATCH": {}, "DENT": {}, "RUST": {}}}},
    }}
    car = {**color("GREY"), "DAMAGE_JOB": {"categories": [{"name": "SCRATCH"}, {"name": "DENT"}]}}
    prediction = make_label({**color("WHITE"), "DAMAGE_JOB": {"categories": [{"name": "RUST"}]}},
                            id="inf-1", label_type="INFERENCE", created_at="2026-11-20T08:00:00Z")
    label = make_label(car, id="human-1", created_at="2026-11-20T09:00:00Z")
    result = plugin.run(submit(label, [prediction], interface=interface))
    [issue] = result.actions_of("create_issue")
    assert issue.text == (
        # 0.25: the radio job scores 1 - 2/4, the checkbox job 0 (no category in common).
        "Model and human disagree (inference mark 0.25, below 0.8): "
        "model predicted WHITE, human GREY on CLASSIFICATION_JOB; "
        "model predicted RUST, human SCRATCH and DENT on DAMAGE_JOB")


def test_a_disagreement_outside_classifications_points_to_the_model_label(plugin):
    prediction = make_label({"PLATE": {"text": "AB-123-CD"}}, id="inf-9", label_type="INFERENCE")
    result = plugin.run(submit(make_label({"PLATE": {"text": "ZZ-999-ZZ"}}, id="human-1"), [prediction]))
    [issue] = result.actions_of("create_issue")
    # 0.22: 7 edits over 9 characters.
    assert issue.text == ("Model and human disagree (inference mark 0.22, below 0.8); "
                          "compare with the model's label inf-9")


def test_without_inference_label_it_only_logs(plugin):
    result = plugin.run(submit(human("BLACK"), []))
    assert result.status == "ok"
    assert result.actions == []
    assert [log.message for log in result.logs] == [
        "Asset black_car: no INFERENCE label to compare label human-1 with"]


def test_missing_or_odd_context_is_not_fatal(plugin):
    # No interface: the job type comes from the labels, a radio mismatch scores 0.
    result = plugin.run(submit(human("BLACK"), [model("WHITE")], interface=None))
    assert result.status == "ok"
    assert result.actions[0].json_metadata == {"inferenceMark": 0.0}
    assert "interface is unknown" in result.logs[0].message
    # Metadata stored as a JSON string is merged too; a priority that is not a number is replaced.
    event = submit(human("BLACK"), [model("WHITE")], metadata={})
    event["context"]["asset"].update(jsonMetadata='{"source": "api"}', priority=None)
    update = plugin.run(event).actions[0]
    assert (update.json_metadata, update.priority) == ({"source": "api", "inferenceMark": 0.5}, 50)
    # A model label whose job is not a classification at all.
    odd = make_label({"CLASSIFICATION_JOB": "WHITE"}, id="inf-2", label_type="INFERENCE")
    assert plugin.run(submit(human("BLACK"), [odd])).status == "ok"
    # No context at all.
    bare = plugin.run(make_event("onSubmit", json_response=color("BLACK"), context=False))
    assert (bare.status, bare.actions) == ("ok", [])
    assert "cannot read its labels" in bare.logs[0].message


def test_the_shipped_events_carry_their_asset_labels_and_project():
    for event in load_events(FOLDER / "events.jsonl"):
        asset, project = event["context"]["asset"], event["context"]["project"]
        assert asset["id"] == event["asset_id"]
        assert event["label"] in asset["labels"]
        assert project["id"] == event["project_id"] and project["jsonInterface"]["jobs"]


def test_recorded_events_dry_run_through_the_cli():
    results = dry_run(FOLDER, FOLDER / "events.jsonl")
    assert all(r["status"] == "ok" for r in results)
    flagged = ["update_asset", "create_issue", "add_to_review"]
    # In input order, each event with the types of its actions.
    assert [(r["event_id"], [a["type"] for a in r["actions"]]) for r in results] == list({
        "evt-im-0001": flagged,  # black car: model WHITE, human BLACK
        "evt-im-0002": ["update_asset"],  # grey car: agreement
        "evt-im-0003": flagged,  # white car: model RED
        "evt-im-0004": flagged,  # red car: model BLACK, priority kept at 80
        "evt-im-0005": [],  # no INFERENCE label
        "evt-im-0006": ["update_asset"],  # model v2 agrees with the resubmission
        "evt-im-0007": flagged,  # the labeler answered nothing
    }.items())
    by_id = {r["event_id"]: r["actions"] for r in results}
    assert by_id["evt-im-0001"][0] == {
        "type": "update_asset", "asset_id": "asset-car-01", "priority": 50,
        "json_metadata": {"source": "production", "predictedAt": "2026-11-20T08:00:00Z", "inferenceMark": 0.5},
    }
    assert by_id["evt-im-0001"][1]["text"].endswith("model predicted WHITE, human BLACK on CLASSIFICATION_JOB")
    assert by_id["evt-im-0004"][0]["priority"] == 80
