"""The embedded platform's admin side, as the API's platform routes use it: list, show and
create projects and assets, change a project's settings, submit a label. Each opens its own
transaction (or reading connection), so no caller holds a database connection; a change that
emits an event joins the transaction of the intake recording that event (``submit_change``),
so the change and its event commit together. Mixed into ``EmbeddedPlatform``."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any, Protocol

from plugin_runtime.store import Store


class _Records(Protocol):
    """What the admin side uses of ``EmbeddedPlatform`` (its methods on a connection)."""

    store: Store

    def projects(self, db: sqlite3.Connection) -> list[dict]: ...

    def project(self, db: sqlite3.Connection, project_id: str) -> dict: ...

    def create_project(self, db: sqlite3.Connection, project_id: str, title: str | None = None,
                       json_interface: dict | None = None, input_type: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict: ...

    def settings_changes(self, db: sqlite3.Connection, project_id: str, changes: dict[str, Any]) -> list[dict]: ...

    def update_project(self, db: sqlite3.Connection, project_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...

    def assets(self, db: sqlite3.Connection, project_id: str) -> list[dict]: ...

    def asset(self, db: sqlite3.Connection, project_id: str, asset_id: str, with_issues: bool = True) -> dict: ...

    def create_asset(self, db: sqlite3.Connection, project_id: str, asset: dict[str, Any]) -> dict: ...

    def submit_label(self, db: sqlite3.Connection, project_id: str, asset_id: str, label: dict[str, Any]) -> dict: ...


def _event_id() -> str:
    return f"evt-{uuid.uuid4().hex[:16]}"


class EmbeddedAdmin:
    """Admin changes and views; PlatformNotFound, PlatformConflict or PlatformRefused say why
    one is refused."""

    def list_projects(self: _Records) -> list[dict]:
        return self.projects(self.store.read())

    def show_project(self: _Records, project_id: str) -> dict:
        return self.project(self.store.read(), project_id)

    def add_project(self: _Records, project_id: str, title: str | None = None, json_interface: dict | None = None,
                    input_type: str | None = None, settings: dict[str, Any] | None = None) -> dict:
        with self.store.write() as db:
            return self.create_project(db, project_id, title, json_interface, input_type, settings)

    def pending_settings(self: _Records, project_id: str, changes: dict[str, Any]) -> list[dict]:
        """What ``change_settings`` would change (nothing: it would emit no event)."""
        return self.settings_changes(self.store.read(), project_id, changes)

    def change_settings(self: _Records, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change project settings; returns the ``onProjectUpdated`` event it emits, with its id."""
        with self.store.write() as db:
            return {**self.update_project(db, project_id, changes), "id": _event_id()}

    def list_assets(self: _Records, project_id: str) -> list[dict]:
        """The project's assets; PlatformNotFound for an unknown project (not an empty list)."""
        db = self.store.read()
        self.project(db, project_id)
        return self.assets(db, project_id)

    def show_asset(self: _Records, project_id: str, asset_id: str) -> dict:
        return self.asset(self.store.read(), project_id, asset_id)

    def add_asset(self: _Records, project_id: str, asset: dict[str, Any]) -> dict:
        with self.store.write() as db:
            return self.create_asset(db, project_id, asset)

    def submit(self: _Records, project_id: str, asset_id: str, label: dict[str, Any]) -> dict[str, Any]:
        """A labeler's (DEFAULT) or reviewer's (REVIEW) submission; returns the event it emits
        (``onSubmit``, ``onReview``), with its id."""
        with self.store.write() as db:
            return {**self.submit_label(db, project_id, asset_id, label), "id": _event_id()}
