"""Read-only views of runs, logs and recorded events, as the API and CLI show them."""

from __future__ import annotations

from typing import Any

from plugin_runtime.statuses import ActionStatus
from plugin_runtime.store import Store, dumps, loads


class RunViews:
    def __init__(self, store: Store) -> None:
        self.store = store

    def runs(self, plugin: str | None = None, status: str | None = None, project_id: str | None = None,
             limit: int = 100, root_id: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("plugin", plugin), ("status", status), ("project_id", project_id), ("root_id", root_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = ("SELECT runs.*, (SELECT COUNT(*) FROM run_actions a WHERE a.run_id = runs.id"
               f" AND a.status = '{ActionStatus.REJECTED}')"
               f" AS rejected, {_ROOT_BUDGET} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY event_seq DESC, id LIMIT ?")
        return [_run(row) for row in self.store.read().execute(sql, (*params, limit))]

    def run(self, run_id: str) -> dict[str, Any] | None:
        db = self.store.read()
        row = db.execute("SELECT runs.*, (SELECT COUNT(*) FROM run_actions a WHERE a.run_id = runs.id"
                         f" AND a.status = '{ActionStatus.REJECTED}') AS rejected, {_ROOT_BUDGET} FROM runs WHERE id = ?",
                         (run_id,)).fetchone()
        if row is None:
            return None
        out = _run(row)
        out["actions"] = [
            {"action": loads(r["action"]), "status": r["status"], "reason": r["reason"]}
            for r in db.execute("SELECT * FROM run_actions WHERE run_id = ? ORDER BY seq", (run_id,))
        ]
        out["logs"] = [
            {"level": r["level"], "message": r["message"], "source": r["source"]}
            for r in db.execute("SELECT * FROM run_logs WHERE run_id = ? ORDER BY seq", (run_id,))
        ]
        out["root"] = self.root(out["root_id"] or out["event_id"])
        return out

    def root(self, event_id: str) -> dict[str, Any] | None:
        """A root event's budget: what its chain caused, and whether (why) it was stopped."""
        row = self.store.read().execute(
            "SELECT id, caused_runs, caused_events, dropped_events, budget_exceeded FROM events WHERE id = ?",
            (event_id,)).fetchone()
        return None if row is None else dict(row)

    def logs(self, plugin: str | None = None, project_id: str | None = None, after: int = 0,
             limit: int = 1000) -> dict[str, Any]:
        """Log lines of finished runs, oldest first, after the cursor ``after`` (for --follow)."""
        where: list[str] = ["l.rowid > ?"]
        params: list[int | str] = [after]
        for column, value in (("r.plugin", plugin), ("r.project_id", project_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self.store.read().execute(
            "SELECT l.rowid AS cursor, l.level, l.message, l.source, r.id AS run_id, r.plugin, r.version,"
            " r.project_id, r.asset_id, r.event_id, r.finished_at FROM run_logs l JOIN runs r ON r.id = l.run_id"
            f" WHERE {' AND '.join(where)} ORDER BY l.rowid LIMIT ?", (*params, limit)).fetchall()
        lines = [dict(row) for row in rows]
        return {"lines": lines, "cursor": lines[-1]["cursor"] if lines else after}

    def export(self, project_id: str, source: str | None = None) -> str:
        """The project's recorded events as JSON Lines (the dry-run input format)."""
        sql = "SELECT body FROM events WHERE project_id = ?" + (" AND source = ?" if source else "") + " ORDER BY seq"
        params = (project_id, source) if source else (project_id,)
        return "".join(dumps(loads(row[0])) + "\n" for row in self.store.read().execute(sql, params))


#: Whether the run's root event spent its budget (why), with each run.
_ROOT_BUDGET = "(SELECT e.budget_exceeded FROM events e WHERE e.id = runs.root_id) AS root_budget_exceeded"


def _run(row) -> dict[str, Any]:
    return {
        "id": row["id"], "event_id": row["event_id"], "asset_id": row["asset_id"], "project_id": row["project_id"],
        "plugin": row["plugin"], "version": row["version"], "status": row["status"], "outcome": row["outcome"],
        "error": row["error"], "attempts": row["attempts"], "duration_ms": row["duration_ms"],
        "created_at": row["created_at"], "finished_at": row["finished_at"],
        # Actions the runtime refused (another project's asset, metadata too large, ...).
        "rejected": row["rejected"],
        # The event from outside whose chain this run belongs to (its own event for a root).
        "root_id": row["root_id"],
        "root_budget_exceeded": row["root_budget_exceeded"],
        # Reads answered for the run (calls, seconds, refused) and what its actions caused.
        "metrics": loads(row["metrics"], {}),
    }
