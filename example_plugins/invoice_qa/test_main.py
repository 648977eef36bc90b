"""The invoice QA bot's own tests, through ``plugin_sdk.testing`` (and one real dry-run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk.testing import dry_run, load_events, load_plugin, make_event, make_label

HERE = Path(__file__).resolve().parent
METADATA = {"supplier": "ACME", "batch": "2026-11"}


def annotation(mid: str, category: str, text: str, child: str = "TRANSCRIPTION_JOB") -> dict:
    """An object-detection annotation with a transcription child, as invoice projects have."""
    return {"mid": mid, "type": "rectangle", "categories": [{"name": category}], "children": {child: {"text": text}}}


def invoice(iban: str | None = "FR76 3000 6000 0112 3456 7890 189", currency: str | None = "EUR") -> dict:
    annotations = []
    if iban is not None:
        annotations.append(annotation("mid-iban", "IBAN", iban))
    if currency is not None:
        annotations.append(annotation("mid-cur", "CURRENCY", currency, "TRANSCRIPTION_JOB_2"))
    return {"JOB_0": {"annotations": annotations},
            "JOB_1": {"annotations": [annotation("mid-seller", "SELLER_NAME", "ACME SAS", "TRANSCRIPTION_JOB_3")]}}


@pytest.fixture(scope="module")
def bot():
    return load_plugin(HERE / "main.py", project_id="proj-invoices")


def submit(bot, json_response: dict, **event):
    event.setdefault("asset", {"jsonMetadata": dict(METADATA)})
    result = bot.run(make_event(label=make_label(json_response, id="label-1"), asset_id="asset-1",
                                project_id="proj-invoices", **event))
    assert result.status == "ok", result.error
    return result


def summary(result) -> list[tuple]:
    out = []
    for action in result.actions:
        if action.type == "create_issue":
            out.append(("create_issue", action.label_id, action.object_mid, action.text))
        elif action.type == "update_asset":
            out.append(("update_asset", action.json_metadata))
        else:
            out.append((action.type, action.asset_id))
    return out


def test_a_good_invoice_only_gets_its_accuracy_keeping_the_metadata(bot) -> None:
    result = submit(bot, invoice())
    assert summary(result) == [("update_asset", {**METADATA, "accuracy": 100.0})]
    assert [log.message for log in result.logs] == ["Asset asset-1: 0 issue(s), accuracy 100.0%"]


def test_a_bad_iban_is_pinned_to_its_annotation_and_sent_back(bot) -> None:
    result = submit(bot, invoice(iban="DE89 3704 0044 0532 0130 00"))
    assert summary(result) == [
        ("create_issue", "label-1", "mid-iban", "IBAN number should start with FR (found 'DE89'...)"),
        ("send_back_to_queue", "asset-1"),
        ("update_asset", {**METADATA, "accuracy": 50.0}),
    ]
    assert result.actions[0].asset_id == "asset-1"


def test_a_bad_currency_is_pinned_to_its_annotation(bot) -> None:
    result = submit(bot, invoice(currency="GBP"))
    assert summary(result) == [
        ("create_issue", "label-1", "mid-cur", "Currency should be EUR or USD, not 'GBP'"),
        ("send_back_to_queue", "asset-1"),
        ("update_asset", {**METADATA, "accuracy": 50.0}),
    ]


def test_a_passing_label_resolves_the_bots_own_open_issues_and_no_one_elses(bot) -> None:
    issues = [
        {"id": "issue-bot", "type": "ISSUE", "status": "OPEN", "labelId": "label-0", "objectMid": "mid-iban",
         "text": "IBAN number should start with FR (found 'DE89'...)"},
        {"id": "issue-reviewer", "type": "ISSUE", "status": "OPEN", "labelId": "label-0", "objectMid": None,
         "text": "The seller's name is cut off"},
        {"id": "issue-done", "type": "ISSUE", "status": "SOLVED", "labelId": "label-0", "objectMid": None,
         "text": "Currency should be EUR or USD, not 'GBP'"},
    ]
    result = submit(bot, invoice(), asset={"jsonMetadata": dict(METADATA), "issues": issues})
    resolved = result.actions_of("update_issue_status")
    assert [(a.issue_id, a.status, a.asset_id) for a in resolved] == [("issue-bot", "SOLVED", "asset-1")]
    # A failing label resolves nothing: its issue replaces the old one.
    failing = submit(bot, invoice(iban="DE89"), asset={"jsonMetadata": dict(METADATA), "issues": issues})
    assert failing.actions_of("update_issue_status") == []


def test_usd_is_allowed_and_spaces_around_values_are_ignored(bot) -> None:
    result = submit(bot, invoice(iban=" FR76 1790 ", currency=" USD "))
    assert summary(result) == [("update_asset", {**METADATA, "accuracy": 100.0})]


def test_a_missing_currency_is_an_issue_on_the_label(bot) -> None:
    result = submit(bot, invoice(currency=None))
    assert summary(result) == [
        ("create_issue", "label-1", None, "No CURRENCY was annotated: the payment information needs one"),
        ("send_back_to_queue", "asset-1"),
        ("update_asset", {**METADATA, "accuracy": 50.0}),
    ]


def test_both_wrong_gives_two_issues_one_send_back_and_accuracy_0(bot) -> None:
    result = submit(bot, invoice(iban="GB29 NWBK", currency="CHF"))
    assert [a.type for a in result.actions] == ["create_issue", "create_issue", "send_back_to_queue", "update_asset"]
    assert [a.object_mid for a in result.actions_of("create_issue")] == ["mid-iban", "mid-cur"]
    assert result.actions[-1].json_metadata["accuracy"] == 0.0


def test_an_empty_label_misses_both_fields(bot) -> None:
    result = submit(bot, {})
    assert [a.text for a in result.actions_of("create_issue")] == [
        "No IBAN was annotated: the payment information needs one",
        "No CURRENCY was annotated: the payment information needs one"]
    assert result.actions[-1].json_metadata == {**METADATA, "accuracy": 0.0}


def test_flat_top_level_transcription_jobs_are_checked_too(bot) -> None:
    good = submit(bot, {"IBAN": {"text": "FR76 3000"}, "CURRENCY": {"text": "EUR"}})
    assert summary(good) == [("update_asset", {**METADATA, "accuracy": 100.0})]
    bad = submit(bot, {"IBAN": {"text": "DE89 3704"}, "CURRENCY": {"text": "YEN"}})
    assert summary(bad) == [
        ("create_issue", "label-1", None, "IBAN number should start with FR (found 'DE89'...)"),
        ("create_issue", "label-1", None, "Currency should be EUR or USD, not 'YEN'"),
        ("send_back_to_queue", "asset-1"),
        ("update_asset", {**METADATA, "accuracy": 0.0}),
    ]


def test_a_currency_classification_job_is_checked(bot) -> None:
    result = submit(bot, {"IBAN_NUMBER": {"text": "FR76"}, "CURRENCY_JOB": {"categories": [{"name": "JPY"}]}})
    assert [a.text for a in result.actions_of("create_issue")] == ["Currency should be EUR or USD, not 'JPY'"]


def test_an_event_without_context_still_works(bot) -> None:
    result = bot.run(make_event(json_response=invoice(), asset_id="asset-1", project_id="proj-invoices", context=False))
    assert result.status == "ok", result.error
    assert summary(result) == [("update_asset", {"accuracy": 100.0})]


def test_reviews_are_not_the_bots_business(bot) -> None:
    result = bot.review(invoice(iban="DE89"))
    assert (result.status, result.skipped, result.actions) == ("ok", True, [])
    assert bot.subscriptions == ["onSubmit"]


def test_the_shipped_events_are_valid() -> None:
    events = load_events(HERE / "events.jsonl")
    assert [e["id"] for e in events] == [f"evt-000{i}" for i in range(1, 9)]
    assert {e["project_id"] for e in events} == {"proj-invoices"}


def test_dry_running_the_shipped_events_gives_8_ok_results() -> None:
    results = dry_run(HERE, HERE / "events.jsonl")
    assert [(r["event_id"], r["status"]) for r in results] == [(f"evt-000{i}", "ok") for i in range(1, 9)]
    accuracy = [
        next((a["json_metadata"]["accuracy"] for a in r["actions"] if a["type"] == "update_asset"), None)
        for r in results
    ]
    assert accuracy == [100.0, 50.0, 50.0, 0.0, 50.0, 100.0, None, 100.0]
    assert results[6]["skipped"] is True  # the review
    issues = [a["object_mid"] for a in results[1]["actions"] if a["type"] == "create_issue"]
    assert issues == ["20261120090201-iban"]
    # The corrected resubmission solves the issue its recorded context lists, then scores 100.
    solved, scored = results[7]["actions"]
    assert (solved["type"], solved["issue_id"], solved["status"]) == ("update_issue_status", "issue-02-iban", "SOLVED")
    assert scored["json_metadata"] == {"supplier": "ACME", "batch": "2026-11", "accuracy": 100.0}
