"""What Kili's newer write methods change on the embedded platform (a real SQLite file), as
Kili changes it: metadata merged or replaced as the asset is when the action applies,
predictions of a model replaced on overwrite, issues resolved and reopened, questions asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_runtime.applier import policy
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.store import Store


@pytest.fixture()
def platform(tmp_path: Path):
    store = Store(tmp_path / "db.sqlite")
    embedded = EmbeddedPlatform(store)
    with store.write() as db:
        embedded.create_project(db, "proj")
        embedded.create_project(db, "other")
        embedded.create_asset(db, "proj", {"id": "doc-1", "jsonMetadata": {"text": "kept by set", "score": 1}})
        embedded.create_asset(db, "other", {"id": "doc-9"})
    yield embedded, store
    store.close()


def apply(platform, *actions: dict) -> list[dict]:
    embedded, store = platform
    with store.write() as db:
        return embedded.apply_in(db, "run-1", list(actions))


def asset(platform, asset_id: str = "doc-1", project: str = "proj") -> dict:
    embedded, store = platform
    return embedded.asset(store.read(), project, asset_id)


def test_add_metadata_merges_into_what_the_asset_has_when_it_applies(platform) -> None:
    apply(platform, {"type": "update_asset", "asset_id": "doc-1", "json_metadata": {"score": 2, "text": "t"}})
    apply(platform, {"type": "add_metadata", "asset_id": "doc-1", "json_metadata": {"checked": True, "score": 3}})
    assert asset(platform)["jsonMetadata"] == {"score": 3, "text": "t", "checked": True}


def test_set_metadata_replaces_but_keeps_the_keys_kili_keeps(platform) -> None:
    apply(platform, {"type": "set_metadata", "asset_id": "doc-1", "json_metadata": {"reviewed": "yes"}})
    assert asset(platform)["jsonMetadata"] == {"text": "kept by set", "reviewed": "yes"}
    apply(platform, {"type": "update_asset", "asset_id": "doc-1", "json_metadata": {"reviewed": "no"}})
    assert asset(platform)["jsonMetadata"] == {"reviewed": "no"}  # update_properties_in_assets keeps nothing


def test_priority_and_assignment(platform) -> None:
    apply(platform, {"type": "update_asset", "asset_id": "doc-1", "priority": 9},
          {"type": "update_asset", "asset_id": "doc-1", "to_be_labeled_by": ["user-3"]})
    state = asset(platform)
    assert (state["priority"], state["toBeLabeledBy"]) == (9, ["user-3"])


def test_predictions_of_a_model_are_replaced_on_overwrite_only(platform) -> None:
    def prediction(model: str, value: int, overwrite: bool = False) -> dict:
        action = {"type": "append_label", "asset_id": "doc-1", "json_response": {"J": value},
                  "label_type": "PREDICTION", "model_name": model}
        return {**action, "overwrite": True} if overwrite else action

    emitted = apply(platform, prediction("yolo", 1), prediction("yolo", 2), prediction("detr", 3))
    assert emitted == []  # a prediction moves no status and emits no event
    apply(platform, prediction("yolo", 4, overwrite=True))
    labels = [(label["modelName"], label["jsonResponse"]["J"]) for label in asset(platform)["labels"]]
    assert labels == [("detr", 3), ("yolo", 4)]
    assert asset(platform)["status"] == "TODO"


def test_issues_are_resolved_and_reopened_on_their_asset_only(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        label = embedded.submit_label(db, "proj", "doc-1", {"jsonResponse": {}})["label"]["id"]
    apply(platform, {"type": "create_issue", "asset_id": "doc-1", "label_id": label, "text": "bad", "object_mid": None})
    [issue] = asset(platform)["issues"]
    apply(platform, {"type": "update_issue_status", "asset_id": "doc-1", "issue_id": issue["id"], "status": "SOLVED"})
    assert [i["status"] for i in asset(platform)["issues"]] == ["SOLVED"]
    # Named with another asset (one of the event's project, so the policy lets it through): no change.
    with store.write() as db:
        embedded.create_asset(db, "proj", {"id": "doc-2"})
    apply(platform, {"type": "update_issue_status", "asset_id": "doc-2", "issue_id": issue["id"], "status": "OPEN"})
    assert [i["status"] for i in asset(platform)["issues"]] == ["SOLVED"]
    apply(platform, {"type": "update_issue_status", "asset_id": "doc-1", "issue_id": issue["id"], "status": "OPEN"})
    assert [i["status"] for i in asset(platform)["issues"]] == ["OPEN"]


def test_a_question_is_an_issue_of_type_question_on_no_label(platform) -> None:
    apply(platform, {"type": "create_question", "asset_id": "doc-1", "text": "Is this a receipt?"})
    [question] = asset(platform)["issues"]
    assert (question["type"], question["labelId"], question["text"], question["status"]) == (
        "QUESTION", None, "Is this a receipt?", "OPEN")


@pytest.mark.parametrize("kind", ["add_metadata", "set_metadata", "update_issue_status", "create_question"])
def test_the_policy_keeps_new_actions_to_the_events_project(platform, kind: str) -> None:
    embedded, _ = platform
    action = {"type": kind, "asset_id": "doc-9", "json_metadata": {}, "issue_id": "i", "status": "SOLVED", "text": "?"}
    facts = embedded.facts(*policy.named([action]))
    assert policy.refusal(action, "proj", facts) == "asset 'doc-9' belongs to another project than the event's ('proj')"


@pytest.mark.parametrize("kind", ["add_metadata", "set_metadata"])
def test_the_policy_limits_metadata_the_new_actions_write(kind: str) -> None:
    action = {"type": kind, "asset_id": "doc-1", "json_metadata": {"blob": "x" * policy.MAX_METADATA_BYTES}}
    assert policy.size_refusal(action) == (f"json_metadata is {policy.MAX_METADATA_BYTES + 11} bytes, over the limit "
                                           f"of {policy.MAX_METADATA_BYTES} bytes")
