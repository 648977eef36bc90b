"""The applier's policy: pure checks of a run's actions (wire form) against what the platform
knows of the records they name; the same sizes the dry-run reports (``policy.size_refusal``)."""

from __future__ import annotations

from plugin_runtime.applier.policy import (
    MAX_METADATA_BYTES,
    Facts,
    named,
    refusal,
    scope_refusal,
    size_refusal,
)

FACTS = Facts(asset_projects={"mine": "proj", "theirs": "other"}, label_assets={"l-mine": "mine", "l-theirs": "theirs"})


def test_an_action_touches_only_existing_records_of_its_events_project() -> None:
    assert scope_refusal({"type": "add_to_review", "asset_id": "mine"}, "proj", FACTS) is None
    assert scope_refusal({"type": "add_to_review", "asset_id": "ghost"}, "proj", FACTS) == "asset 'ghost' does not exist"
    assert scope_refusal({"type": "add_to_review", "asset_id": "theirs"}, "proj", FACTS) == (
        "asset 'theirs' belongs to another project than the event's ('proj')")
    issue = {"type": "create_issue", "asset_id": "mine"}
    assert scope_refusal({**issue, "label_id": "l-mine"}, "proj", FACTS) is None
    assert scope_refusal({**issue, "label_id": "l-ghost"}, "proj", FACTS) == "label 'l-ghost' does not exist"
    assert scope_refusal({**issue, "label_id": "l-theirs"}, "proj", FACTS) == (
        "label 'l-theirs' belongs to another asset than 'mine'")


def test_scope_comes_before_size_and_the_dry_run_sees_the_same_size_reason() -> None:
    big = {"type": "update_asset", "asset_id": "mine", "json_metadata": {"x": "y" * MAX_METADATA_BYTES}}
    assert refusal(big, "proj", FACTS) == size_refusal(big)
    assert "over the limit of 65536 bytes" in (refusal(big, "proj", FACTS) or "")
    assert refusal({**big, "asset_id": "ghost"}, "proj", FACTS) == "asset 'ghost' does not exist"


def test_named_lists_what_the_facts_must_cover() -> None:
    actions = [{"type": "add_to_review", "asset_id": "a"}, {"type": "create_issue", "asset_id": "b", "label_id": "l"}]
    assert named(actions) == ({"a", "b"}, {"l"})


def test_a_status_change_names_an_issue_of_its_own_asset_where_the_platform_tells_issues() -> None:
    facts = Facts(asset_projects={"mine": "proj", "sibling": "proj"}, issue_assets={"i-mine": "mine", "i-sib": "sibling"})
    change = {"type": "update_issue_status", "asset_id": "mine", "status": "SOLVED"}
    assert scope_refusal({**change, "issue_id": "i-mine"}, "proj", facts) is None
    assert scope_refusal({**change, "issue_id": "i-sib"}, "proj", facts) == (
        "issue 'i-sib' belongs to another asset than 'mine'")
    assert scope_refusal({**change, "issue_id": "i-ghost"}, "proj", facts) == "issue 'i-ghost' does not exist"
    # A platform that does not tell issues checks the issue's asset itself as it applies.
    assert scope_refusal({**change, "issue_id": "i-ghost"}, "proj", FACTS) is None
