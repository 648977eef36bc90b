"""Typed models: recorded events (what each type requires), labels, assets, projects."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from plugin_sdk.models import EVENT_FORMAT_VERSION, Asset, Event, Label, Project

LABEL = {"id": "label-1", "jsonResponse": {"JOB": {"text": "x"}}}


def event(**fields: Any) -> dict[str, Any]:
    return {"id": "evt-1", "project_id": "p", **fields}


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        Event.model_validate(data)
    return "; ".join(error["msg"] for error in raised.value.errors())


@pytest.mark.parametrize("kind", ["onSubmit", "onReview", "onCustomInterfaceClick"])
def test_label_events_need_an_asset_and_a_label_with_json_response(kind: str) -> None:
    parsed = Event.model_validate(event(type=kind, asset_id="a", label=LABEL))
    assert parsed.label is not None and parsed.label.json_response == {"JOB": {"text": "x"}}
    assert f"a {kind} event needs asset_id" in refused(event(type=kind, label=LABEL))
    assert f"a {kind} event needs a label" in refused(event(type=kind, asset_id="a"))
    assert f"a {kind} event's label needs jsonResponse" in refused(event(type=kind, asset_id="a", label={"id": "l"}))
    assert "Field required" in refused(event(type=kind, asset_id="a", label={"jsonResponse": {}}))


def test_send_back_to_queue_needs_an_asset_but_no_label() -> None:
    assert Event.model_validate(event(type="onSendBackToQueue", asset_id="a")).label is None
    assert "a onSendBackToQueue event needs asset_id" in refused(event(type="onSendBackToQueue"))


@pytest.mark.parametrize("missing", ["id", "type", "project_id"])
def test_id_type_and_project_are_required(missing: str) -> None:
    data = event(type="asset.skipped")
    del data[missing]
    assert "Field required" in refused(data)


@pytest.mark.parametrize("field", ["id", "project_id", "asset_id"])
def test_ids_are_non_empty_and_bounded(field: str) -> None:
    assert "at least 1 character" in refused({**event(type="asset.skipped"), field: ""})
    assert "at most 256 characters" in refused({**event(type="asset.skipped"), field: "x" * 257})


@pytest.mark.parametrize("kind", ["onFoo", "submit", "asset.", "asset..x", "*.created", "onsubmit"])
def test_an_unknown_type_is_refused_with_the_known_ones(kind: str) -> None:
    message = refused(event(type=kind, asset_id="a", label=LABEL))
    assert f"unknown event type {kind!r}" in message
    assert "onSubmit, onReview, onCustomInterfaceClick, onSendBackToQueue" in message


@pytest.mark.parametrize("kind", ["asset.skipped", "label.workflow.created.default", "project-x.member_added"])
def test_dotted_names_need_no_asset_nor_label(kind: str) -> None:
    parsed = Event.model_validate(event(type=kind, payload={"assetId": "a"}, user_id="u", organization_id="o"))
    assert (parsed.type, parsed.payload, parsed.user_id, parsed.organization_id) == (kind, {"assetId": "a"}, "u", "o")


def test_unknown_fields_are_kept_at_every_level() -> None:
    parsed = Event.model_validate(event(
        type="onSubmit", asset_id="a", trace={"span": 1},
        label={**LABEL, "isLatestLabelForUser": True},
        context={"asset": {"id": "a", "custom": 1}, "project": {"id": "p", "dataset": "d"}, "step": "review"},
    ))
    assert parsed.model_extra == {"trace": {"span": 1}}
    assert parsed.label.model_extra == {"isLatestLabelForUser": True}
    assert parsed.context.asset.model_extra == {"custom": 1}
    assert parsed.context.project.model_extra == {"dataset": "d"}
    assert parsed.context.model_extra == {"step": "review"}
    assert parsed.model_dump(mode="json")["trace"] == {"span": 1}


def test_the_format_defaults_to_the_current_version_and_v_is_an_alias() -> None:
    assert EVENT_FORMAT_VERSION == 1
    assert Event.model_validate(event(type="asset.x")).format == 1
    assert Event.model_validate(event(type="asset.x", v=1)).format == 1
    assert Event.model_validate(event(type="asset.x", format=1)).format == 1


@pytest.mark.parametrize("key", ["format", "v"])
def test_a_future_format_is_refused_with_the_fix(key: str) -> None:
    message = refused(event(type="asset.x", **{key: 2}))
    assert "event format 2 is newer than this runtime reads (1): upgrade plugin-runtime" in message


def test_occurred_at_is_parsed_and_invalid_dates_refused() -> None:
    parsed = Event.model_validate(event(type="asset.x", occurred_at="2026-11-20T09:30:00Z"))
    assert parsed.occurred_at == datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
    assert "datetime" in refused(event(type="asset.x", occurred_at="yesterday"))


def test_context_records_are_typed() -> None:
    data = event(type="onSubmit", asset_id="a", label=LABEL, context={
        "asset": {"id": "a", "status": "DONE"}})
    assert "Input should be 'TODO', 'ONGOING', 'LABELED', 'TO_REVIEW' or 'REVIEWED'" in refused(data)
    assert "Input should be 'DEFAULT', 'REVIEW'" in refused(
        event(type="onReview", asset_id="a", label={**LABEL, "labelType": "BOGUS"}))


def test_label_is_camel_case_on_the_wire_and_snake_case_in_python() -> None:
    label = Label.model_validate({"id": "l", "jsonResponse": {"J": 1}, "labelType": "REVIEW", "authorId": "u",
                                  "secondsToLabel": 3, "search": {"id": "l0"}})
    assert (label.json_response, label.label_type, label.author_id, label.seconds_to_label) == ({"J": 1}, "REVIEW", "u", 3)
    assert label.search == {"id": "l0"}
    assert Label(id="l", json_response={}).model_dump(by_alias=True, exclude_none=True) == {"id": "l", "jsonResponse": {}}


def test_asset_and_project_views() -> None:
    asset = Asset.model_validate({"id": "a", "externalId": "x.pdf", "jsonMetadata": {"k": 1},
                                  "labels": [{"id": "l", "jsonResponse": {}}]})
    assert (asset.external_id, asset.json_metadata, asset.labels[0].id) == ("x.pdf", {"k": 1}, "l")
    project = Project.model_validate({"id": "p", "jsonInterface": {"jobs": {}}, "inputType": "PDF"})
    assert (project.json_interface, project.input_type) == ({"jobs": {}}, "PDF")
