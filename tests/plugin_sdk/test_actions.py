"""Actions: validation of what plugins ask for, and the canonical wire form."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from plugin_sdk.actions import (
    ACTIONS, AddToReview, AppendLabel, CreateIssue, SendBackToQueue, UpdateAsset, dump_actions,
)


def messages(data: list[dict[str, Any]]) -> str:
    with pytest.raises(ValidationError) as raised:
        ACTIONS.validate_python(data)
    return "; ".join(error["msg"] for error in raised.value.errors())


def test_every_kind_validates_from_its_wire_form() -> None:
    actions = ACTIONS.validate_python([
        {"type": "create_issue", "asset_id": "a", "label_id": "l", "text": "t", "object_mid": "m"},
        {"type": "update_asset", "asset_id": "a", "priority": 2},
        {"type": "send_back_to_queue", "asset_id": "a"},
        {"type": "add_to_review", "asset_id": "a"},
        {"type": "append_label", "asset_id": "a", "json_response": {"J": 1}, "label_type": "PREDICTION"},
    ])
    assert [type(a) for a in actions] == [CreateIssue, UpdateAsset, SendBackToQueue, AddToReview, AppendLabel]
    assert actions[0].object_mid == "m" and actions[4].label_type == "PREDICTION"


def test_the_canonical_dump_lists_every_field_type_first() -> None:
    dumped = dump_actions([
        CreateIssue(asset_id="a", label_id="l"),
        SendBackToQueue(asset_id="a"),
        AddToReview(asset_id="a"),
        AppendLabel(asset_id="a", json_response={}),
    ])
    assert dumped == [
        {"type": "create_issue", "asset_id": "a", "label_id": "l", "text": None, "object_mid": None},
        {"type": "send_back_to_queue", "asset_id": "a"},
        {"type": "add_to_review", "asset_id": "a"},
        {"type": "append_label", "asset_id": "a", "json_response": {}, "label_type": "DEFAULT",
         "model_name": None, "author_id": None, "seconds_to_label": None},
    ]
    assert all(list(d)[0] == "type" for d in dumped)


def test_update_asset_dumps_only_what_it_changes() -> None:
    dumped = dump_actions([UpdateAsset(asset_id="a", is_honeypot=False, priority=0),
                           UpdateAsset(asset_id="b", json_metadata={})])
    assert dumped == [{"type": "update_asset", "asset_id": "a", "priority": 0, "is_honeypot": False},
                      {"type": "update_asset", "asset_id": "b", "json_metadata": {}}]


def test_dump_then_validate_round_trips() -> None:
    wire = [{"type": "update_asset", "asset_id": "a", "json_metadata": {"k": [1, 2]}, "to_be_labeled_by": ["x@y.z"]},
            {"type": "append_label", "asset_id": "a", "json_response": {}, "label_type": "REVIEW",
             "model_name": "m", "author_id": "u", "seconds_to_label": 1.5}]
    assert dump_actions(ACTIONS.validate_python(wire)) == wire


def test_update_asset_needs_a_change() -> None:
    message = messages([{"type": "update_asset", "asset_id": "a"}])
    assert "update_asset needs at least one of json_metadata, priority, to_be_labeled_by" in message
    with pytest.raises(ValidationError, match="needs at least one of"):
        UpdateAsset(asset_id="a", json_metadata=None)


def test_a_json_metadata_string_is_parsed() -> None:
    action = UpdateAsset(asset_id="a", json_metadata='{"accuracy": 50, "tags": ["x"]}')
    assert action.json_metadata == {"accuracy": 50, "tags": ["x"]}
    assert dump_actions([action])[0]["json_metadata"] == {"accuracy": 50, "tags": ["x"]}


def test_a_json_metadata_string_of_a_python_dict_is_read_as_kilis_recipe_writes_it() -> None:
    # Kili's document recipe: json_metadatas=[f"{{'accuracy': {accuracy}}}"], i.e. str(dict).
    action = UpdateAsset(asset_id="a", json_metadata="{'accuracy': 66.66666666666667, 'ok': True, 'n': None}")
    assert action.json_metadata == {"accuracy": 66.66666666666667, "ok": True, "n": None}


@pytest.mark.parametrize(("value", "message"), [
    ("{not json", "neither JSON nor the text of a Python dict"),
    ("{'a': float('nan')}", "neither JSON nor the text of a Python dict"),  # a call: never evaluated
    ("{'a': 1e400}", "neither JSON nor the text of a Python dict"),  # infinity: refused by the host too
    ("{'a': {1, 2}}", "neither JSON nor the text of a Python dict"),  # a set has no JSON form
    ("[1, 2]", "it holds a list, not an object"),
    ('"text"', "it holds a str, not an object"),
    (42, "valid dictionary"),
])
def test_a_json_metadata_that_is_not_an_object_is_refused(value: Any, message: str) -> None:
    assert message in messages([{"type": "update_asset", "asset_id": "a", "json_metadata": value}])


@pytest.mark.parametrize(("action", "message"), [
    ({"type": "delete_asset", "asset_id": "a"}, "does not match any of the expected tags"),
    ({"asset_id": "a"}, "Unable to extract tag"),
    ({"type": "create_issue", "asset_id": "a"}, "Field required"),
    ({"type": "create_issue", "asset_id": "", "label_id": "l"}, "at least 1 character"),
    ({"type": "create_issue", "asset_id": "a" * 257, "label_id": "l"}, "at most 256 characters"),
    ({"type": "create_issue", "asset_id": "a", "label_id": "l", "text": "x" * 10_001}, "at most 10000 characters"),
    ({"type": "send_back_to_queue"}, "Field required"),
    ({"type": "append_label", "asset_id": "a"}, "Field required"),
    ({"type": "append_label", "asset_id": "a", "json_response": {}, "label_type": "GOLD"}, "Input should be 'DEFAULT'"),
    ({"type": "append_label", "asset_id": "a", "json_response": {}, "seconds_to_label": -1}, "greater than or equal to 0"),
    ({"type": "update_asset", "asset_id": "a", "priority": "high"}, "valid integer"),
    ({"type": "update_asset", "asset_id": "a", "to_be_labeled_by": "x@y.z"}, "valid list"),
])
def test_invalid_actions_are_refused(action: dict[str, Any], message: str) -> None:
    assert message in messages([action])


def test_unknown_fields_are_dropped_so_they_never_reach_the_platform() -> None:
    [action] = ACTIONS.validate_python([{"type": "send_back_to_queue", "asset_id": "a", "status": "DONE", "sql": "x"}])
    assert dump_actions([action]) == [{"type": "send_back_to_queue", "asset_id": "a"}]


def test_actions_are_immutable() -> None:
    issue = CreateIssue(asset_id="a", label_id="l", text="t")
    with pytest.raises(ValidationError, match="frozen"):
        issue.text = "changed"  # type: ignore[misc]
    assert issue.text == "t"


def test_actions_are_importable_lazily_from_the_package() -> None:
    import plugin_sdk

    assert plugin_sdk.CreateIssue is CreateIssue and plugin_sdk.UpdateAsset is UpdateAsset
    with pytest.raises(AttributeError, match="no attribute 'DeleteAsset'"):
        plugin_sdk.DeleteAsset  # noqa: B018 - the attribute access is the test


def test_identical_actions_merge_where_they_last_occur_so_the_outcome_is_unchanged() -> None:
    from plugin_sdk.actions import merge_identical

    metadata = lambda value: {"type": "update_asset", "asset_id": "a", "json_metadata": {"v": value}}  # noqa: E731
    issue = lambda text: {"type": "create_issue", "asset_id": "a", "label_id": "l", "text": text}  # noqa: E731
    back = lambda asset: {"type": "send_back_to_queue", "asset_id": asset}  # noqa: E731
    actions = ACTIONS.validate_python([metadata(1), back("a"), metadata(2), back("a"), issue("bad"), metadata(1),
                                       issue("bad"), issue("other"), back("b")])
    merged = dump_actions(merge_identical(actions))
    # The metadata ends as {"v": 1}, as without merging; each issue and send-back once.
    assert merged == [metadata(2), back("a"), metadata(1), {**issue("bad"), "object_mid": None},
                      {**issue("other"), "object_mid": None}, back("b")]
    assert merge_identical([]) == []
    ten = ACTIONS.validate_python([back("a")] * 10)
    assert dump_actions(merge_identical(ten)) == [back("a")]
