"""Kili's hooks as Kili's plugins use them: ``on_event(payload)`` with Kili's top-level keys,
its event matcher given at upload, and ``on_project_updated(settings_updated)``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from plugin_sdk import PluginCore, PluginDefinitionError
from plugin_sdk.core import describe
from plugin_sdk.models import Event
from plugin_sdk.testing import load_plugin, make_event
from tests.plugin_sdk.kili_published import ON_EVENT_AND_HANDLERS_FIXTURE, ON_EVENT_FIXTURE

LABEL = {"id": "label-1", "labelType": "DEFAULT", "jsonResponse": {"CLASS": {"categories": [{"name": "CAT"}]}}}


class Reader(PluginCore):
    """Reads the payload as Kili's plugin documentation writes it, and as kili_events models do."""

    def on_event(self, payload: dict) -> None:
        event = payload.get("event")
        if event == "labels.created.submit":
            label = payload["label"]
            self.logger.info("submitted %s on %s", label["id"], payload["assetId"])
        self.logger.info("%s %s %s %s", payload["event"], payload["projectId"], payload["userId"],
                         sorted(payload["payload"]))


def test_on_event_gets_kilis_top_level_keys_and_the_payload_under_payload() -> None:
    plugin = load_plugin(Reader, event_matcher=["labels.created.*"])
    result = plugin.event("labels.created.submit", {"label": LABEL, "assetId": "a-1"}, user_id="u-1")
    assert result.status == "ok", result.error
    assert [log.message for log in result.logs] == [
        "submitted label-1 on a-1", "labels.created.submit project-1 u-1 ['assetId', 'label']"]


def test_kilis_own_keys_win_over_payload_fields_of_the_same_name() -> None:
    seen: list[dict] = []

    class Keeper(PluginCore):
        def on_event(self, payload: dict) -> None:
            seen.append(payload)

    load_plugin(Keeper, event_matcher=["asset.*"]).event(
        "asset.updated", {"event": "forged", "projectId": "other", "payload": 1, "status": "LABELED"})
    assert (seen[0]["event"], seen[0]["projectId"], seen[0]["status"]) == ("asset.updated", "project-1", "LABELED")
    assert seen[0]["payload"] == {"event": "forged", "projectId": "other", "payload": 1, "status": "LABELED"}


def test_the_payload_parses_into_its_kili_events_model() -> None:
    kili_events = pytest.importorskip("kili_events", reason="Kili's event models come with the dev extra's kili")
    seen: list[dict] = []

    class Keeper(PluginCore):
        def on_event(self, payload: dict) -> None:
            seen.append(payload)

    load_plugin(Keeper, event_matcher=["asset.skipped"]).event(
        "asset.skipped", {"assetId": "a-3", "skipped": True, "status": "ONGOING", "externalId": None},
        user_id="u-7", organization_id="org-1")
    event = kili_events.AssetSkippedEvent.model_validate(seen[0])
    assert (event.user_id, event.payload.asset_id, event.project_id) == ("u-7", "a-3", "project-1")


@pytest.mark.parametrize("source", [ON_EVENT_FIXTURE, ON_EVENT_AND_HANDLERS_FIXTURE])
def test_kilis_on_event_fixtures_call_the_base_hook_by_keyword(tmp_path: Path, source: str) -> None:
    (tmp_path / "main.py").write_text(source)
    plugin = load_plugin(tmp_path, event_matcher=["project.*"])
    result = plugin.event("project.settings.updated", {"fields": ["title"]}, user_id="u-1", organization_id="org-1")
    assert result.status == "ok", result.error  # super().on_event(payload=payload)
    # The base hook says nobody handles it: ours ("not implemented"), or the real kili's when
    # it is installed here ("no method of the plugin receives the event").
    [log] = result.logs
    assert log.level == "WARNING" and ("not implemented" in log.message or "No method" in log.message)


def test_the_upload_event_matcher_replaces_the_class_attribute() -> None:
    class Attribute(PluginCore):
        event_matcher = ["asset.*"]

        def on_event(self, payload: dict) -> None:
            pass

    assert describe(Attribute)["subscriptions"] == ["asset.*"]
    assert describe(Attribute, ["label.workflow.*", "project.settings.updated"])["subscriptions"] == [
        "label.workflow.*", "project.settings.updated"]
    plugin = load_plugin(Attribute, event_matcher=["label.*"])
    assert plugin.event("asset.skipped").skipped and not plugin.event("label.workflow.edited").skipped


@pytest.mark.parametrize(("matcher", "message"), [
    (["*.created"], r"invalid event pattern '\*\.created'"),
    (["asset..x"], "invalid event pattern"),
])
def test_an_invalid_upload_pattern_is_refused(matcher: list[str], message: str) -> None:
    with pytest.raises(PluginDefinitionError, match=message):
        describe(Reader, matcher)


def test_an_event_matcher_without_on_event_is_refused_with_the_fix() -> None:
    class Submits(PluginCore):
        def on_submit(self, label: dict, asset_id: str) -> None:
            pass

    with pytest.raises(PluginDefinitionError, match=r"has no on_event\(self, payload\)"):
        describe(Submits, ["asset.*"])


def test_on_event_without_any_matcher_names_both_ways_to_give_one() -> None:
    with pytest.raises(PluginDefinitionError, match="--event-matcher PATTERN") as raised:
        describe(Reader)
    assert 'event_matcher = ["asset.*"]' in str(raised.value)


class Settings(PluginCore):
    def on_project_updated(self, settings_updated: list[dict]) -> None:
        for setting in settings_updated:
            self.logger.info(setting)
        if any(s["key"] == "jsonInterface" for s in settings_updated):
            [project] = self.kili.projects(project_id=self.project_id, fields=["jsonInterface"])
            self.logger.info("jobs: %s", sorted(project["jsonInterface"]["jobs"]))


def test_on_project_updated_gets_kilis_settings_updated() -> None:
    plugin = load_plugin(Settings)
    assert describe(Settings)["subscriptions"] == ["onProjectUpdated"]
    result = plugin.project_updated([{"key": "reviewCoverage", "newValue": 20, "oldValue": 0},
                                     {"key": "jsonInterface", "newValue": {"jobs": {"J": {}}}, "oldValue": {}}],
                                    project={"jsonInterface": {"jobs": {"J": {}}}})
    assert result.status == "ok", result.error
    assert [log.message for log in result.logs] == [
        "{'key': 'reviewCoverage', 'newValue': 20, 'oldValue': 0}",
        "{'key': 'jsonInterface', 'newValue': {'jobs': {'J': {}}}, 'oldValue': {}}", "jobs: ['J']"]
    assert plugin.submit({}).skipped


def test_an_on_project_updated_event_needs_its_settings_not_an_asset() -> None:
    event = make_event("onProjectUpdated", settings_updated=[{"key": "title", "newValue": "B", "oldValue": "A"}])
    assert "asset_id" not in event and event["context"] == {"project": {"id": "project-1"}}
    assert Event.model_validate(event).settings_updated[0].newValue == "B"
    with pytest.raises(ValidationError, match="needs settings_updated"):
        Event.model_validate({"id": "e", "type": "onProjectUpdated", "project_id": "p"})
    with pytest.raises(ValidationError, match="key"):
        Event.model_validate({"id": "e", "type": "onProjectUpdated", "project_id": "p", "settings_updated": [{}]})
