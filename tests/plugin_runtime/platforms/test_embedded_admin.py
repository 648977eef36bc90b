"""The embedded platform's admin methods (what the API's platform routes call) on a real SQLite
file: each opens its own transaction, which joins the one recording the event it emits, so a
change never commits without its event."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_runtime.errors import PlatformConflict, PlatformNotFound
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.store import Store


@pytest.fixture()
def platform(tmp_path: Path):
    store = Store(tmp_path / "db.sqlite")
    embedded = EmbeddedPlatform(store)
    embedded.add_project("proj", title="Cars", settings={"reviewCoverage": 10})
    embedded.add_asset("proj", {"id": "car-1", "externalId": "car-1.jpg"})
    yield embedded, store
    store.close()


def test_projects_and_assets_are_added_and_shown_without_a_connection(platform) -> None:
    embedded, _ = platform
    assert [(p["id"], p["title"], p["reviewCoverage"]) for p in embedded.list_projects()] == [("proj", "Cars", 10)]
    assert embedded.show_project("proj")["title"] == "Cars"
    assert [a["externalId"] for a in embedded.list_assets("proj")] == ["car-1.jpg"]
    assert embedded.show_asset("proj", "car-1")["status"] == "TODO"
    with pytest.raises(PlatformConflict, match="already exists"):
        embedded.add_project("proj")
    with pytest.raises(PlatformNotFound, match="project 'nowhere' does not exist"):
        embedded.list_assets("nowhere")  # not an empty list
    with pytest.raises(PlatformNotFound):
        embedded.add_asset("nowhere", {"id": "car-2"})


def test_a_submission_commits_or_rolls_back_with_the_transaction_recording_its_event(platform) -> None:
    embedded, store = platform
    with pytest.raises(RuntimeError), store.write():
        embedded.submit("proj", "car-1", {"jsonResponse": {}})
        raise RuntimeError("recording its event failed")
    assert embedded.show_asset("proj", "car-1")["labels"] == []  # no change without its event

    event = embedded.submit("proj", "car-1", {"jsonResponse": {}, "labelType": "REVIEW"})
    assert event["id"].startswith("evt-") and event["type"] == "onReview"
    asset = embedded.show_asset("proj", "car-1")
    assert ([label["id"] for label in asset["labels"]], asset["status"]) == ([event["label"]["id"]], "REVIEWED")


def test_settings_changes_are_seen_before_they_are_made(platform) -> None:
    embedded, _ = platform
    assert embedded.pending_settings("proj", {"reviewCoverage": 10}) == []  # unchanged: no event
    assert [c["key"] for c in embedded.pending_settings("proj", {"reviewCoverage": 50})] == ["reviewCoverage"]
    event = embedded.change_settings("proj", {"reviewCoverage": 50})
    assert (event["type"], event["id"][:4]) == ("onProjectUpdated", "evt-")
    assert embedded.show_project("proj")["reviewCoverage"] == 50
