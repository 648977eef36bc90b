"""Events: the log of everything received or caused, and the budget counters of root events."""

from __future__ import annotations

from typing import Any

from plugin_runtime.store.codec import Db, dumps_data, loads


class Events:
    def exists(self, db: Db, event_id: str) -> bool:
        return db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone() is not None

    def insert(self, db: Db, event: dict[str, Any], source: str, cause_run: str | None, cause_plugin: str | None,
               depth: int, root_id: str, received_at: str) -> int:
        """Store an event; returns its sequence number (the order of its runs in their lanes)."""
        return db.execute(
            "INSERT INTO events (id, type, project_id, asset_id, body, source, cause_run, cause_plugin, depth, received_at,"
            " root_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (event["id"], event["type"], event["project_id"], event.get("asset_id"), dumps_data(event), source,
             cause_run, cause_plugin, depth, received_at, root_id)).fetchone()[0]

    def body(self, db: Db, event_id: str) -> dict[str, Any]:
        return loads(db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()[0])

    def bodies(self, db: Db, project_id: str, source: str | None = None) -> list[dict[str, Any]]:
        """A project's recorded events, in the order they were stored."""
        sql = "SELECT body FROM events WHERE project_id = ?" + (" AND source = ?" if source else "") + " ORDER BY seq"
        params = (project_id, source) if source else (project_id,)
        return [loads(row[0]) for row in db.execute(sql, params)]

    # Budgets of root events --------------------------------------------------------------

    def lineage(self, db: Db, event_id: str) -> tuple[str, int] | None:
        """(the root event's id, the event's depth), None for an unknown event."""
        row = db.execute("SELECT COALESCE(root_id, id) AS root_id, depth FROM events WHERE id = ?",
                         (event_id,)).fetchone()
        return None if row is None else (row["root_id"], row["depth"])

    def usage(self, db: Db, root_id: str) -> tuple[int, int, str | None] | None:
        """(caused runs, caused events, why the budget is spent) of a root event."""
        row = db.execute("SELECT caused_runs, caused_events, budget_exceeded FROM events WHERE id = ?",
                         (root_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def count_dropped(self, db: Db, root_id: str, reason: str) -> None:
        db.execute("UPDATE events SET dropped_events = dropped_events + 1, budget_exceeded = COALESCE(budget_exceeded, ?)"
                   " WHERE id = ?", (reason, root_id))

    def count_caused(self, db: Db, root_id: str, runs: int) -> None:
        db.execute("UPDATE events SET caused_events = caused_events + 1, caused_runs = caused_runs + ? WHERE id = ?",
                   (runs, root_id))

    def root(self, db: Db, event_id: str) -> dict[str, Any] | None:
        """A root event's budget: what its chain caused, and whether (why) it was stopped."""
        row = db.execute("SELECT id, caused_runs, caused_events, dropped_events, budget_exceeded FROM events"
                         " WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else dict(row)
