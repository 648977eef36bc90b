"""Runs: one plugin version's handling of one event, from pending to an end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugin_runtime.statuses import QUEUED, ActionStatus, RunStatus, placeholders
from plugin_runtime.store.codec import Db, dumps

#: The statuses of queued runs as SQL literals, so the partial index on them (``runs_lane``)
#: applies: a bound parameter cannot prove that it does.
_QUEUED_SQL = "(" + ", ".join(f"'{status}'" for status in QUEUED) + ")"
#: Whether the run's root event spent its budget (why), with each run.
_ROOT_BUDGET = "(SELECT e.budget_exceeded FROM events e WHERE e.id = runs.root_id) AS root_budget_exceeded"
#: Actions the runtime refused, with each run.
_REJECTED = (f"(SELECT COUNT(*) FROM run_actions a WHERE a.run_id = runs.id AND a.status = '{ActionStatus.REJECTED}')"
             " AS rejected")


#: Told (connection, project, +1 or -1) when a run enters or leaves the queue.
QueueMoved = Callable[[Db, str, int], None]


class Runs:
    def __init__(self, moved: QueueMoved | None = None) -> None:
        self._moved = moved or (lambda db, project_id, delta: None)

    def insert(self, db: Db, run_id: str, event_id: str, event_seq: int, plugin: str, version: int, project_id: str,
               asset_id: str | None, created_at: str, root_id: str | None = None,
               skipped: tuple[str, str] | None = None) -> None:
        """A new run, pending; or ``skipped`` (outcome, reason): recorded as ended."""
        outcome, error = skipped or (None, None)
        db.execute(
            "INSERT INTO runs (id, event_id, event_seq, plugin, version, project_id, asset_id, status, created_at,"
            " root_id, outcome, error, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, event_id, event_seq, plugin, version, project_id, asset_id,
             RunStatus.SKIPPED if skipped else RunStatus.PENDING, created_at, root_id, outcome, error,
             created_at if skipped else None))
        if not skipped:
            self._moved(db, project_id, 1)

    def get(self, db: Db, run_id: str) -> Any:
        return db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()

    def find(self, db: Db, event_id: str, plugin: str, version: int) -> Any:
        return db.execute("SELECT id, status FROM runs WHERE event_id = ? AND plugin = ? AND version = ?",
                          (event_id, plugin, version)).fetchone()

    # The run queue (a lane: plugin, version, project) --------------------------------------

    def lanes(self, db: Db) -> list[tuple[str, int, str]]:
        """Lanes with queued runs."""
        return [(r["plugin"], r["version"], r["project_id"]) for r in db.execute(
            f"SELECT DISTINCT plugin, version, project_id FROM runs WHERE status IN {_QUEUED_SQL}")]

    def head(self, db: Db, plugin: str, version: int, project_id: str) -> Any:
        """A lane's first queued run in event order (a lane has one run per event)."""
        return db.execute(
            f"SELECT * FROM runs WHERE plugin = ? AND version = ? AND project_id = ? AND status IN {_QUEUED_SQL}"
            " ORDER BY event_seq LIMIT 1", (plugin, version, project_id)).fetchone()

    def head_to_run(self, db: Db, plugin: str, version: int, project_id: str) -> Any:
        """``head`` with what running it needs, in one statement: its version's
        ``version_status`` and ``build_error`` (NULL when the version is gone) and its
        event's ``event_body``."""
        return db.execute(
            "SELECT runs.*, v.status AS version_status, v.build_error AS build_error, e.body AS event_body FROM runs"
            " LEFT JOIN plugin_versions v ON v.plugin = runs.plugin AND v.version = runs.version"
            " LEFT JOIN events e ON e.id = runs.event_id"
            f" WHERE runs.plugin = ? AND runs.version = ? AND runs.project_id = ? AND runs.status IN {_QUEUED_SQL}"
            " ORDER BY runs.event_seq LIMIT 1", (plugin, version, project_id)).fetchone()

    def following(self, db: Db, plugin: str, version: int, project_id: str, after_seq: int, limit: int) -> list[Any]:
        """Up to ``limit`` queued runs of a lane after its head (at ``after_seq``), in event
        order, each with its ``next_attempt_at`` and its event's ``event_body``."""
        return db.execute(
            "SELECT runs.*, e.body AS event_body FROM runs LEFT JOIN events e ON e.id = runs.event_id"
            f" WHERE runs.plugin = ? AND runs.version = ? AND runs.project_id = ? AND runs.status IN {_QUEUED_SQL}"
            " AND runs.event_seq > ? ORDER BY runs.event_seq LIMIT ?",
            (plugin, version, project_id, after_seq, limit)).fetchall()

    def unclaim(self, db: Db, run_ids: list[str]) -> None:
        """Claimed runs that did not run after all: pending again, their attempt not counted."""
        db.executemany(
            "UPDATE runs SET status = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
            " started_at = NULL, worker = NULL WHERE id = ? AND status = ?",
            [(RunStatus.PENDING, run_id, RunStatus.RUNNING) for run_id in run_ids])

    def claim(self, db: Db, run_id: str, at: str, worker: str | None = None) -> bool:
        """Running (on ``worker``), one attempt more; False when it is no longer queued."""
        return db.execute(
            "UPDATE runs SET status = ?, attempts = attempts + 1, started_at = ?, worker = ? WHERE id = ?"
            f" AND status IN {_QUEUED_SQL}", (RunStatus.RUNNING, at, worker, run_id)).rowcount == 1

    def reschedule(self, db: Db, run_id: str, error: str, not_before: str) -> None:
        """Pending again after a failed attempt, not to be taken before ``not_before``."""
        db.execute("UPDATE runs SET status = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                   (RunStatus.PENDING, error, not_before, run_id))

    def requeue(self, db: Db, run_id: str) -> None:
        """Pending again, at once (``runs retry``)."""
        before = db.execute("SELECT status, project_id FROM runs WHERE id = ?", (run_id,)).fetchone()
        db.execute("UPDATE runs SET status = ?, outcome = NULL, error = NULL, next_attempt_at = NULL WHERE id = ?",
                   (RunStatus.PENDING, run_id))
        if before is not None and before["status"] not in QUEUED:
            self._moved(db, before["project_id"], 1)

    def end(self, db: Db, run_id: str, status: str, outcome: str | None, error: str | None, at: str,
            duration_ms: float | None, metrics: dict[str, Any]) -> None:
        self._ended(db, "status = ?, outcome = ?, error = ?, duration_ms = ?, finished_at = ?, metrics = ?",
                    (status, outcome, error, duration_ms, at, dumps(metrics)), run_id)

    def end_bare(self, db: Db, run_id: str, status: str, outcome: str | None, error: str | None, at: str) -> None:
        """Ended without a result to record (its logs, metrics) beside it."""
        self._ended(db, "status = ?, outcome = ?, error = ?, finished_at = ?", (status, outcome, error, at), run_id)

    def _ended(self, db: Db, assignments: str, values: tuple[Any, ...], run_id: str) -> None:
        """A run's end; it leaves the queue when it was in it (one statement when it was)."""
        left = db.execute(f"UPDATE runs SET {assignments} WHERE id = ? AND status IN {_QUEUED_SQL} RETURNING project_id",
                          (*values, run_id)).fetchall()
        if left:
            self._moved(db, left[0][0], -1)
        else:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values, run_id))

    def queued_by_project(self, db: Db) -> list[Any]:
        """(project_id, runs pending or running) of each project with any."""
        return db.execute(f"SELECT project_id, COUNT(*) FROM runs WHERE status IN {_QUEUED_SQL} GROUP BY project_id"
                          ).fetchall()

    def count_queued(self, db: Db, project_id: str | None = None) -> int:
        """Runs pending or running (all, or one project's)."""
        if project_id is None:
            return db.execute(f"SELECT COUNT(*) FROM runs WHERE status IN {placeholders(QUEUED)}", QUEUED).fetchone()[0]
        return db.execute(f"SELECT COUNT(*) FROM runs WHERE project_id = ? AND status IN {placeholders(QUEUED)}",
                          (project_id, *QUEUED)).fetchone()[0]

    # Views -------------------------------------------------------------------------------

    def listing(self, db: Db, filters: dict[str, str | None], limit: int) -> list[Any]:
        """Newest first, each with its rejected actions and its root's budget; ``filters``:
        column -> value (None: any)."""
        where = [f"{column} = ?" for column, value in filters.items() if value is not None]
        params = [value for value in filters.values() if value is not None]
        sql = (f"SELECT runs.*, {_REJECTED}, {_ROOT_BUDGET} FROM runs"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY event_seq DESC, id LIMIT ?")
        return db.execute(sql, (*params, limit)).fetchall()

    def detail(self, db: Db, run_id: str) -> Any:
        return db.execute(f"SELECT runs.*, {_REJECTED}, {_ROOT_BUDGET} FROM runs WHERE id = ?", (run_id,)).fetchone()
