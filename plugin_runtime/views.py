"""Read-only views of runs, logs and recorded events, as the API and CLI show them."""

from __future__ import annotations

from typing import Any

from plugin_runtime.statuses import QUEUED
from plugin_runtime.store import Store, dumps, loads


class RunViews:
    def __init__(self, store: Store) -> None:
        self.store = store

    def runs(self, plugin: str | None = None, status: str | None = None, project_id: str | None = None,
             limit: int = 100, root_id: str | None = None) -> list[dict[str, Any]]:
        filters = {"plugin": plugin, "status": status, "project_id": project_id, "root_id": root_id}
        return [_run(row) for row in self.store.runs.listing(self.store.read(), filters, limit)]

    def run(self, run_id: str) -> dict[str, Any] | None:
        db = self.store.read()
        row = self.store.runs.detail(db, run_id)
        if row is None:
            return None
        out = _run(row)
        out["actions"] = self.store.run_records.actions(db, run_id)
        out["logs"] = self.store.run_records.logs(db, run_id)
        out["root"] = self.root(out["root_id"] or out["event_id"])
        return out

    def event_runs(self, event_id: str) -> dict[str, Any] | None:
        """The runs of an event and of the events they caused (its chain), and how many of them
        are pending or running; None when no event of this id was received."""
        db = self.store.read()
        if not self.store.events.exists(db, event_id):
            return None
        statuses = [row["status"] for row in self.store.runs.listing(db, {"root_id": event_id}, 100_000)]
        return {"id": event_id, "runs": len(statuses), "pending": sum(status in QUEUED for status in statuses)}

    def root(self, event_id: str) -> dict[str, Any] | None:
        """A root event's budget: what its chain caused, and whether (why) it was stopped."""
        return self.store.events.root(self.store.read(), event_id)

    def logs(self, plugin: str | None = None, project_id: str | None = None, after: int = 0,
             limit: int = 1000) -> dict[str, Any]:
        """Log lines of finished runs, oldest first, after the cursor ``after`` (for --follow)."""
        lines = self.store.run_records.lines_after(self.store.read(), after, limit, plugin, project_id)
        return {"lines": lines, "cursor": lines[-1]["cursor"] if lines else after}

    def export(self, project_id: str, source: str | None = None) -> str:
        """The project's recorded events as JSON Lines (the dry-run input format)."""
        return "".join(dumps(body) + "\n" for body in self.store.events.bodies(self.store.read(), project_id, source))


def _run(row) -> dict[str, Any]:
    return {
        "id": row["id"], "event_id": row["event_id"], "asset_id": row["asset_id"], "project_id": row["project_id"],
        "plugin": row["plugin"], "version": row["version"], "status": row["status"], "outcome": row["outcome"],
        "error": row["error"], "attempts": row["attempts"], "duration_ms": row["duration_ms"],
        # The worker that ran (or runs) it: its --name, default HOST:PID.
        "worker": row["worker"],
        "created_at": row["created_at"], "finished_at": row["finished_at"],
        # Actions the runtime refused (another project's asset, metadata too large, ...).
        "rejected": row["rejected"],
        # The event from outside whose chain this run belongs to (its own event for a root).
        "root_id": row["root_id"],
        "root_budget_exceeded": row["root_budget_exceeded"],
        # Reads answered for the run (calls, seconds, refused) and what its actions caused.
        "metrics": loads(row["metrics"], {}),
    }
