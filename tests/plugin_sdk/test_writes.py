"""Kili's write methods beyond the first six, and metadata as Kili's own recipes pass it: each
recorded as a typed action under Kili's keyword names (``test_kili_compat`` checks the names
against the real client)."""

from __future__ import annotations

import re

import pytest

from plugin_sdk import UnresolvedAssetError
from plugin_sdk.actions import AddMetadata, AppendLabel, SetMetadata, UpdateIssueStatus
from plugin_sdk.handle import KiliHandle
from plugin_sdk.testing import load_plugin, make_event, make_label
from tests.plugin_sdk.kili_published import DOCUMENT_RECIPE

ISSUE = {"id": "issue-7", "type": "ISSUE", "status": "OPEN", "labelId": "L1", "text": "bad IBAN"}


@pytest.fixture
def kili() -> KiliHandle:
    """Inside a hook of an onSubmit on asset a1 (external id ext-1, one recorded issue); a2
    (ext-2) is carried too."""
    event = make_event(label=make_label({}, id="L1"), asset_id="a1",
                       asset={"externalId": "ext-1", "issues": [ISSUE]})
    event["context"]["assets"] = [{"id": "a2", "externalId": "ext-2"}]
    handle = KiliHandle("project-1")
    handle._begin(event)
    return handle


def invoice(iban: str, currency: str) -> dict:
    """A label of the invoice project Kili's document recipe checks (JOB_0: boxes with a
    transcription child)."""
    def box(mid: str, category: str, job: str, text: str) -> dict:
        return {"mid": mid, "categories": [{"name": category}], "children": {job: {"text": text}}}
    return {"JOB_0": {"annotations": [box("m-iban", "IBAN", "TRANSCRIPTION_JOB", iban),
                                      box("m-cur", "CURRENCY", "TRANSCRIPTION_JOB_2", currency)]}}


def test_kilis_document_recipe_writes_its_accuracy_as_the_text_of_a_python_dict(tmp_path) -> None:
    (tmp_path / "main.py").write_text(DOCUMENT_RECIPE)
    plugin = load_plugin(tmp_path)
    result = plugin.submit(invoice("DE89 3704", "EURO"), asset_id="invoice-1")
    assert result.status == "ok", result.error
    assert [a.type for a in result.actions] == ["create_issue", "add_to_review", "update_asset"]
    assert result.actions[0].object_mid == "m-iban"
    # json_metadatas=[f"{{'accuracy': {accuracy}}}"]: str(dict), not JSON
    assert result.actions[2].json_metadata == {"accuracy": 50.0}
    clean = plugin.submit(invoice("FR76 3000", "DOLLAR"), asset_id="invoice-2")
    assert [a.type for a in clean.actions] == ["add_to_review", "update_asset"]
    assert clean.actions[1].json_metadata == {"accuracy": 100.0}


def test_metadata_that_is_no_object_leaves_the_asset_as_it_was_and_says_so(tmp_path) -> None:
    (tmp_path / "main.py").write_text('''
from kili.plugins import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=["accuracy=100"],
                                              priorities=[3])
        self.kili.add_to_review(asset_ids=[asset_id])
''')
    result = load_plugin(tmp_path).submit({}, asset_id="a1")
    assert result.status == "ok", result.error
    assert [a.model_dump(exclude_none=True) for a in result.actions] == [
        {"type": "update_asset", "asset_id": "a1", "priority": 3}, {"type": "add_to_review", "asset_id": "a1"}]
    [warning] = [log for log in result.logs if log.level == "WARNING"]
    assert "json_metadatas[0] for asset a1 is not metadata" in warning.message
    assert "'accuracy=100'" in warning.message and "left as it was" in warning.message


@pytest.mark.parametrize(("given", "read"), [
    ('{"accuracy": 100}', {"accuracy": 100}),
    ("{'accuracy': 100.0, 'checked': True, 'by': None}", {"accuracy": 100.0, "checked": True, "by": None}),
    ("{'pages': (1, 2), 3: 'x'}", {"pages": [1, 2], "3": "x"}),  # as JSON reads it back
    ("", {}),
])
def test_metadata_strings_are_json_or_python_dicts(kili: KiliHandle, given: str, read: dict) -> None:
    kili.update_properties_in_assets(asset_ids=["a1"], json_metadatas=[given])
    assert kili._end() == [{"type": "update_asset", "asset_id": "a1", "json_metadata": read}]


@pytest.mark.parametrize("given", ["__import__('os').system('id')", "{'a': [1] * 10}", "[1, 2]", "{'a': {1}}",
                                   "{'a': 1e400}", "{" * 300 + "}" * 300])
def test_metadata_strings_are_never_evaluated(kili: KiliHandle, given: str) -> None:
    kili.update_properties_in_assets(asset_ids=["a1"], json_metadatas=[given])
    assert kili._end() == []


