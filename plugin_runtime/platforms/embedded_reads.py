"""The embedded platform's answers to plugins' reads, as indexed SQL.

Filters, order and paging (``first``/``skip``) run in SQLite, so a read costs what it returns,
not the size of the project; counts are ``COUNT(*)``. Answers are what the pure filters of
``plugin_sdk._queries`` give over the same records (the dry-run's reads), in the same order:
labels and issues oldest first, assets in creation order. A read running past its deadline is
interrupted inside SQLite and raises TimeoutError.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from plugin_runtime.errors import ReadLimitExceeded
from plugin_runtime.store import dumps, loads
from plugin_sdk import _queries

#: SQLite virtual-machine steps between two deadline checks (a few milliseconds at most).
_PROGRESS_STEPS = 20_000
#: Rows turned into records between two deadline checks.
_ROWS_PER_CHECK = 64
#: SQLite's integers are 64-bit: a larger ``first`` means "all" anyway (and is "all" when
#: absent: PostgreSQL refuses SQLite's ``LIMIT -1``).
_MAX_PAGE = 2**62
#: What one read may return (JSON text stored for its records): the server builds the answer in
#: memory and encodes it, outside the plugin's memory limit; a plugin that filled its project
#: with labels of 250 KB would otherwise have each read cost the server gigabytes.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class _Platform(Protocol):
    def project(self, db: sqlite3.Connection, project_id: str) -> dict: ...

    def asset(self, db: sqlite3.Connection, project_id: str, asset_id: str, with_issues: bool = True) -> dict: ...


def label_record(row: sqlite3.Row) -> dict:
    """A label row in Kili's shape."""
    out = {
        "id": row["id"], "labelType": row["label_type"], "jsonResponse": loads(row["json_response"], {}),
        "authorId": row["author_id"], "secondsToLabel": row["seconds_to_label"], "modelName": row["model_name"],
        "createdAt": row["created_at"], "assetId": row["asset_id"], "consensusMark": row["consensus_mark"],
        "honeypotMark": row["honeypot_mark"], "inferenceMark": row["inference_mark"],
    }
    # Recorded extra fields come first: what the platform computed or stores wins. Most labels
    # have none, and every event's context reads all its asset's labels.
    extra = row["extra"]
    return out if extra == "{}" else {**loads(extra, {}), **out}


def issue_record(row: sqlite3.Row) -> dict:
    """An issue row in Kili's shape (without ``assetId``, which reads add)."""
    return {"id": row["id"], "type": row["type"], "status": row["status"], "labelId": row["label_id"],
            "objectMid": row["object_mid"], "text": row["text"], "createdAt": row["created_at"],
            "comments": [{"text": row["text"]}] if row["text"] else []}


def read(platform: _Platform, db: sqlite3.Connection, project_id: str, method: str, query: dict[str, Any],
         deadline: float | None = None) -> Any:
    """Answer ``kili.<method>(**query)`` for ``project_id``; ValueError for a malformed query,
    LookupError for a method it does not answer."""
    with _interrupted_at(db, deadline):
        if method in ("labels", "count_labels"):
            return _labels(db, project_id, query, method == "count_labels", deadline)
        if method in ("assets", "count_assets"):
            return _assets(platform, db, project_id, query, method == "count_assets", deadline)
        if method in ("issues", "count_issues"):
            return _issues(db, project_id, query, method == "count_issues", deadline)
    raise LookupError(f"kili.{method} is not a read the runtime answers")


# Queries ---------------------------------------------------------------------------------

_LATER = ("SELECT 1 FROM labels o WHERE o.asset_id = l.asset_id AND o.author_id IS NOT DISTINCT FROM l.author_id"
          " AND (o.created_at > l.created_at OR (o.created_at = l.created_at AND o.seq > l.seq))")
