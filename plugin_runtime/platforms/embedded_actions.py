"""What each checked action changes on the embedded platform, in the caller's transaction.

Kili's semantics: ``update_asset`` *replaces* what it names; ``add_metadata`` merges key by key
into the metadata as it is when the action applies (not as the plugin read it);
``set_metadata`` replaces it but keeps the keys Kili keeps; ``send_back_to_queue`` and
``add_to_review`` move the asset's status; an appended DEFAULT or REVIEW label moves it too and
emits its event; ``update_issue_status`` changes an issue of the action's asset only (the
policy checked that the asset is the event's project's and the issue that asset's:
``IssueAssets`` tells it where an issue is).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from plugin_runtime.platforms.base import EVENT_FOR_LABEL, STATUS_AFTER, STATUS_FOR_LABEL
from plugin_runtime.store import dumps, loads
from plugin_sdk.actions import KEPT_BY_SET_METADATA

_ASSET_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "json_metadata": dumps, "priority": int, "to_be_labeled_by": dumps,
    "is_used_for_consensus": lambda v: int(bool(v)), "is_honeypot": lambda v: int(bool(v)),
}


class _Platform(Protocol):
    def set_status(self, db: sqlite3.Connection, asset_id: str, status: str) -> None: ...

    def insert_label(self, db: sqlite3.Connection, project_id: str, asset_id: str, label: dict[str, Any],
                     default_type: str = "DEFAULT") -> bool: ...

    def _after_latest(self, db: sqlite3.Connection, asset_id: str, at: str | None = None) -> str: ...


class IssueAssets(Mapping[str, str]):
    """Issue id -> its asset (the policy's ``Facts.issue_assets``), read as the policy asks:
    few runs name an issue, so the others read nothing. ``read`` gives the calling thread's
    connection."""

    def __init__(self, read: Callable[[], sqlite3.Connection]) -> None:
        self._read = read

    def __getitem__(self, issue_id: str) -> str:
        row = self._read().execute("SELECT asset_id FROM issues WHERE id = ?", (issue_id,)).fetchone()
        if row is None:
            raise KeyError(issue_id)
        return str(row[0])

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._read().execute("SELECT id FROM issues"))

    def __len__(self) -> int:
        return int(self._read().execute("SELECT COUNT(*) FROM issues").fetchone()[0])


class Change:
    """What applying one action did beyond its rows: the event it emits (without id), and
    whether the asset's marks must be computed again."""

    def __init__(self, event: dict[str, Any] | None = None, stale: bool = False) -> None:
        self.event, self.stale = event, stale


def apply_action(platform: _Platform, db: sqlite3.Connection, run_id: str | None, action: dict[str, Any],
                 project_id: str, at: str | None, new_id: Callable[[str], str], stamp: str) -> Change:
    """Apply one checked action (wire form) of an asset of ``project_id`` as of ``at``."""
    kind, asset_id = action["type"], action["asset_id"]
    if kind in ("create_issue", "create_question"):
        db.execute(
            "INSERT INTO issues (id, project_id, asset_id, label_id, object_mid, text, type, run_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id(kind.removeprefix("create_")), project_id, asset_id, action.get("label_id"),
             action.get("object_mid"), action.get("text"), "QUESTION" if kind == "create_question" else "ISSUE",
             run_id, stamp))
    elif kind == "update_issue_status":
        db.execute("UPDATE issues SET status = ? WHERE id = ? AND asset_id = ?",
                   (action["status"], action["issue_id"], asset_id))
    elif kind == "update_asset":
        for name, convert in _ASSET_COLUMNS.items():
            if action.get(name) is not None:
                db.execute(f"UPDATE assets SET {name} = ?, updated_at = ? WHERE id = ?",
                           (convert(action[name]), stamp, asset_id))
        return Change(stale=action.get("is_honeypot") is not None)
    elif kind in ("add_metadata", "set_metadata"):
        row = db.execute("SELECT json_metadata FROM assets WHERE id = ?", (asset_id,)).fetchone()
        current = loads(row[0], {}) if row else {}
        current = current if isinstance(current, dict) else {}
        kept = current if kind == "add_metadata" else {k: current[k] for k in KEPT_BY_SET_METADATA if k in current}
        db.execute("UPDATE assets SET json_metadata = ?, updated_at = ? WHERE id = ?",
                   (dumps({**kept, **action["json_metadata"]}), stamp, asset_id))
    elif kind in STATUS_AFTER:
        platform.set_status(db, asset_id, STATUS_AFTER[kind])
        if kind == "send_back_to_queue":
            return Change({"type": "onSendBackToQueue", "project_id": project_id, "asset_id": asset_id})
    elif kind == "append_label":
        return _append_label(platform, db, action, project_id, at, new_id)
    return Change()


def _append_label(platform: _Platform, db: sqlite3.Connection, action: dict[str, Any], project_id: str,
                  at: str | None, new_id: Callable[[str], str]) -> Change:
    asset_id = action["asset_id"]
    if action.get("overwrite"):
        # Kili's create_predictions(overwrite=True): the model's earlier labels of this type go.
        db.execute("DELETE FROM labels WHERE asset_id = ? AND label_type = ? AND model_name = ?",
                   (asset_id, action["label_type"], action.get("model_name")))
    label = {"id": new_id("label"), "labelType": action["label_type"], "jsonResponse": action["json_response"],
             "authorId": action.get("author_id"), "secondsToLabel": action.get("seconds_to_label"),
             "modelName": action.get("model_name"), "createdAt": platform._after_latest(db, asset_id, at)}
    platform.insert_label(db, project_id, asset_id, label)
    if label["labelType"] not in STATUS_FOR_LABEL:
        return Change(stale=True)
    platform.set_status(db, asset_id, STATUS_FOR_LABEL[label["labelType"]])
    return Change({"type": EVENT_FOR_LABEL[label["labelType"]], "project_id": project_id, "asset_id": asset_id,
                   "label": label["id"]}, stale=True)