def test_create_predictions_appends_prediction_labels_of_the_model(kili: KiliHandle) -> None:
    created = kili.create_predictions("project-1", external_id_array=["ext-1", "ext-2"],
                                      json_response_array=[{"J": 1}, {"J": 2}], model_name="yolo-v8")
    assert created == {"id": "project-1"}
    kili.create_predictions("project-1", asset_id_array=["a1"], json_response_array=[{"J": 3}],
                            model_name_array=["old-style"], overwrite=True)
    actions = kili._end()
    assert [(a["asset_id"], a["label_type"], a["model_name"], a.get("overwrite")) for a in actions] == [
        ("a1", "PREDICTION", "yolo-v8", None), ("a2", "PREDICTION", "yolo-v8", None),
        ("a1", "PREDICTION", "old-style", True)]
    assert AppendLabel.model_validate(actions[2]).overwrite is True


@pytest.mark.parametrize(("call", "message"), [
    (lambda k: k.create_predictions("project-1", asset_id_array=["a1"], json_response_array=[{}]), "model_name="),
    (lambda k: k.create_predictions("project-1", asset_id_array=["a1"], json_response_array=[]), "is empty"),
    (lambda k: k.create_predictions("project-1", asset_id_array=["a1", "a2"], json_response_array=[{}, {}],
                                    model_name_array=["a", "b"]), "one model per call"),
])
def test_create_predictions_refuses_what_kili_refuses(kili: KiliHandle, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(kili)
    assert kili._end() == []


def test_add_and_set_metadata_are_their_own_actions(kili: KiliHandle) -> None:
    assert kili.add_metadata([{"checked": True}], "project-1", asset_ids=["a1"]) == [{"id": "a1"}]
    kili.set_metadata([{"score": 0.5}], "project-1", external_ids=["ext-2", "ext-1"])  # a1 past the list: {}
    actions = kili._end()
    assert actions == [
        {"type": "add_metadata", "asset_id": "a1", "json_metadata": {"checked": True}},
        {"type": "set_metadata", "asset_id": "a2", "json_metadata": {"score": 0.5}},
        {"type": "set_metadata", "asset_id": "a1", "json_metadata": {}},
    ]
    assert [type(AddMetadata.model_validate(actions[0])), type(SetMetadata.model_validate(actions[1]))] == [
        AddMetadata, SetMetadata]


def test_priority_and_assignment_become_asset_updates(kili: KiliHandle) -> None:
    outcome = kili.set_assets_priority(5, external_ids=["ext-1", "ext-2"], project_id="project-1")
    assert outcome == {"succeeded": [{"assetId": "a1"}, {"assetId": "a2"}], "declined": [], "failed": []}
    kili.assign_assets_to_labelers([["user-3"], []], asset_ids=["a1", "a2"])
    assert kili._end() == [
        {"type": "update_asset", "asset_id": "a1", "priority": 5},
        {"type": "update_asset", "asset_id": "a2", "priority": 5},
        {"type": "update_asset", "asset_id": "a1", "to_be_labeled_by": ["user-3"]},
        {"type": "update_asset", "asset_id": "a2", "to_be_labeled_by": []},
    ]


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda k: k.set_assets_priority("high", asset_ids=["a1"]), TypeError, "priority is an int"),
    (lambda k: k.assign_assets_to_labelers([["u"]], asset_ids=["a1", "a2"]), ValueError, "1 items for 2"),
    (lambda k: k.assign_assets_to_labelers(["u"], asset_ids=["a1"]), TypeError, "must be a list, not str"),
    (lambda k: k.add_metadata(["x"], "project-1", asset_ids=["a1"]), TypeError, "are dicts, not str"),
    (lambda k: k.update_issue_status("issue-7", "RESOLVED"), ValueError, "OPEN, SOLVED, CANCELLED"),
])
def test_misuse_of_the_new_writes_is_refused_with_a_message(kili: KiliHandle, call, error, message: str) -> None:
    with pytest.raises(error, match=message):
        call(kili)
    assert kili._end() == []


def test_an_issue_is_resolved_on_the_asset_its_context_or_a_read_gives(kili: KiliHandle) -> None:
    assert kili.update_issue_status("issue-7", "SOLVED") == {"id": "issue-7", "status": "SOLVED"}
    [issue] = kili.issues("project-1", asset_id="a1", status="OPEN")
    kili.update_issue_status(issue["id"], "OPEN")
    actions = kili._end()
    assert actions == [{"type": "update_issue_status", "asset_id": "a1", "issue_id": "issue-7", "status": "SOLVED"},
                       {"type": "update_issue_status", "asset_id": "a1", "issue_id": "issue-7", "status": "OPEN"}]
    assert UpdateIssueStatus.model_validate(actions[0]).status == "SOLVED"


def test_an_issue_read_live_is_known_by_its_asset() -> None:
    issues = [{"id": "issue-9", "assetId": "a5", "status": "OPEN", "type": "ISSUE"}]
    handle = KiliHandle("project-1", reader=lambda method, query: issues if method == "issues" else [])
    handle._begin(make_event(asset_id="a1"), reader=lambda method, query: issues if method == "issues" else [])
    handle.issues("project-1", asset_id="a5")
    handle.update_issue_status("issue-9", "CANCELLED")
    assert handle._end() == [{"type": "update_issue_status", "asset_id": "a5", "issue_id": "issue-9",
                              "status": "CANCELLED"}]


