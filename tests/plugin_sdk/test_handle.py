"""``self.kili``: writes recorded as wire actions under Kili's keyword names; reads answered
from the event's recorded context, for the plugin's own project only."""

from __future__ import annotations

import pytest

from plugin_sdk import (
    ContextUnavailable, PluginCore, ProjectScopeError, UnresolvedAssetError, UnsupportedMethodError,
)
from plugin_sdk.handle import KiliHandle, NoEventError
from plugin_sdk.testing import load_plugin, make_event, make_label

L0 = make_label({"JOB": {"text": "old"}}, id="L0", author_id="user-0")
L1 = make_label({"JOB": {"text": "new"}}, id="L1")
R1 = make_label({"JOB": {"text": "ok"}}, id="R1", label_type="REVIEW", author_id="user-9")


@pytest.fixture
def kili() -> KiliHandle:
    """A handle inside a hook of an onSubmit event on asset a1 (external id ext-1, three
    labels recorded); a2 (ext-2) is carried without its labels."""
    event = make_event(label=L1, asset_id="a1", labels=[L0, L1, R1],
                       asset={"externalId": "ext-1", "jsonMetadata": {"k": "v"}},
                       project={"title": "Invoices"})
    event["context"]["assets"] = [{"id": "a2", "externalId": "ext-2", "status": "TODO"}]
    handle = KiliHandle("project-1")
    handle._begin(event)
    return handle


# Writes -----------------------------------------------------------------------------------

def test_create_issues_records_one_issue_per_label(kili: KiliHandle) -> None:
    created = kili.create_issues(project_id="project-1", label_id_array=["L1", "L0"],
                                 object_mid_array=["mid-1", None], text_array=["bad IBAN", "bad currency"])
    assert len(created) == 2 and all(c["id"].startswith("pending-issue-") for c in created)
    assert kili._end() == [
        {"type": "create_issue", "asset_id": "a1", "label_id": "L1", "text": "bad IBAN", "object_mid": "mid-1"},
        {"type": "create_issue", "asset_id": "a1", "label_id": "L0", "text": "bad currency", "object_mid": None},
    ]


def test_asset_status_writes_accept_asset_ids_or_external_ids(kili: KiliHandle) -> None:
    assert kili.send_back_to_queue(asset_ids=["a1"]) == {"id": "project-1", "asset_ids": ["a1"]}
    assert kili.add_to_review(external_ids=["ext-2", "ext-1"], project_id="project-1")["asset_ids"] == ["a2", "a1"]
    assert kili._end() == [
        {"type": "send_back_to_queue", "asset_id": "a1"},
        {"type": "add_to_review", "asset_id": "a2"},
        {"type": "add_to_review", "asset_id": "a1"},
    ]


def test_update_properties_takes_metadata_as_dicts_and_json_strings(kili: KiliHandle) -> None:
    kili.update_properties_in_assets(
        external_ids=["ext-1", "ext-2"], json_metadatas=[{"accuracy": 50}, '{"accuracy": 100, "tags": ["x"]}'],
        priorities=[1, 0], to_be_labeled_by_array=[["a@x.io"], None],
        is_used_for_consensus_array=[True, None], is_honeypot_array=[None, False],
    )
    assert kili._end() == [
        {"type": "update_asset", "asset_id": "a1", "priority": 1, "json_metadata": {"accuracy": 50},
         "to_be_labeled_by": ["a@x.io"], "is_used_for_consensus": True},
        {"type": "update_asset", "asset_id": "a2", "priority": 0,
         "json_metadata": {"accuracy": 100, "tags": ["x"]}, "is_honeypot": False},
    ]


def test_update_properties_records_nothing_for_an_asset_without_change(kili: KiliHandle) -> None:
    assert kili.update_properties_in_assets(asset_ids=["a1", "a2"], priorities=[None, 3]) == [{"id": "a1"}, {"id": "a2"}]
    assert kili._end() == [{"type": "update_asset", "asset_id": "a2", "priority": 3}]


def test_append_labels_records_kilis_fields(kili: KiliHandle) -> None:
    created = kili.append_labels(asset_external_id_array=["ext-2"], json_response_array=[{"JOB": {}}],
                                 author_id_array=["user-5"], seconds_to_label_array=[12],
                                 model_name="gpt", label_type="PREDICTION", project_id="project-1")
    assert created[0]["id"].startswith("pending-label-")
    assert kili._end() == [{"type": "append_label", "asset_id": "a2", "json_response": {"JOB": {}},
                            "label_type": "PREDICTION", "model_name": "gpt", "author_id": "user-5",
                            "seconds_to_label": 12}]


