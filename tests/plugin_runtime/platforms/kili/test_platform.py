"""A project connected to Kili: ``connect`` registers Kili's webhook, plugins' actions apply
through the real ``kili`` package, once each, and reads are answered live; against a FAKE Kili
GraphQL API on 127.0.0.1 (Kili's cloud cannot run here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin_runtime.applier import policy
from plugin_runtime.config import Settings
from plugin_runtime.errors import ConnectionRefused, PlatformRefused, PlatformUnavailable
from plugin_runtime.platforms.kili import KIND
from plugin_runtime.store import Store
from plugin_sdk.actions import ACTIONS

RUNTIME = "https://runtime.example.com"


@pytest.fixture()
def connected(fake_kili, tmp_path: Path):
    """The fake's project connected as proj-invoices, and its platform on a real store."""
    store = Store(tmp_path / "db.sqlite")
    connection = KIND.connect("proj-invoices", {"api_key": fake_kili.api_key, "api_endpoint": fake_kili.endpoint,
                                                "project": "kili-proj"}, RUNTIME, None)
    with store.write() as db:
        store.connections.put(db, connection)
    platform = KIND.open(connection, store, Settings(data_dir=tmp_path / "data"))
    yield fake_kili, connection, platform, store
    store.close()


def keyed(*actions: dict, run: str = "run-1") -> list:
    return [(f"{run}:{n}", action) for n, action in enumerate(ACTIONS.validate_python(list(actions)))]


def test_connect_registers_the_webhook_with_a_secret_header_and_activates_it(connected) -> None:
    fake, connection, _, _ = connected
    plugin = fake.plugins["plugin-runtime-proj-invoices"]
    assert plugin["webhookUrl"] == f"{RUNTIME}/v1/connections/proj-invoices/webhook"
    assert plugin["header"] == connection.secret and len(connection.secret) >= 32
    assert plugin["projectIds"] == ["kili-proj"]
    assert set(plugin["handlerTypes"]) >= {"onSubmit", "onReview", "onProjectUpdated"}
    assert connection.config["title"] == "Invoices" and connection.credentials == {"api_key": fake.api_key}
    assert fake.api_key not in json.dumps(connection.public())


def test_connect_again_updates_the_same_webhook_with_a_new_secret(connected) -> None:
    fake, first, _, _ = connected
    again = KIND.connect("proj-invoices", {"api_key": fake.api_key, "api_endpoint": fake.endpoint,
                                           "project": "kili-proj"}, RUNTIME + "/", first)
    assert list(fake.plugins) == ["plugin-runtime-proj-invoices"] and again.secret != first.secret
    assert fake.plugins["plugin-runtime-proj-invoices"]["header"] == again.secret
    assert fake.plugins["plugin-runtime-proj-invoices"]["projectIds"] == ["kili-proj"]
    assert again.created_at == first.created_at


@pytest.mark.parametrize(("params", "message"), [
    ({"project": "kili-proj"}, "connect kili needs --api-key and --project ID"),
    ({"api_key": "wrong", "project": "kili-proj"}, "Kili refused the API key"),
    ({"api_key": "KEY", "project": "nope"}, "Kili project 'nope' does not exist or this API key cannot see it"),
])
def test_a_refused_connect_says_what_to_fix_and_leaves_nothing(fake_kili, params: dict, message: str) -> None:
    given = {"api_endpoint": fake_kili.endpoint, **params}
    if given.get("api_key") == "KEY":
        given["api_key"] = fake_kili.api_key
    with pytest.raises(ConnectionRefused, match=message):
        KIND.connect(None, given, RUNTIME, None)
    assert fake_kili.plugins == {}


def test_disconnect_deactivates_and_deletes_the_webhook(connected) -> None:
    fake, connection, _, _ = connected
    KIND.disconnect(connection)
    assert fake.plugins == {}
    KIND.disconnect(connection)  # gone already: fine


def test_actions_apply_through_the_client_once_each(connected) -> None:
    fake, _, platform, _ = connected
    actions = keyed(
        {"type": "create_issue", "asset_id": "kili-asset-1", "label_id": "kili-label-1", "text": "bad IBAN",
         "object_mid": "m-1"},
        {"type": "update_asset", "asset_id": "kili-asset-1", "json_metadata": {"accuracy": 50.0}, "priority": 3},
        {"type": "add_metadata", "asset_id": "kili-asset-1", "json_metadata": {"checked": True}},
        {"type": "send_back_to_queue", "asset_id": "kili-asset-1"},
        {"type": "append_label", "asset_id": "kili-asset-2", "json_response": {"J": 1}, "label_type": "PREDICTION",
         "model_name": "guess"},
        {"type": "create_question", "asset_id": "kili-asset-2", "text": "Is this a receipt?"},
    )
    assert platform.apply(actions) == []  # Kili sends its own events as webhooks
    platform.apply(actions)  # redelivered: every key was applied already
    asset = fake.assets["kili-asset-1"]
    assert (asset["status"], asset["priority"], asset["jsonMetadata"]) == ("ONGOING", 3, {"accuracy": 50.0,
                                                                                         "checked": True})
    issues = sorted((i["type"], i["text"], i["objectMid"]) for i in fake.issues.values())
    assert issues == [("ISSUE", "IBAN number should start with FR", None), ("ISSUE", "bad IBAN", "m-1"),
                      ("QUESTION", "Is this a receipt?", None)]
    predictions = [l for l in fake.labels.values() if l["labelType"] == "PREDICTION"]
    assert [(p["assetId"], p["modelName"], p["jsonResponse"]) for p in predictions] == [("kili-asset-2", "guess",
                                                                                         {"J": 1})]


