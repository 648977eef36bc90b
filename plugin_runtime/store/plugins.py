"""Plugins and their versions (each an immutable upload, with its build's outcome)."""

from __future__ import annotations

from typing import Any

from plugin_runtime.statuses import VersionStatus
from plugin_runtime.store.codec import Db, dumps


class Plugins:
    def get(self, db: Db, name: str) -> Any:
        return db.execute("SELECT * FROM plugins WHERE name = ?", (name,)).fetchone()

    def names(self, db: Db) -> list[Any]:
        return db.execute("SELECT * FROM plugins ORDER BY name").fetchall()

    def create(self, db: Db, name: str, at: str) -> None:
        db.execute("INSERT INTO plugins (name, created_at) VALUES (?, ?)", (name, at))

    def set_current(self, db: Db, name: str, version: int) -> None:
        db.execute("UPDATE plugins SET current_version = ? WHERE name = ?", (version, name))

    def delete(self, db: Db, name: str) -> list[str]:
        """Forget a plugin, its versions and activations; returns its versions' images."""
        images = [r[0] for r in db.execute(
            "SELECT image FROM plugin_versions WHERE plugin = ? AND image IS NOT NULL", (name,))]
        for table, column in (("activations", "plugin"), ("plugin_versions", "plugin"), ("plugins", "name")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))
        return images

    # Versions ----------------------------------------------------------------------------

    def add_version(self, db: Db, name: str, digest: str, archive: bytes, handler: str, subscriptions: list[Any],
                    warnings: list[Any], dropped: list[Any], limits: dict[str, Any], at: str) -> int:
        """The plugin's next version, deploying; returns its number."""
        version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM plugin_versions WHERE plugin = ?",
                             (name,)).fetchone()[0]
        db.execute(
            "INSERT INTO plugin_versions (plugin, version, digest, status, archive, handler, subscriptions,"
            " warnings, dropped, limits, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, digest, VersionStatus.DEPLOYING, archive, handler, dumps(subscriptions), dumps(warnings),
             dumps(dropped), dumps(limits), at))
        return version

    def version(self, db: Db, name: str, version: int) -> Any:
        return db.execute("SELECT * FROM plugin_versions WHERE plugin = ? AND version = ?", (name, version)).fetchone()

    def version_state(self, db: Db, name: str, version: int) -> Any:
        """A version's status and build error alone: every run asks, and the row holds the
        upload's archive."""
        return db.execute("SELECT status, build_error FROM plugin_versions WHERE plugin = ? AND version = ?",
                          (name, version)).fetchone()

    def version_numbers(self, db: Db, name: str) -> list[int]:
        return [r[0] for r in db.execute("SELECT version FROM plugin_versions WHERE plugin = ? ORDER BY version", (name,))]

    def latest_version(self, db: Db, name: str, status: str | None = None) -> int | None:
        """The newest version (of this ``status``), None when there is none."""
        if status is None:
            return db.execute("SELECT MAX(version) FROM plugin_versions WHERE plugin = ?", (name,)).fetchone()[0]
        return db.execute("SELECT MAX(version) FROM plugin_versions WHERE plugin = ? AND status = ?",
                          (name, status)).fetchone()[0]

    def deploying(self, db: Db) -> list[Any]:
        """Versions a stopped server left building, oldest first, with their archives."""
        return db.execute("SELECT plugin, version, archive, subscriptions FROM plugin_versions WHERE status = ?"
                          " ORDER BY created_at", (VersionStatus.DEPLOYING,)).fetchall()

    def build_failed(self, db: Db, name: str, version: int, error: str, log: str, at: str) -> None:
        db.execute("UPDATE plugin_versions SET status = ?, build_error = ?, build_log = ?, ready_at = ?"
                   " WHERE plugin = ? AND version = ?", (VersionStatus.FAILED, error, log, at, name, version))

    def built(self, db: Db, name: str, version: int, image: str | None, freeze: list[str], log: str,
              subscriptions: list[Any] | None, warnings: list[Any], at: str) -> None:
        """A build succeeded: the version becomes the plugin's active (live) one, unless it was
        uploaded as a candidate (it stays inactive: shadowed, then promoted)."""
        db.execute(  # "freeze" quoted: a reserved word in PostgreSQL
            "UPDATE plugin_versions SET status = ?, image = ?, \"freeze\" = ?, build_log = ?, ready_at = ?,"
            " subscriptions = COALESCE(?, subscriptions), warnings = ? WHERE plugin = ? AND version = ?",
            (VersionStatus.INACTIVE, image, dumps(freeze), log, at,
             dumps(subscriptions) if subscriptions is not None else None, dumps(warnings), name, version))
        if not db.execute("SELECT candidate FROM plugin_versions WHERE plugin = ? AND version = ?",
                          (name, version)).fetchone()[0]:
            self.make_live(db, name, version)

    def mark_candidate(self, db: Db, name: str, version: int) -> None:
        """A version that will not go live when built (``plugins update --candidate``)."""
        db.execute("UPDATE plugin_versions SET candidate = 1 WHERE plugin = ? AND version = ?", (name, version))

    def make_live(self, db: Db, name: str, version: int) -> None:
        """The one active version of the plugin, and its current one."""
        db.execute("UPDATE plugin_versions SET status = ? WHERE plugin = ? AND status = ?",
                   (VersionStatus.INACTIVE, name, VersionStatus.ACTIVE))
        db.execute("UPDATE plugin_versions SET status = ? WHERE plugin = ? AND version = ?",
                   (VersionStatus.ACTIVE, name, version))
        self.set_current(db, name, version)