def test_an_issue_goes_on_its_labels_asset_known_from_a_read_or_looked_up_live() -> None:
    labels = {"L-read": "a5", "L-other": "a6"}
    asked: list[dict] = []

    def reader(method: str, query: dict) -> list[dict]:
        asked.append(query)
        wanted = [query["label_id"]] if "label_id" in query else ["L-read"]
        return [{"id": label, "assetId": labels[label]} for label in wanted if label in labels]

    handle = KiliHandle("project-1", reader=reader)
    handle._begin(make_event(asset_id="a1", label=make_label({}, id="L-event")), reader=reader)
    handle.labels("project-1", author_in=["carol"], fields=["id"])
    handle.create_issues("project-1", ["L-read", "L-other", "L-event", "L-elsewhere"], text_array=["x"] * 4)
    assert [(a["label_id"], a["asset_id"]) for a in handle._end()] == [
        ("L-read", "a5"), ("L-other", "a6"), ("L-event", "a1"),
        ("L-elsewhere", "a1")]  # no asset of the project has it: the runtime refuses it on the event's asset
    # The label read first costs no lookup; the event's own needs none.
    assert [q.get("label_id") for q in asked] == [None, "L-other", "L-elsewhere"]


def test_without_live_reads_a_label_of_another_asset_is_found_in_the_context() -> None:
    event = make_event(asset_id="a1", label=make_label({}, id="L1"))
    event["context"]["assets"] = [{"id": "a2", "labels": [make_label({}, id="L2")]}]
    handle = KiliHandle("project-1")
    handle._begin(event)
    handle.create_issues("project-1", ["L2", "L9"])
    assert [(a["label_id"], a["asset_id"]) for a in handle._end()] == [("L2", "a2"), ("L9", "a1")]


PROJECT_ASSETS = [{"id": "a1", "externalId": "doc-page1"}, {"id": "a2", "externalId": "doc-page2"},
                  {"id": "a3", "externalId": "twin"}, {"id": "a4", "externalId": "twin"}]


def live_handle(asked: list[dict]) -> KiliHandle:
    """A handle with live reads of a project of PROJECT_ASSETS, in a hook of an event on a1."""
    def reader(method: str, query: dict) -> list[dict]:
        asked.append(query)
        wanted = query.get("external_id_strictly_in")
        return [a for a in PROJECT_ASSETS if wanted is None or a["externalId"] in wanted]

    handle = KiliHandle("project-1", reader=reader)
    handle._begin(make_event(asset_id="a1", asset={"externalId": "doc-page1"}, context=False), reader=reader)
    return handle


def test_external_ids_of_the_projects_other_assets_resolve_live_as_on_kili() -> None:
    asked: list[dict] = []
    handle = live_handle(asked)
    handle.send_back_to_queue(external_ids=["doc-page2", "doc-page2"])
    assert [a["asset_id"] for a in handle._end()] == ["a2", "a2"]
    assert asked == [{"project_id": "project-1", "external_id_strictly_in": ["doc-page2"]}]


def test_external_ids_of_assets_the_hook_read_need_no_lookup() -> None:
    asked: list[dict] = []
    handle = live_handle(asked)
    handle.assets("project-1", fields=["externalId"])
    handle.add_to_review(external_ids=["doc-page2"])
    assert [a["asset_id"] for a in handle._end()] == ["a2"] and len(asked) == 1


@pytest.mark.parametrize(("external_id", "message"), [
    ("nope.pdf", "kili.send_back_to_queue: no asset of project 'project-1' has the external id 'nope.pdf'"),
    ("twin", ("kili.send_back_to_queue: external id 'twin' names 2 assets of project 'project-1' ('a3', 'a4'); "
              "pass asset_ids instead")),
])
def test_an_external_id_no_single_asset_of_the_project_has_is_unresolved(external_id: str, message: str) -> None:
    handle = live_handle([])
    with pytest.raises(UnresolvedAssetError, match=re.escape(message)):
        handle.send_back_to_queue(external_ids=["doc-page2", external_id])
    assert handle._end() == []


def test_an_issue_the_event_does_not_know_says_to_read_it_first(kili: KiliHandle) -> None:
    with pytest.raises(UnresolvedAssetError, match=r"issue 'issue-404' .* self\.kili\.issues"):
        kili.update_issue_status("issue-404", "SOLVED")


def test_create_questions_asks_on_each_asset(kili: KiliHandle) -> None:
    created = kili.create_questions("project-1", ["Is this a receipt?", None],
                                    asset_external_id_array=["ext-2", "ext-1"])
    assert [c["id"].startswith("pending-question-") for c in created] == [True, True]
    assert kili._end() == [{"type": "create_question", "asset_id": "a2", "text": "Is this a receipt?"},
                           {"type": "create_question", "asset_id": "a1", "text": None}]
