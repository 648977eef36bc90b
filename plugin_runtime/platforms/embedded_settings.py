"""Project settings of the embedded platform, by Kili's names, and the ``settings_updated``
items (``{key, newValue, oldValue}``) a change of them emits with ``onProjectUpdated``, as
Kili sends them to ``on_project_updated``."""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from plugin_runtime.errors import PlatformRefused
from plugin_runtime.store import dumps, loads

#: Settings kept in a column of their own: Kili's name -> the column.
COLUMNS = {"title": "title", "inputType": "input_type", "jsonInterface": "json_interface"}
#: Settings kept in the project's ``settings`` object, under Kili's names (Kili's
#: ``on_project_updated`` lists these keys).
KEPT = ("description", "instructions", "minConsensusSize", "consensusTotCoverage", "reviewCoverage",
        "canSkipAsset", "canNavigateBetweenAssets", "useHoneyPot", "isAnonymized", "metadataTypes", "archivedAt")


class _Platform(Protocol):
    def project(self, db: sqlite3.Connection, project_id: str) -> dict: ...


def changed(platform: _Platform, db: sqlite3.Connection, project_id: str,
            changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``settings_updated`` items of ``changes`` (Kili's names), those whose value differs
    from the project's; PlatformNotFound for an unknown project, PlatformRefused for a name
    that is no setting."""
    unknown = sorted(set(changes) - set(COLUMNS) - set(KEPT))
    if unknown:
        raise PlatformRefused(f"not project settings: {', '.join(unknown)} (settings: "
                              f"{', '.join([*COLUMNS, *KEPT])})")
    current = platform.project(db, project_id)
    return [{"key": key, "newValue": value, "oldValue": current.get(key)}
            for key, value in changes.items() if current.get(key) != value]


def apply(platform: _Platform, db: sqlite3.Connection, project_id: str,
          changes: dict[str, Any]) -> list[dict[str, Any]]:
    """Change the project's settings; returns what changed, as ``settings_updated``."""
    updated = changed(platform, db, project_id, changes)
    kept = {item["key"]: item["newValue"] for item in updated if item["key"] in KEPT}
    for item in updated:
        if item["key"] in COLUMNS:
            value = dumps(item["newValue"] or {}) if item["key"] == "jsonInterface" else item["newValue"]
            db.execute(f"UPDATE projects SET {COLUMNS[item['key']]} = ? WHERE id = ?", (value, project_id))
    if kept:
        row = db.execute("SELECT settings FROM projects WHERE id = ?", (project_id,)).fetchone()
        db.execute("UPDATE projects SET settings = ? WHERE id = ?", (dumps({**loads(row[0], {}), **kept}), project_id))
    return updated


def known(settings_updated: list[dict[str, Any]]) -> dict[str, Any]:
    """The new values of a received ``settings_updated`` the platform keeps (a webhook may
    name settings it does not)."""
    return {item["key"]: item.get("newValue") for item in settings_updated
            if isinstance(item, dict) and item.get("key") in (*COLUMNS, *KEPT)}