# Kili's "latest label" flags are per asset and author over *all* the asset's labels, whatever
# the read's filters: correlated subqueries over the asset's labels (index labels_asset).
_LABEL_COLUMNS = (f"l.*, NOT EXISTS ({_LATER}) AS latest_any,"
                  f" l.label_type = 'DEFAULT' AND NOT EXISTS ({_LATER} AND o.label_type = 'DEFAULT') AS latest_default,"
                  f" l.label_type = 'REVIEW' AND NOT EXISTS ({_LATER} AND o.label_type = 'REVIEW') AS latest_review")


def _labels(db: sqlite3.Connection, project_id: str, query: dict[str, Any], count: bool,
            deadline: float | None) -> Any:
    where = _Where("l.project_id = ?", project_id)
    where.equal("l.asset_id", query.get("asset_id"))
    where.equal("l.id", query.get("label_id"))
    where.one_of("l.label_type", _strings(query, "type_in", truthy=True))
    authors = _strings(query, "author_in", truthy=True)
    if authors is not None:
        where.add("(l.author_id IN (SELECT value FROM json_each(?))"
                  " OR json_extract(l.extra, '$.author.email') IN (SELECT value FROM json_each(?)))", authors, authors)
    where.equal("l.author_id", query.get("user_id"))
    parts = _strings(query, "id_contains", truthy=True)
    if parts is not None:
        where.add("EXISTS (SELECT 1 FROM json_each(?) p WHERE instr(l.id, p.value) > 0)", parts)
    where.one_of("a.status", _strings(query, "asset_status_in", truthy=True))
    where.one_of("a.external_id", _strings(query, "asset_external_id_in", truthy=True)
                 or _strings(query, "asset_external_id_strictly_in"))
    source = f"FROM labels l JOIN assets a ON a.id = l.asset_id WHERE {where.sql}"
    if count:
        return db.execute(f"SELECT COUNT(*) {source}", where.params).fetchone()[0]
    rows = db.execute(f"SELECT {_LABEL_COLUMNS} {source} ORDER BY l.created_at, a.created_at, a.id, l.seq"
                      " LIMIT ? OFFSET ?", (*where.params, *_page(query)))
    out = []
    for row in _checked(rows, deadline, "labels", lambda row: len(row["json_response"]) + len(row["extra"])):
        label = label_record(row)
        label["isLatestLabelForUser"] = bool(row["latest_any"])
        label["isLatestDefaultLabelForUser"] = bool(row["latest_default"])
        label["isLatestReviewLabelForUser"] = bool(row["latest_review"])
        out.append(_queries.normalise_label(label, row["asset_id"]))
    return out


def _assets(platform: _Platform, db: sqlite3.Connection, project_id: str, query: dict[str, Any], count: bool,
            deadline: float | None) -> Any:
    where = _Where("project_id = ?", project_id)
    where.equal("id", query.get("asset_id"))
    where.one_of("id", _strings(query, "asset_id_in"))
    excluded = _strings(query, "asset_id_not_in", truthy=True)
    if excluded is not None:
        where.add("id NOT IN (SELECT value FROM json_each(?))", excluded)
    where.one_of("external_id", _strings(query, "external_id_in", truthy=True)
                 or _strings(query, "external_id_strictly_in"))
    where.one_of("status", _strings(query, "status_in", truthy=True))
    if count:
        return db.execute(f"SELECT COUNT(*) FROM assets WHERE {where.sql}", where.params).fetchone()[0]
    rows = db.execute(f"SELECT id, {_ASSET_BYTES} AS size FROM assets WHERE {where.sql} ORDER BY created_at, id"
                      " LIMIT ? OFFSET ?", (*where.params, *_page(query)))
    return [platform.asset(db, project_id, row[0])
            for row in _checked(rows.fetchall(), deadline, "assets", lambda row: row["size"])]