def test_create_honeypot_marks_the_asset_and_adds_the_ground_truth(kili: KiliHandle) -> None:
    kili.create_honeypot(json_response={"JOB": {"text": "truth"}}, asset_external_id="ext-1")
    assert kili._end() == [
        {"type": "update_asset", "asset_id": "a1", "is_honeypot": True},
        {"type": "append_label", "asset_id": "a1", "json_response": {"JOB": {"text": "truth"}},
         "label_type": "REVIEW", "model_name": None},
    ]


@pytest.mark.parametrize("write", [
    lambda k: k.send_back_to_queue(external_ids=["ext-1", "nope.pdf"]),
    lambda k: k.update_properties_in_assets(external_ids=["nope.pdf"], priorities=[1]),
    lambda k: k.append_labels(asset_external_id_array=["nope.pdf"], json_response_array=[{}]),
    lambda k: k.create_honeypot({}, asset_external_id="nope.pdf"),
])
def test_an_external_id_the_event_does_not_carry_is_unresolved(kili: KiliHandle, write) -> None:
    with pytest.raises(UnresolvedAssetError, match="external id 'nope.pdf' is not an asset this event carries") as raised:
        write(kili)
    assert "'ext-1', 'ext-2'" in str(raised.value) and "pass asset_ids instead" in str(raised.value)
    assert kili._end() == []


@pytest.mark.parametrize("write", [
    lambda k: k.create_issues("project-2", ["L1"]),
    lambda k: k.send_back_to_queue(asset_ids=["a1"], project_id="project-2"),
    lambda k: k.add_to_review(asset_ids=["a1"], project_id="project-2"),
    lambda k: k.update_properties_in_assets(asset_ids=["a1"], priorities=[1], project_id="project-2"),
    lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}], project_id="project-2"),
    lambda k: k.create_honeypot({}, asset_id="a1", project_id="project-2"),
    lambda k: k.labels("project-2", asset_id="a1"),
    lambda k: k.assets("project-2", asset_id="a1"),
    lambda k: k.projects(project_id="project-2"),
])
def test_another_project_is_refused(kili: KiliHandle, write) -> None:
    with pytest.raises(ProjectScopeError, match=r"\(project_id='project-2'\): a plugin may only touch its own project \('project-1'\)"):
        write(kili)
    assert kili._end() == []


@pytest.mark.parametrize(("write", "message"), [
    (lambda k: k.create_issues("project-1", ["L1", "L0"], text_array=["x"]), "text_array has 1 items for 2"),
    (lambda k: k.create_issues("project-1", ["L1"], object_mid_array=["m", "n"]), "object_mid_array has 2 items for 1"),
    (lambda k: k.update_properties_in_assets(asset_ids=["a1", "a2"], json_metadatas=[{}]), "json_metadatas has 1 items for 2"),
    (lambda k: k.update_properties_in_assets(asset_ids=["a1"], priorities=[1, 2]), "priorities has 2 items for 1"),
    (lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}, {}]), "json_response_array has 2 items for 1"),
    (lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}], author_id_array=[]), "author_id_array has 0 items for 1"),
])
def test_arrays_of_different_lengths_are_refused(kili: KiliHandle, write, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write(kili)
    assert kili._end() == []


@pytest.mark.parametrize(("write", "argument"), [
    (lambda k: k.update_properties_in_assets(asset_ids=["a1"], status_array=["LABELED"]), "status_array"),
    (lambda k: k.update_properties_in_assets(asset_ids=["a1"], consensus_marks=[0.5]), "consensus_marks"),
    (lambda k: k.update_properties_in_assets(asset_ids=["a1"], contents=["x"]), "contents"),
    (lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}], overwrite=True), "overwrite"),
    (lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}], label_type="PREDICTION",
                               overwrite=True), "overwrite"),  # a model's labels: without model_name, none
    (lambda k: k.append_labels(asset_id_array=["a1"], json_response_array=[{}], step_name="Review"), "step_name"),
    (lambda k: k.labels("project-1", asset_id="a1", created_at_gte="2026-01-01"), "created_at_gte"),
    (lambda k: k.assets("project-1", asset_id="a1", metadata_where={"k": "v"}), "metadata_where"),
])
def test_arguments_the_sandbox_cannot_honour_are_refused_by_name(kili: KiliHandle, write, argument: str) -> None:
    with pytest.raises(UnsupportedMethodError, match=rf"\({argument}=\.\.\.\) is not supported inside a plugin sandbox"):
        write(kili)
    assert kili._end() == []


