"""Project settings on the embedded platform (a real SQLite file): a change emits
``onProjectUpdated`` with Kili's ``settings_updated`` items, and one received from outside
updates the platform's copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_runtime.errors import PlatformNotFound, PlatformRefused
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.store import Store
from plugin_sdk.models import Event


@pytest.fixture()
def platform(tmp_path: Path):
    store = Store(tmp_path / "db.sqlite")
    embedded = EmbeddedPlatform(store)
    with store.write() as db:
        embedded.create_project(db, "proj", title="Invoices", json_interface={"jobs": {}})
    yield embedded, store
    store.close()


def test_a_change_emits_what_changed_with_its_old_and_new_values(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        event = embedded.update_project(db, "proj", {"title": "Invoices 2026", "reviewCoverage": 20,
                                                     "minConsensusSize": 1, "description": "QA"})
    assert event["type"] == "onProjectUpdated" and "asset_id" not in event
    assert event["settings_updated"] == [  # minConsensusSize was 1 already: not a change
        {"key": "title", "newValue": "Invoices 2026", "oldValue": "Invoices"},
        {"key": "reviewCoverage", "newValue": 20, "oldValue": 0},
        {"key": "description", "newValue": "QA", "oldValue": None},
    ]
    project = embedded.project(store.read(), "proj")
    assert (project["title"], project["reviewCoverage"], project["description"]) == ("Invoices 2026", 20, "QA")
    assert event["context"]["project"] == project
    Event.model_validate({**event, "id": "evt-1"})  # a valid recorded event, for export and dry-runs


def test_the_interface_is_a_setting_too(platform) -> None:
    embedded, store = platform
    jobs = {"jobs": {"CLASS": {"mlTask": "CLASSIFICATION"}}}
    with store.write() as db:
        [item] = embedded.update_project(db, "proj", {"jsonInterface": jobs})["settings_updated"]
    assert item == {"key": "jsonInterface", "newValue": jobs, "oldValue": {"jobs": {}}}
    assert embedded.project(store.read(), "proj")["jsonInterface"] == jobs


def test_nothing_to_change_and_wrong_names_are_told_apart(platform) -> None:
    embedded, store = platform
    assert embedded.settings_changes(store.read(), "proj", {"title": "Invoices"}) == []
    with pytest.raises(PlatformRefused, match="not project settings: colour"):
        embedded.settings_changes(store.read(), "proj", {"colour": "red"})
    with pytest.raises(PlatformNotFound):
        embedded.settings_changes(store.read(), "nope", {"title": "x"})


def test_a_received_onprojectupdated_updates_the_platforms_copy(platform) -> None:
    embedded, store = platform
    embedded.mirror({"id": "e-1", "type": "onProjectUpdated", "project_id": "proj", "settings_updated": [
        {"key": "reviewCoverage", "newValue": 50, "oldValue": 0},
        {"key": "somethingKiliAddedLater", "newValue": 1, "oldValue": 0},  # not kept, not refused
    ]})
    assert embedded.project(store.read(), "proj")["reviewCoverage"] == 50
    assert embedded.snapshot({"project_id": "proj", "type": "onProjectUpdated"})["project"]["reviewCoverage"] == 50
