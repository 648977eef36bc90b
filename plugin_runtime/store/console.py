"""What the dashboard and ``/metrics`` read: pages of runs, a run's event, the gauges.

Every query is bounded by an index, whatever the number of runs: a page of runs is found
by keyset (newest first, by event then run id: ``before`` is the last row of the previous
page), never by an offset the database would have to count up to; the gauges read one end
of an index range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugin_runtime.statuses import ActionStatus, RunStatus
from plugin_runtime.store.codec import Db

#: Actions the runtime refused, with each run.
_REJECTED = (f"(SELECT COUNT(*) FROM run_actions a WHERE a.run_id = runs.id AND a.status = '{ActionStatus.REJECTED}')"
             " AS rejected")
#: What a row of the runs table shows (the error's beginning: a whole traceback is the run page's).
_COLUMNS = ("runs.id, runs.event_id, runs.event_seq, runs.plugin, runs.version, runs.project_id, runs.asset_id,"
            " runs.status, runs.outcome, runs.attempts, runs.duration_ms, runs.created_at, runs.finished_at,"
            " SUBSTR(runs.error, 1, 300) AS error_start")
#: The columns a page may be filtered on.
FILTERS = ("plugin", "project_id", "status")


@dataclass(frozen=True)
class Cursor:
    """Where a page of runs starts: after the run (``event_seq``, ``run_id``), going back."""

    event_seq: int
    run_id: str

    def __str__(self) -> str:
        return f"{self.event_seq}:{self.run_id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor ``str()`` wrote; ValueError for anything else."""
        seq, sep, run_id = text.partition(":")
        if not sep or not seq.isdigit() or not run_id or len(run_id) > 200 or int(seq) >= 2 ** 63:
            raise ValueError(f"not a page cursor: {text[:80]!r}")
        return cls(int(seq), run_id)


class Console:
    def runs_page(self, db: Db, filters: dict[str, str | None], before: Cursor | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` runs, newest first (by event, then run id, both descending), after
        ``before``; ``filters``: column (``FILTERS``) -> value (None: any)."""
        where: list[str] = []
        params: list[str | int] = []
        for column, value in filters.items():
            if column not in FILTERS:
                raise ValueError(f"runs are not filtered on {column!r}")
            if value is not None:
                where.append(f"runs.{column} = ?")
                params.append(value)
        if before is not None:
            where.append("(runs.event_seq, runs.id) < (?, ?)")
            params += [before.event_seq, before.run_id]
        sql = (f"SELECT {_COLUMNS}, {_REJECTED} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY runs.event_seq DESC, runs.id DESC LIMIT ?")
        return [dict(row) for row in db.execute(sql, (*params, limit))]

    def event(self, db: Db, event_id: str) -> dict[str, Any] | None:
        """A stored event: its body and how it came (source, cause, when)."""
        row = db.execute("SELECT id, type, project_id, asset_id, body, source, cause_run, cause_plugin, depth,"
                         " received_at FROM events WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else dict(row)

    def run_projects(self, db: Db, limit: int) -> list[str]:
        """Projects plugins are active on, for the filters (the runs' projects would need a scan)."""
        return [r[0] for r in db.execute("SELECT DISTINCT project_id FROM activations ORDER BY project_id LIMIT ?",
                                         (limit,))]

    def projects(self, db: Db, limit: int) -> list[dict[str, Any]]:
        """The embedded platform's projects, oldest first, at most ``limit`` (its own
        ``projects()`` reads each whole, interface included)."""
        return [dict(r) for r in db.execute("SELECT id, title, input_type, created_at FROM projects"
                                            " ORDER BY created_at, id LIMIT ?", (limit,))]

    # Gauges ------------------------------------------------------------------------------

    def oldest_pending_created(self, db: Db) -> str | None:
        """When the pending run first in event order was created (the one waiting longest)."""
        row = db.execute("SELECT created_at FROM runs WHERE status = ? ORDER BY event_seq, id LIMIT 1",
                         (RunStatus.PENDING,)).fetchone()
        return None if row is None else row[0]

    def count_status(self, db: Db, status: str) -> int:
        return db.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]