def _issues(db: sqlite3.Connection, project_id: str, query: dict[str, Any], count: bool,
            deadline: float | None) -> Any:
    where = _Where("i.project_id = ?", project_id)
    where.equal("i.asset_id", query.get("asset_id"))
    where.one_of("i.asset_id", _strings(query, "asset_id_in"))
    where.equal("i.type", query.get("issue_type"))
    where.equal("i.status", query.get("status"))
    source = f"FROM issues i JOIN assets a ON a.id = i.asset_id WHERE {where.sql}"
    if count:
        return db.execute(f"SELECT COUNT(*) {source}", where.params).fetchone()[0]
    rows = db.execute(f"SELECT i.* {source} ORDER BY i.created_at, a.created_at, a.id, i.seq LIMIT ? OFFSET ?",
                      (*where.params, *_page(query)))
    return [{**issue_record(row), "assetId": row["asset_id"]}
            for row in _checked(rows, deadline, "issues", lambda row: len(row["text"] or ""))]


# Helpers ---------------------------------------------------------------------------------

class _Where:
    """A conjunction of conditions with their parameters."""

    def __init__(self, sql: str, *params: Any) -> None:
        self.conditions, self.params = [sql], list(params)

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions)

    def add(self, condition: str, *params: Any) -> None:
        self.conditions.append(condition)
        self.params.extend(params)

    def equal(self, column: str, value: Any) -> None:
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"a filter on {column.split('.')[-1]} takes a string, not {type(value).__name__}")
            self.add(f"{column} = ?", value)

    def one_of(self, column: str, values: str | None) -> None:
        # One JSON array parameter, however many values: no "too many SQL variables".
        if values is not None:
            self.add(f"{column} IN (SELECT value FROM json_each(?))", values)


def _strings(query: dict[str, Any], name: str, truthy: bool = False) -> str | None:
    """A list-of-strings filter as a JSON array; None when absent (or empty, with ``truthy``:
    the pure filters skip those the same way)."""
    value = query.get(name)
    if value is None or (truthy and not value):
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings")
    return dumps(value)


def _page(query: dict[str, Any]) -> tuple[int, int]:
    """LIMIT and OFFSET from Kili's ``first`` and ``skip``."""
    first, skip = query.get("first"), query.get("skip") or 0
    for name, value in (("first", first), ("skip", skip)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return (_MAX_PAGE if first is None else min(first, _MAX_PAGE)), min(skip, _MAX_PAGE)


# An asset record holds its metadata, its labels and its issues (indexes labels_asset, issues_asset).
_ASSET_BYTES = ("LENGTH(json_metadata)"
                " + (SELECT COALESCE(SUM(LENGTH(l.json_response) + LENGTH(l.extra)), 0) FROM labels l"
                " WHERE l.asset_id = assets.id)"
                " + (SELECT COALESCE(SUM(LENGTH(i.text)), 0) FROM issues i WHERE i.asset_id = assets.id)")


def _checked(rows: Any, deadline: float | None, method: str, size: Callable[[Any], int]) -> Iterator[Any]:
    """The rows, stopped past the deadline or past ``MAX_ANSWER_BYTES`` of records."""
    total = 0
    for number, row in enumerate(rows):
        if deadline is not None and number % _ROWS_PER_CHECK == 0 and time.perf_counter() > deadline:
            raise TimeoutError("the read ran past its deadline")
        total += size(row)
        if total > MAX_ANSWER_BYTES:
            raise ReadLimitExceeded(
                f"kili.{method} refused: its answer would be over {MAX_ANSWER_BYTES // 2**20} MB ({number} records "
                "fit); read it in pages (first=..., skip=...) or filter it (asset_id=...)")
        yield row


@contextlib.contextmanager
def _interrupted_at(db: sqlite3.Connection, deadline: float | None) -> Iterator[None]:
    """SQLite stops a statement running past ``deadline`` (its progress handler)."""
    if deadline is None:
        yield
        return
    db.set_progress_handler(lambda: time.perf_counter() > deadline, _PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError as error:
        if time.perf_counter() > deadline:
            raise TimeoutError("the read ran past its deadline") from error
        raise
    finally:
        db.set_progress_handler(None, 0)
