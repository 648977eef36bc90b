"""``plugin_runtime.diff.compare``: two runs' actions compared as data, as a multiset for what
only one side did, in order for whether they are the same."""

from __future__ import annotations

from plugin_runtime.diff import Comparison, compare

ISSUE = {"type": "create_issue", "asset_id": "a1", "label_id": "l1", "text": "bad", "object_mid": None}
BACK = {"type": "send_back_to_queue", "asset_id": "a1"}
REVIEW = {"type": "add_to_review", "asset_id": "a1"}


def test_equal_actions_in_the_same_order_are_the_same_whatever_their_keys_order() -> None:
    reordered_keys = {"text": "bad", "object_mid": None, "asset_id": "a1", "label_id": "l1", "type": "create_issue"}
    assert compare("ok", [ISSUE, BACK], "ok", [reordered_keys, BACK]) == Comparison(same=True)
    assert compare("ok", [], "ok", []) == Comparison(same=True)


def test_a_different_status_differs_even_without_actions() -> None:
    assert compare("ok", [], "timeout", []) == Comparison(same=False)
    assert compare("ok", [ISSUE], "error", []) == Comparison(same=False, only_a=[ISSUE])


def test_reordered_actions_differ_but_neither_side_has_one_of_its_own() -> None:
    assert compare("ok", [ISSUE, BACK], "ok", [BACK, ISSUE]) == Comparison(same=False, reordered=True)


def test_a_duplicated_action_is_once_in_only_a_its_later_occurrence() -> None:
    other = {**ISSUE, "text": "other"}
    result = compare("ok", [ISSUE, BACK, ISSUE, other], "ok", [ISSUE, BACK, REVIEW])
    assert result == Comparison(same=False, only_a=[ISSUE, other], only_b=[REVIEW])


def test_values_are_compared_as_data() -> None:
    one = {"type": "update_asset", "asset_id": "a1", "json_metadata": {"accuracy": 50.0, "k": [1, 2]}}
    same = {"type": "update_asset", "asset_id": "a1", "json_metadata": {"k": [1, 2], "accuracy": 50.0}}
    other = {"type": "update_asset", "asset_id": "a1", "json_metadata": {"k": [2, 1], "accuracy": 50.0}}
    assert compare("ok", [one], "ok", [same]).same
    assert compare("ok", [one], "ok", [other]) == Comparison(same=False, only_a=[one], only_b=[other])
