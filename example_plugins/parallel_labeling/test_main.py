"""Tests of the parallel labeling bot, through ``plugin_sdk.testing`` and the real CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plugin_sdk.testing import dry_run, load_events, load_plugin, make_event, make_label

FOLDER = Path(__file__).resolve().parent
INTERFACE = {"jobs": {
    "OBJECT_DETECTION_JOB": {"mlTask": "OBJECT_DETECTION", "tools": ["rectangle"], "isChild": False,
                             "content": {"input": "radio", "categories": {"STOP": {"name": "Stop"}}}},
    "TRANSCRIPTION_JOB": {"mlTask": "TRANSCRIPTION", "isChild": False, "content": {"input": "textField"}},
}}
VERTICES = [{"x": 0.4, "y": 0.6}, {"x": 0.4, "y": 0.4}, {"x": 0.6, "y": 0.4}, {"x": 0.6, "y": 0.6}]
BOXES = {"annotations": [{"mid": "m1", "type": "rectangle", "categories": [{"name": "STOP"}], "children": {},
                          "boundingPoly": [{"normalizedVertices": VERTICES}]}]}


def labeled(id: str, author: str, minute: int, response: dict, **extra) -> dict:
    return make_label(response, id=id, author_id=author, created_at=f"2026-11-20T10:{minute:02d}:00Z", **extra)


def text_label(minute: int = 1, text: str = "STOP") -> dict:
    return labeled(f"text-{minute}", "tom", minute, {"TRANSCRIPTION_JOB": {"text": text}})


def image_label(minute: int = 2) -> dict:
    return labeled(f"image-{minute}", "ines", minute, {"OBJECT_DETECTION_JOB": BOXES})


def submit(labels: list[dict], submitted: dict | None = None, interface: dict = INTERFACE) -> dict:
    submitted = submitted or max(labels, key=lambda l: l["createdAt"])
    return make_event("onSubmit", label=submitted, labels=labels, asset_id="asset-3",
                      project={"jsonInterface": interface})


@pytest.fixture
def plugin():
    return load_plugin(FOLDER)


def test_config_is_read_next_to_main(plugin):
    assert plugin.plugin.groups == {"text-experts": ["TRANSCRIPTION_JOB"], "image-experts": ["OBJECT_DETECTION_JOB"]}


def test_waits_and_names_the_missing_groups(plugin):
    result = plugin.run(submit([text_label()]))
    assert result.status == "ok"
    assert result.actions == []
    assert [log.message for log in result.logs] == [
        "Asset asset-3: waiting for image-experts (OBJECT_DETECTION_JOB)"]

    result = plugin.run(submit([labeled("l-1", "lea", 1, {})]))
    assert [log.message for log in result.logs] == [
        "Asset asset-3: label l-1 answers no group's jobs",
        "Asset asset-3: waiting for text-experts (TRANSCRIPTION_JOB); image-experts (OBJECT_DETECTION_JOB)",
    ]


def test_every_group_in_aggregates_each_job_from_its_group(plugin):
    labels = [text_label(1, "STOP"), image_label(2)]
    result = plugin.run(submit(labels))
    assert result.status == "ok"
    assert [a.type for a in result.actions] == ["append_label", "add_to_review"]
    aggregate, review = result.actions
    assert aggregate.asset_id == review.asset_id == "asset-3"
    assert (aggregate.label_type, aggregate.model_name) == ("PREDICTION", "parallel-aggregate")
    assert aggregate.json_response == {"TRANSCRIPTION_JOB": {"text": "STOP"}, "OBJECT_DETECTION_JOB": BOXES}
    assert result.logs[-1].message == (
        "Asset asset-3: aggregated text-experts from text-1 (tom), image-experts from image-2 (ines)")


def test_each_group_takes_its_latest_answering_label(plugin):
    labels = [
        text_label(1, "STPO"),
        image_label(2),
        text_label(3, "STOP"),
        labeled("blank-4", "tom", 4, {"TRANSCRIPTION_JOB": {"text": "  "}}),  # no answer
        labeled("other-5", "lea", 5, {"TRANSCRIPTION_JOB": {"text": "ignored"}, "COMMENT_JOB": {"text": "x"}},
                label_type="REVIEW"),  # not a DEFAULT label
    ]
    result = plugin.run(submit(labels, submitted=labels[3]))
    assert result.actions[0].json_response == {"TRANSCRIPTION_JOB": {"text": "STOP"}, "OBJECT_DETECTION_JOB": BOXES}


def test_one_label_may_answer_several_groups(plugin):
    both = labeled("both-1", "sam", 1, {"OBJECT_DETECTION_JOB": BOXES, "TRANSCRIPTION_JOB": {"text": "STOP"}})
    result = plugin.run(submit([both]))
    assert [a.type for a in result.actions] == ["append_label", "add_to_review"]
    assert result.actions[0].json_response == {"TRANSCRIPTION_JOB": {"text": "STOP"}, "OBJECT_DETECTION_JOB": BOXES}


def test_aggregates_once_unless_a_group_resubmits(plugin):
    labels = [text_label(1), image_label(2)]
    done = labeled("agg-3", None, 3, {}, label_type="PREDICTION", modelName="parallel-aggregate")
    result = plugin.run(submit([*labels, done], submitted=labels[1]))
    assert result.actions == []
    assert result.logs[-1].message == "Asset asset-3: already aggregated after the groups' labels, nothing to do"
    # An aggregate older than a group's submission, or another model's prediction, does not count.
    older = {**done, "createdAt": "2026-11-20T09:00:00Z"}
    assert len(plugin.run(submit([*labels, older], submitted=labels[1])).actions) == 2
    other = {**done, "modelName": "pre-annotator"}
    assert len(plugin.run(submit([*labels, other], submitted=labels[1])).actions) == 2
    fixed = text_label(7, "STOP AHEAD")
    result = plugin.run(submit([*labels, done, fixed]))
    assert result.actions[0].json_response["TRANSCRIPTION_JOB"] == {"text": "STOP AHEAD"}


def test_odd_labels_and_unknown_jobs_are_logged_not_fatal(plugin):
    odd = [
        labeled("s-1", "tom", 1, {}),
        {**text_label(2), "jsonResponse": {"TRANSCRIPTION_JOB": "STOP"}},  # not a job value
        {**image_label(3), "jsonResponse": {"OBJECT_DETECTION_JOB": {"annotations": "oops"}}},
    ]
    result = plugin.run(submit(odd, interface={"jobs": {"TRANSCRIPTION_JOB": {"mlTask": "TRANSCRIPTION"}}}))
    assert result.status == "ok"
    assert result.actions == []
    messages = [log.message for log in result.logs]
    assert "config.json names jobs the project does not have: OBJECT_DETECTION_JOB" in messages
    assert messages[-1].startswith("Asset asset-3: waiting for text-experts")

    result = plugin.run(make_event("onSubmit", json_response={}, context=False))
    assert (result.status, result.actions) == ("ok", [])
    assert "cannot read its labels" in result.logs[0].message


@pytest.mark.parametrize("config, error", [
    ('{"groups": {}}', "expected"),
    ('{"groups": {"a": {"jobs": []}}}', "group 'a' needs a non-empty list"),
    ('{"groups": {"a": {"jobs": ["J"]}, "b": {"jobs": ["J"]}}}', "job 'J' belongs to both 'a' and 'b'"),
    ("{", "cannot read the groups"),
])
def test_a_broken_config_fails_at_load(tmp_path, config, error):
    shutil.copy(FOLDER / "main.py", tmp_path / "main.py")
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(ValueError, match=error):
        load_plugin(tmp_path)


def test_the_shipped_events_carry_their_asset_labels_and_project():
    for event in load_events(FOLDER / "events.jsonl"):
        asset, project = event["context"]["asset"], event["context"]["project"]
        assert asset["id"] == event["asset_id"]
        assert event["label"] in asset["labels"]
        assert project["id"] == event["project_id"] and project["jsonInterface"]["jobs"]


def test_recorded_events_dry_run_through_the_cli():
    results = dry_run(FOLDER, FOLDER / "events.jsonl")
    assert all(r["status"] == "ok" for r in results)
    aggregate = ["append_label", "add_to_review"]
    # In input order, each event with the types of its actions.
    assert [(r["event_id"], [a["type"] for a in r["actions"]]) for r in results] == list({
        "evt-pl-0001": [],  # text only: waiting for image-experts
        "evt-pl-0002": aggregate,
        "evt-pl-0003": [],  # image only: waiting for text-experts
        "evt-pl-0004": [],  # a blank transcription answers nothing
        "evt-pl-0005": aggregate,
        "evt-pl-0006": [],  # already aggregated
        "evt-pl-0007": aggregate,  # one label answering both groups
        "evt-pl-0008": aggregate,  # the transcription was corrected after the aggregate
    }.items())
    by_id = {r["event_id"]: r["actions"] for r in results}
    assert by_id["evt-pl-0008"][0]["json_response"]["TRANSCRIPTION_JOB"] == {"text": "RUE DE RIVOLI\n50"}
    assert by_id["evt-pl-0008"][0]["model_name"] == "parallel-aggregate"