def test_an_action_kili_took_before_a_crash_is_not_made_twice(connected) -> None:
    fake, _, platform, store = connected
    issue = {"type": "create_issue", "asset_id": "kili-asset-1", "label_id": "kili-label-1", "text": "bad IBAN",
             "object_mid": None}
    label = {"type": "append_label", "asset_id": "kili-asset-1", "json_response": {"J": 2}, "label_type": "DEFAULT",
             "model_name": None}
    platform.apply(keyed(issue, label, run="run-a"))
    with store.write() as db:  # the crash: Kili took them, their keys were never kept
        db.execute("DELETE FROM applied_actions")
    platform.apply(keyed(issue, label, run="run-a"))
    assert sum(i["text"] == "bad IBAN" for i in fake.issues.values()) == 1
    assert sum(l["jsonResponse"] == {"J": 2} for l in fake.labels.values()) == 1


def test_issues_are_resolved_only_on_their_asset(connected) -> None:
    fake, _, platform, _ = connected
    [issue_id] = list(fake.issues)
    platform.apply(keyed({"type": "update_issue_status", "asset_id": "kili-asset-2", "issue_id": issue_id,
                          "status": "SOLVED"}))
    assert fake.issues[issue_id]["status"] == "SOLVED"
    with pytest.raises(PlatformRefused, match="is not an issue of asset 'kili-asset-1'"):
        platform.apply(keyed({"type": "update_issue_status", "asset_id": "kili-asset-1", "issue_id": issue_id,
                              "status": "OPEN"}, run="run-2"))


def test_kili_failing_is_unavailable_and_retried_from_where_it_stopped(connected) -> None:
    fake, _, platform, _ = connected
    actions = keyed({"type": "add_to_review", "asset_id": "kili-asset-1"},
                    {"type": "send_back_to_queue", "asset_id": "kili-asset-2"}, run="run-3")
    fake.fail_next.add("sendAssetsBackToQueue")
    with pytest.raises(PlatformUnavailable, match="Kili failed applying send_back_to_queue to asset kili-asset-2"):
        platform.apply(actions)
    calls = len(fake.calls)
    platform.apply(actions)
    assert [name for name, _ in fake.calls[calls:]].count("addAssetsToReview") == 0  # applied before the failure
    assert (fake.assets["kili-asset-1"]["status"], fake.assets["kili-asset-2"]["status"]) == ("TO_REVIEW", "ONGOING")


def test_the_policy_facts_come_from_kili(connected) -> None:
    _, _, platform, _ = connected
    facts = platform.facts({"kili-asset-1", "elsewhere"}, {"kili-label-1"})
    assert facts.asset_projects == {"kili-asset-1": "proj-invoices"}
    assert facts.label_assets == {"kili-label-1": "kili-asset-1"}
    assert policy.scope_refusal({"type": "add_to_review", "asset_id": "elsewhere"}, "proj-invoices", facts) == \
        "asset 'elsewhere' does not exist"


def test_reads_are_answered_live_for_the_connected_project(connected) -> None:
    _, _, platform, _ = connected
    labels = platform.read("proj-invoices", "labels", {"project_id": "other", "asset_id": "kili-asset-1"})
    assert [(l["id"], l["assetId"], l["authorId"], l["labelType"]) for l in labels] == [
        ("kili-label-1", "kili-asset-1", "user-1", "DEFAULT"), ("kili-label-3", "kili-asset-1", "reviewer-1", "REVIEW")]
    [asset] = platform.read("proj-invoices", "assets", {"asset_id": "kili-asset-1"})
    assert asset["jsonMetadata"] == {"vendor": "ACME"} and [l["id"] for l in asset["labels"]] == ["kili-label-1",
                                                                                                "kili-label-3"]
    [issue] = platform.read("proj-invoices", "issues", {"asset_id": "kili-asset-2", "status": "OPEN"})
    assert (issue["assetId"], issue["text"]) == ("kili-asset-2", "IBAN number should start with FR")
    [project] = platform.read("proj-invoices", "projects", {})
    assert (project["id"], project["title"]) == ("proj-invoices", "Invoices")
    assert platform.read("proj-invoices", "count_labels", {"type_in": ["REVIEW"]}) == 1