def test_an_unknown_method_names_itself_and_what_is_available(kili: KiliHandle) -> None:
    with pytest.raises(UnsupportedMethodError) as raised:
        kili.delete_project("project-1")
    assert str(raised.value).startswith("kili.delete_project is not available to a plugin")
    assert "create_issues" in str(raised.value) and "count_projects" in str(raised.value)
    assert not hasattr(kili, "export_labels")


@pytest.mark.parametrize(("write", "error", "message"), [
    (lambda k: k.send_back_to_queue(asset_ids=["a1"], external_ids=["ext-1"]), ValueError, "not both"),
    (lambda k: k.add_to_review(), ValueError, "give asset_ids or external_ids"),
    (lambda k: k.send_back_to_queue(asset_ids="a1"), TypeError, "asset_ids must be a list, not str"),
    (lambda k: k.send_back_to_queue(asset_ids=[""]), TypeError, "asset ids are non-empty strings"),
    (lambda k: k.create_honeypot({}, asset_id="a1", asset_external_id="ext-1"), ValueError, "exactly one of"),
    (lambda k: k.labels("project-1", asset_idd="a1"), TypeError, "unexpected keyword argument 'asset_idd'"),
    (lambda k: k.labels("project-1", asset_id="a1", output_format="parsed_label"), UnsupportedMethodError, "output_format"),
])
def test_misuse_is_refused_with_a_message(kili: KiliHandle, write, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        write(kili)
    assert kili._end() == []


def test_a_string_label_id_array_is_refused_like_asset_ids(kili: KiliHandle) -> None:
    with pytest.raises(TypeError):
        kili.create_issues("project-1", label_id_array="L1")
    assert kili._end() == []


def test_the_handle_is_unusable_outside_a_hook() -> None:
    class EagerInit(PluginCore):
        def __init__(self, kili, project_id):
            super().__init__(kili, project_id)
            kili.labels(project_id)

        def on_submit(self, label, asset_id):
            pass

    with pytest.raises(NoEventError, match="only usable while a hook runs"):
        load_plugin(EagerInit)


# Reads ------------------------------------------------------------------------------------

def test_labels_with_kilis_default_fields_return_every_recorded_field(kili: KiliHandle) -> None:
    labels = kili.labels(project_id="project-1", asset_id="a1")
    assert [label["id"] for label in labels] == ["L0", "L1", "R1"]
    assert labels[1] == {**L1, "assetId": "a1", "author": {"id": "user-1"}}


def test_fields_keep_only_the_named_and_dotted_fields(kili: KiliHandle) -> None:
    assert kili.labels("project-1", asset_id="a1", fields=["id", "author.id", "jsonResponse"], first=1) == [
        {"id": "L0", "author": {"id": "user-0"}, "jsonResponse": {"JOB": {"text": "old"}}}]
    assets = kili.assets("project-1", asset_id="a1", fields=["externalId", "labels.jsonResponse"])
    assert assets == [{"externalId": "ext-1", "labels": [
        {"jsonResponse": L0["jsonResponse"]}, {"jsonResponse": L1["jsonResponse"]}, {"jsonResponse": R1["jsonResponse"]}]}]


def test_reads_filter_and_page_like_kili(kili: KiliHandle) -> None:
    def ids(records):
        return [r["id"] for r in records]

    assert ids(kili.labels("project-1", asset_id="a1", type_in=["REVIEW"], fields=["id"])) == ["R1"]
    assert ids(kili.labels("project-1", asset_id="a1", first=1, skip=1, fields=["id"])) == ["L1"]
    assert ids(kili.labels("project-1", asset_external_id_in=["ext-1"], skip=2, fields=["id"])) == ["R1"]
    assert ids(kili.labels("project-1", label_id="L0", fields=["id"])) == ["L0"]
    assert ids(kili.assets("project-1", asset_id_in=["a1", "a2"], status_in=["TODO"], fields=["id"])) == ["a2"]
    assert sorted(ids(kili.assets("project-1", external_id_in=["ext-2", "ext-1"], fields=["id"]))) == ["a1", "a2"]
    generator = kili.labels("project-1", asset_id="a1", fields=["id"], as_generator=True)
    assert not isinstance(generator, list) and ids(generator) == ["L0", "L1", "R1"]
    assert ids(kili.assets("project-1", asset_id="a2", as_generator=True)) == ["a2"]


def test_counts_and_the_project(kili: KiliHandle) -> None:
    assert kili.count_labels("project-1", asset_id="a1") == 3
    assert kili.count_labels(project_id="project-1", asset_id="a1", type_in=["DEFAULT"]) == 2
    assert kili.count_assets("project-1", asset_id_in=["a1", "a2"]) == 2
    assert kili.count_projects() == 1
    assert kili.projects() == [{"id": "project-1", "title": "Invoices"}]
    assert kili.projects(project_id="project-1", fields=["title"]) == [{"title": "Invoices"}]


def test_reads_return_copies_of_the_context(kili: KiliHandle) -> None:
    kili.assets("project-1", asset_id="a1")[0]["jsonMetadata"]["k"] = "changed"
    kili.labels("project-1", asset_id="a1")[0]["jsonResponse"].clear()
    assert kili.assets("project-1", asset_id="a1", fields=["jsonMetadata"]) == [{"jsonMetadata": {"k": "v"}}]
    assert kili.labels("project-1", label_id="L0", fields=["jsonResponse"]) == [{"jsonResponse": L0["jsonResponse"]}]


@pytest.mark.parametrize(("read", "message"), [
    (lambda k: k.labels("project-1"), "a read over the whole project cannot be answered"),
    (lambda k: k.count_assets("project-1"), "a read over the whole project cannot be answered"),
    (lambda k: k.labels("project-1", asset_id="a2"), "the labels of asset 'a2' are not in the event's recorded context"),
    (lambda k: k.assets("project-1", asset_id="a9"), "asset 'a9' is not in the event's recorded context"),
    (lambda k: k.assets("project-1", asset_id="a2", fields=["jsonMetadata"]), "field 'jsonMetadata' of asset 'a2'"),
    (lambda k: k.projects(fields=["jsonInterface"]), "field 'jsonInterface' of the project"),
])
def test_a_read_the_context_cannot_answer_says_what_is_missing(kili: KiliHandle, read, message: str) -> None:
    with pytest.raises(ContextUnavailable, match=message):
        read(kili)


def test_an_event_without_context_answers_no_read() -> None:
    handle = KiliHandle("project-1")
    handle._begin(make_event(label=make_label({}, id="LX"), asset_id="a1", context=False))
    with pytest.raises(ContextUnavailable, match="asset 'a1' is not in the event's recorded context"):
        handle.assets("project-1", asset_id="a1")
    with pytest.raises(ContextUnavailable, match="the project is not in the event's recorded context"):
        handle.projects()
    # The event's own label is still known: an issue on it needs no context.
    handle.create_issues("project-1", ["LX"])
    assert [(a["asset_id"], a["label_id"]) for a in handle._end()] == [("a1", "LX")]


def test_an_issue_on_a_label_of_unknown_asset_is_unresolved() -> None:
    handle = KiliHandle("project-1")
    handle._begin(make_event("asset.skipped", context=False))
    with pytest.raises(UnresolvedAssetError, match="label 'L7' is not in this event, so its asset is unknown"):
        handle.create_issues("project-1", ["L7"])


def test_a_field_kili_would_answer_with_null_is_none(kili: KiliHandle) -> None:
    [label] = kili.labels("project-1", asset_id="a1", fields=["id", "author.email", "modelName"])[:1]
    assert label["author"] == {"email": None} and label["modelName"] is None


def test_a_label_submitted_by_an_email_reads_that_email_and_is_found_by_it() -> None:
    by_email = make_label({}, id="LE", author_id="alice@example.com")
    handle = KiliHandle("project-1")
    handle._begin(make_event(label=by_email, asset_id="a1", labels=[L0, by_email]))
    assert handle.labels("project-1", asset_id="a1", fields=["id", "author.email", "author.id"]) == [
        {"id": "L0", "author": {"email": None, "id": "user-0"}},  # an id, not an email: none known
        {"id": "LE", "author": {"email": "alice@example.com", "id": "alice@example.com"}}]
    assert [l["id"] for l in handle.labels("project-1", asset_id="a1", author_in=["alice@example.com"])] == ["LE"]


def test_recorded_json_metadata_strings_read_as_objects_as_kili_returns_them() -> None:
    from plugin_sdk.testing import make_event

    handle = KiliHandle("project-1")
    handle._begin(make_event(asset={"jsonMetadata": '{"supplier": "ACME"}'}))
    assert handle.assets("project-1", asset_id="asset-1", fields=["jsonMetadata"]) == [
        {"jsonMetadata": {"supplier": "ACME"}}]
