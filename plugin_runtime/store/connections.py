"""Projects connected to a labeling platform of their own (Label Studio, later Kili): which
platform, where, the secret its webhooks carry and the credentials the runtime uses there.

A project without a connection is the embedded platform's. The credentials and the webhook
secret live only here, in the data directory (owner-only): they are never logged or shown.
The same repository keeps the keys of the actions a remote platform applied, so an action
redelivered after a crash is a no-op there too, and each connection's reconciliation cursor.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from plugin_runtime.store.codec import Db, dumps, loads


@dataclass(frozen=True)
class Connection:
    project_id: str
    #: The platform's kind: "label-studio" (a module under ``platforms/``).
    kind: str
    #: Where and what on the platform (url, remote project, webhook id, bot user id, ...).
    config: dict[str, Any]
    #: What the platform's webhooks carry to prove they come from it.
    secret: str
    #: The runtime's own credentials there (tokens): never logged, never answered.
    credentials: dict[str, Any] = field(repr=False)
    created_at: str
    updated_at: str

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the secret and the credentials."""
        return {"project_id": self.project_id, "kind": self.kind, "config": self.config,
                "created_at": self.created_at, "updated_at": self.updated_at}


class Connections:
    def put(self, db: Db, connection: Connection) -> None:
        """Add a connection, or replace the project's (``connect`` run again)."""
        db.execute(
            "INSERT INTO connections (project_id, kind, config, secret, credentials, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET kind = excluded.kind,"
            " config = excluded.config, secret = excluded.secret, credentials = excluded.credentials,"
            " updated_at = excluded.updated_at",
            (connection.project_id, connection.kind, dumps(connection.config), connection.secret,
             dumps(connection.credentials), connection.created_at, connection.updated_at))

    def get(self, db: Db, project_id: str) -> Connection | None:
        row = db.execute("SELECT * FROM connections WHERE project_id = ?", (project_id,)).fetchone()
        return None if row is None else _connection(row)

    def all(self, db: Db) -> list[Connection]:
        return [_connection(r) for r in db.execute("SELECT * FROM connections ORDER BY project_id")]

    def remove(self, db: Db, project_id: str) -> bool:
        db.execute("DELETE FROM connection_cursors WHERE project_id = ?", (project_id,))
        return db.execute("DELETE FROM connections WHERE project_id = ?", (project_id,)).rowcount == 1

    def set_credentials(self, db: Db, project_id: str, credentials: dict[str, Any], at: str) -> None:
        """Credentials renewed by the platform (a refreshed token)."""
        db.execute("UPDATE connections SET credentials = ?, updated_at = ? WHERE project_id = ?",
                   (dumps(credentials), at, project_id))

    # The reconciliation cursor: how far the platform's changes were looked at -----------

    def cursor(self, db: Db, project_id: str) -> str | None:
        row = db.execute("SELECT position FROM connection_cursors WHERE project_id = ?", (project_id,)).fetchone()
        return None if row is None else row[0]

    def move_cursor(self, db: Db, project_id: str, position: str, at: str) -> None:
        db.execute("INSERT INTO connection_cursors (project_id, position, updated_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (project_id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                   (project_id, position, at))

    # Keys of actions a remote platform applied ------------------------------------------

    def applied(self, db: Db, keys: Collection[str]) -> set[str]:
        """Which of these idempotency keys were applied already."""
        return {k for k in keys if db.execute("SELECT 1 FROM applied_actions WHERE key = ?", (k,)).fetchone()}

    def mark_applied(self, db: Db, key: str, at: str) -> None:
        db.execute("INSERT INTO applied_actions (key, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, at))


def _connection(row: Any) -> Connection:
    return Connection(project_id=row["project_id"], kind=row["kind"], config=loads(row["config"], {}),
                      secret=row["secret"], credentials=loads(row["credentials"], {}),
                      created_at=row["created_at"], updated_at=row["updated_at"])
