"""Which events a plugin receives: hook event types and Kili-style dotted patterns."""

from __future__ import annotations

import pytest

from plugin_sdk.subscriptions import ASSET_EVENTS, HOOKS, LABEL_EVENTS, check_pattern, is_generic, matches, subscribed


def test_every_hook_event_type_maps_to_its_pluginscore_hook() -> None:
    assert HOOKS == {
        "onSubmit": "on_submit",
        "onReview": "on_review",
        "onCustomInterfaceClick": "on_custom_interface_click",
        "onSendBackToQueue": "on_send_back_to_queue",
        "onProjectUpdated": "on_project_updated",
    }
    assert LABEL_EVENTS == {"onSubmit", "onReview", "onCustomInterfaceClick"}
    assert ASSET_EVENTS == LABEL_EVENTS | {"onSendBackToQueue"}


@pytest.mark.parametrize("name", ["asset.skipped", "label.workflow.created.default", "a-b.c_d", "x.1"])
def test_dotted_names_are_generic(name: str) -> None:
    assert is_generic(name)


@pytest.mark.parametrize("name", ["onSubmit", "asset", "asset.", ".asset", "asset..x", "asset.*", "as set.x", ""])
def test_other_names_are_not_generic(name: str) -> None:
    assert not is_generic(name)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("asset.*", "asset.created", True),
        ("asset.*", "asset.workflow.assigned", True),  # * stands for one or more names
        ("asset.*", "asset", False),
        ("asset.*", "assets.created", False),
        ("asset.*", "label.asset.created", False),
        ("asset.*.completed", "asset.export.completed", True),
        ("asset.*.completed", "asset.a.b.completed", True),
        ("asset.*.completed", "asset.completed", False),
        ("asset.*.completed", "asset.export.completed.late", False),
        ("label.workflow.created.default", "label.workflow.created.default", True),
        ("label.workflow.created.default", "label.workflow.created.review", False),
    ],
)
def test_patterns_match_as_kilis_event_matcher_reads_them(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected


@pytest.mark.parametrize("pattern", ["asset.*", "asset.*.completed", "label.workflow.created.default", "a-b.c_d"])
def test_valid_patterns_pass_the_check(pattern: str) -> None:
    check_pattern(pattern)  # raises on a bad pattern
    assert matches(pattern, pattern.replace("*", "x"))


@pytest.mark.parametrize("pattern", ["*", "*.created", "asset..created", "asset.cre ated", "asset.", "", "asset.**"])
def test_invalid_patterns_are_refused_with_an_example(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid event pattern") as raised:
        check_pattern(pattern)
    assert "asset.*" in str(raised.value)


def test_a_non_string_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid event pattern"):
        check_pattern(None)  # type: ignore[arg-type]


def test_hook_event_types_are_matched_exactly() -> None:
    assert subscribed(["onSubmit", "onReview"], "onReview")
    assert not subscribed(["onSubmit"], "onReview")
    assert not subscribed(["onSubmit"], "onSubmitted")
    assert not subscribed([], "onSubmit")


def test_patterns_subscribe_to_dotted_events_only() -> None:
    subscriptions = ["onSubmit", "asset.*"]
    assert subscribed(subscriptions, "asset.skipped")
    assert subscribed(subscriptions, "asset.workflow.assigned")
    assert not subscribed(subscriptions, "label.created")
    assert not subscribed(subscriptions, "onReview")


def test_an_exact_dotted_subscription_matches_itself_only() -> None:
    assert subscribed(["asset.skipped"], "asset.skipped")
    assert not subscribed(["asset.skipped"], "asset.unskipped")
