"""Which plugins are active on which projects, and where a project's events go."""

from __future__ import annotations

from typing import Any

from plugin_runtime.statuses import VersionStatus
from plugin_runtime.store.codec import Db, loads


class Activations:
    def add(self, db: Db, plugin: str, project_id: str, at: str) -> bool:
        """True when the plugin was not active on the project yet."""
        return db.execute("INSERT INTO activations (plugin, project_id, created_at) VALUES (?, ?, ?)"
                          " ON CONFLICT DO NOTHING", (plugin, project_id, at)).rowcount == 1

    def remove(self, db: Db, plugin: str, project_id: str) -> bool:
        return db.execute("DELETE FROM activations WHERE plugin = ? AND project_id = ?",
                          (plugin, project_id)).rowcount == 1

    def projects(self, db: Db, plugin: str) -> list[str]:
        return [r[0] for r in db.execute("SELECT project_id FROM activations WHERE plugin = ? ORDER BY project_id",
                                         (plugin,))]

    def targets(self, db: Db, project_id: str) -> list[dict[str, Any]]:
        """Plugins active on a project, each with the version its events go to: the current
        one, else the newest still deploying (its events wait for the build), else the newest
        (failed: its runs fail with the build error, so an event is never silently dropped)."""
        rows = db.execute(
            "SELECT p.name, p.current_version FROM activations a JOIN plugins p ON p.name = a.plugin"
            " WHERE a.project_id = ? ORDER BY p.name", (project_id,)).fetchall()
        out = []
        for row in rows:
            version = row["current_version"]
            if version is None:
                version = db.execute("SELECT MAX(version) FROM plugin_versions WHERE plugin = ? AND status = ?",
                                     (row["name"], VersionStatus.DEPLOYING)).fetchone()[0]
                if version is None:
                    version = db.execute("SELECT MAX(version) FROM plugin_versions WHERE plugin = ?",
                                         (row["name"],)).fetchone()[0]
                if version is None:
                    continue
            v = db.execute("SELECT subscriptions FROM plugin_versions WHERE plugin = ? AND version = ?",
                           (row["name"], version)).fetchone()
            out.append({"plugin": row["name"], "version": version, "subscriptions": loads(v["subscriptions"], [])})
        return out
