"""What the dashboard reads (``store/console``): pages of runs newest first by keyset, every run
once across pages and filters, each query along an index whatever the number of runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from plugin_runtime.statuses import RunStatus
from plugin_runtime.store import Store
from plugin_runtime.store.console import Console, Cursor

PLUGINS, PROJECTS = ("bot-a", "bot-b"), ("proj-1", "proj-2", "proj-3")
STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.DEAD, RunStatus.PENDING)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """300 events, each with a run of both plugins (runs of one event tie on its sequence)."""
    opened = Store(tmp_path_factory.mktemp("console") / "runtime.db")
    with opened.write() as db:
        for number in range(300):
            project = PROJECTS[number % 3]
            seq = opened.events.insert(db, {"id": f"evt-{number}", "type": "onSubmit", "project_id": project},
                                       "webhook", None, None, 0, f"evt-{number}", "2026-01-01T00:00:00.000Z")
            for plugin in PLUGINS:
                opened.runs.insert(db, f"run-{plugin}-{number:04d}", f"evt-{number}", seq, plugin, 1, project, None,
                                   f"2026-01-01T00:{number // 60:02d}:{number % 60:02d}.000Z")
                status = STATUSES[(number + len(plugin)) % 4]
                if status != RunStatus.PENDING:
                    opened.runs.end(db, f"run-{plugin}-{number:04d}", status, None, "x" * 1000, "2026-01-02T00:00:00Z",
                                    1.5, {})
    yield opened
    opened.close()


def every_page(store: Store, filters: dict, size: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = Console().runs_page(store.read(), filters, cursor, size)
        if not page:
            return pages
        pages.append(page)
        cursor = Cursor(page[-1]["event_seq"], page[-1]["id"])


@pytest.mark.parametrize("filters", [{}, {"plugin": "bot-a"}, {"project_id": "proj-2"}, {"status": "dead"},
                                     {"plugin": "bot-b", "project_id": "proj-3", "status": "failed"}])
def test_pages_hold_every_matching_run_once_newest_first(store: Store, filters: dict) -> None:
    pages = every_page(store, filters, 7)
    shown = [run["id"] for page in pages for run in page]
    where = " AND ".join(f"{column} = ?" for column in filters) or "1 = 1"
    expected = [r[0] for r in store.read().execute(
        f"SELECT id FROM runs WHERE {where} ORDER BY event_seq DESC, id DESC", tuple(filters.values()))]
    assert shown == expected and len(set(shown)) == len(shown) and expected
    assert all(len(page) == 7 for page in pages[:-1])
    for run in itertools.chain.from_iterable(pages):
        assert all(run[column] == value for column, value in filters.items())
        assert len(run["error_start"] or "") <= 300  # a row shows the error's beginning; the run page all of it


def test_a_query_goes_along_an_index_whatever_the_filters(store: Store) -> None:
    db = store.read()
    for filters in ({}, {"plugin": "bot-a"}, {"project_id": "proj-1"}, {"status": "failed"}):
        where = ["(runs.event_seq, runs.id) < (?, ?)", *[f"runs.{column} = ?" for column in filters]]
        plan = " | ".join(row[3] for row in db.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY event_seq DESC, id DESC LIMIT 50",
            (10**6, "run-", *filters.values())))
        assert "USING" in plan and "SCAN runs" not in plan and "TEMP B-TREE FOR ORDER BY" not in plan, (filters, plan)


def test_the_gauges_read_the_oldest_pending_run_and_the_dead_letters(store: Store) -> None:
    console, db = Console(), store.read()
    dead = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'dead'").fetchone()[0]
    assert console.count_status(db, RunStatus.DEAD) == dead > 0
    oldest = db.execute("SELECT MIN(created_at) FROM runs WHERE status = 'pending'").fetchone()[0]
    assert console.oldest_pending_created(db) == oldest


@pytest.mark.parametrize("text", ["", "12", ":run-1", "x:run-1", "-1:run-1", "1:", f"{2**63}:run", "1:" + "r" * 201])
def test_a_cursor_is_only_what_a_page_wrote(text: str) -> None:
    with pytest.raises(ValueError, match="not a page cursor"):
        Cursor.parse(text)
    assert Cursor.parse(str(Cursor(12, "run-a:b"))) == Cursor(12, "run-a:b")
