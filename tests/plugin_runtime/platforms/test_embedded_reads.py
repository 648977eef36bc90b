"""Plugins' live reads on a real SQLite file: the indexed queries answer exactly what the pure
filters of the dry-run answer over the whole project, page in SQL, never scan a table, and
stop at their deadline."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from plugin_runtime.platforms.embedded import EmbeddedPlatform, PlatformError
from plugin_runtime.store import Store
from plugin_sdk import _queries


@pytest.fixture()
def platform(tmp_path: Path):
    store = Store(tmp_path / "db.sqlite")
    embedded = EmbeddedPlatform(store)
    stamps = (f"2026-01-01T00:00:{second:02d}.000Z" for second in itertools.count())
    with store.write() as db:
        for project in ("proj", "other"):
            embedded.create_project(db, project)
            for number, status in enumerate(["TODO", "LABELED", "ONGOING", "LABELED", "REVIEWED"]):
                asset_id = f"{project}-a{number}"
                embedded.create_asset(db, project, {"id": asset_id, "externalId": f"{asset_id}.pdf", "status": status})
                for author, kind in [("ana", "DEFAULT"), ("bob", "DEFAULT"), ("ana", "REVIEW"), ("ana", "DEFAULT"),
                                     (None, "PREDICTION")][: number + 1]:
                    # Some labels share a date: ties keep the platform's order.
                    stamp = "2026-01-01T00:00:00.000Z" if kind == "PREDICTION" else next(stamps)
                    label = {"id": f"{asset_id}-l{next(stamps)[17:19]}", "labelType": kind, "authorId": author,
                             "jsonResponse": {"N": number}, "createdAt": stamp}
                    if author == "bob":
                        label["author"] = {"id": "bob", "email": "bob@example.com"}
                    embedded.insert_label(db, project, asset_id, label)
                label_id = db.execute("SELECT id FROM labels WHERE asset_id = ? ORDER BY seq", (asset_id,)).fetchone()[0]
                for text, kind, state in [("first", "ISSUE", "OPEN"), ("second", "QUESTION", "SOLVED")][: number % 3]:
                    embedded.apply_in(db, "run-x", [{"type": "create_issue", "asset_id": asset_id, "label_id": label_id,
                                                  "text": text}])
                    db.execute("UPDATE issues SET type = ?, status = ? WHERE text = ? AND asset_id = ?",
                               (kind, state, text, asset_id))
    yield embedded, store
    store.close()


def whole_project(embedded: EmbeddedPlatform, store: Store, method: str, query: dict) -> list[dict]:
    """What the runtime answered before: the whole project loaded, then the pure filters."""
    assets = embedded.assets(store.read(), "proj")
    if method == "assets":
        records = _queries.filter_assets(assets, query)
    elif method == "issues":
        records = _queries.filter_issues([{**i, "assetId": a["id"]} for a in assets for i in a["issues"]], query)
    else:
        statuses, externals = query.get("asset_status_in"), query.get("asset_external_id_in")
        kept = [a for a in assets if (not statuses or a["status"] in statuses)
                and (not externals or a["externalId"] in externals)]
        records = _queries.filter_labels([_queries.normalise_label(l, a["id"]) for a in kept for l in a["labels"]], query)
    return _queries.page(records, query.get("first"), query.get("skip"))


QUERIES = {
    "labels": [{}, {"asset_id": "proj-a3"}, {"label_id": "proj-a2-l07"}, {"type_in": ["REVIEW", "PREDICTION"]},
               {"author_in": ["bob@example.com"]}, {"author_in": ["ana"]}, {"user_id": "ana"}, {"id_contains": ["a4-", "a1-"]},
               {"asset_status_in": ["LABELED"]}, {"asset_external_id_in": ["proj-a4.pdf"]}, {"type_in": []},
               {"first": 3}, {"first": 4, "skip": 2}, {"skip": 100}, {"asset_id": "proj-a4", "first": 2, "skip": 1},
               {"asset_id": "other-a4"}],
    "assets": [{}, {"asset_id": "proj-a1"}, {"asset_id_in": ["proj-a0", "proj-a4", "other-a1"]}, {"asset_id_in": []},
               {"asset_id_not_in": ["proj-a0"]}, {"external_id_in": ["proj-a2.pdf"]},
               {"external_id_strictly_in": ["proj-a3.pdf"]}, {"status_in": ["LABELED", "TODO"]}, {"first": 2, "skip": 1}],
    "issues": [{}, {"asset_id": "proj-a1"}, {"asset_id_in": ["proj-a2", "proj-a4"]}, {"issue_type": "QUESTION"},
               {"status": "OPEN"}, {"first": 1, "skip": 1}],
}


@pytest.mark.parametrize("method, query", [(m, q) for m, queries in QUERIES.items() for q in queries])
def test_indexed_reads_answer_what_the_whole_project_filtered_answers(platform, method: str, query: dict) -> None:
    embedded, store = platform
    expected = whole_project(embedded, store, method, query)
    assert embedded.read("proj", method, {**query, "project_id": "proj"}) == expected
    unpaged = {k: v for k, v in query.items() if k not in ("first", "skip")}
    assert embedded.read("proj", f"count_{method}", unpaged) == len(whole_project(embedded, store, method, unpaged))


def test_latest_flags_cover_all_the_assets_labels_whatever_the_filter(platform) -> None:
    embedded, _ = platform
    [latest_review] = embedded.read("proj", "labels", {"asset_id": "proj-a3", "type_in": ["REVIEW"]})
    assert latest_review["isLatestReviewLabelForUser"] and not latest_review["isLatestLabelForUser"]
    ana = embedded.read("proj", "labels", {"asset_id": "proj-a3", "user_id": "ana"})
    assert [label["isLatestLabelForUser"] for label in ana] == [False, False, True]


@pytest.mark.parametrize("method, query", [
    ("labels", {"asset_id": "proj-a3"}), ("labels", {"label_id": "proj-a2-l07"}), ("labels", {"first": 2}),
    ("labels", {"type_in": ["REVIEW"], "asset_status_in": ["LABELED"]}), ("count_labels", {}),
    ("assets", {"asset_id_in": ["proj-a0", "proj-a4"]}), ("assets", {"status_in": ["LABELED"]}), ("count_assets", {}),
    ("issues", {"asset_id": "proj-a2"}), ("issues", {"first": 1}), ("count_issues", {"status": "OPEN"}),
])
def test_reads_search_indexes_and_never_scan_a_table(platform, method: str, query: dict) -> None:
    embedded, store = platform
    statements: list[str] = []
    db = store.read()
    db.set_trace_callback(statements.append)
    try:
        embedded.read("proj", method, query)
    finally:
        db.set_trace_callback(None)
    assert statements
    for statement in statements:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}")]
        scans = [step for step in plan if step.startswith("SCAN") and "json_each" not in step]
        assert not scans, (statement, plan)


def test_paging_and_list_filters_are_checked(platform) -> None:
    embedded, _ = platform
    for bad in ({"first": -1}, {"skip": "2"}, {"first": True}, {"asset_id_in": "proj-a1"}, {"asset_id_in": [1]},
                {"asset_id": 5}):
        with pytest.raises(ValueError):
            embedded.read("proj", "assets", bad)
    assert len(embedded.read("proj", "assets", {"first": 10**30})) == 5  # past SQLite's integers: "all"
    with pytest.raises(PlatformError, match="not a read"):
        embedded.read("proj", "exports", {})


def test_a_read_past_its_deadline_stops(platform) -> None:
    embedded, store = platform
    with store.write() as db:
        for number in range(3000):
            embedded.insert_label(db, "proj", "proj-a0", {"id": f"bulk-{number}", "jsonResponse": {}})
    with pytest.raises(TimeoutError):
        embedded.read("proj", "labels", {}, deadline=time.perf_counter())
    # The connection is left as it was: the next read answers.
    assert embedded.read("proj", "count_labels", {}, deadline=time.perf_counter() + 60) == 3015


def test_the_project_read_pages_too(platform) -> None:
    embedded, _ = platform
    assert [p["id"] for p in embedded.read("proj", "projects", {})] == ["proj"]
    assert embedded.read("proj", "projects", {"first": 0}) == [] and embedded.read("proj", "projects", {"skip": 1}) == []
    assert [p["id"] for p in embedded.read("new-proj", "projects", {"first": 1})] == ["new-proj"]
