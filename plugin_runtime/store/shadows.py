"""Shadows: a candidate version of a plugin run beside its live version on one project's
events, and the candidate's runs there (``shadow_runs``), whose actions are stored and never
applied.

A shadow run is not a run: it is in no lane of the run queue, counts against no queue or
budget, and nothing but the shadow lane (``plugin_runtime.shadow``) reads it; its logs are
kept with the runs' (``run_records``, under its own id).
"""

from __future__ import annotations

from typing import Any

from plugin_runtime.statuses import QUEUED, RunStatus
from plugin_runtime.store.codec import Db, dumps, loads

#: Queued shadow runs' statuses as SQL literals, so the partial index on them applies.
_QUEUED_SQL = "(" + ", ".join(f"'{status}'" for status in QUEUED) + ")"


class Shadows:
    # Shadows -----------------------------------------------------------------------------

    def start(self, db: Db, plugin: str, version: int, project_id: str, subscriptions: list[str], at: str) -> int:
        """A new shadow (the caller ended the one it replaces); returns its id."""
        return db.execute(
            "INSERT INTO shadows (plugin, version, project_id, subscriptions, started_at) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id", (plugin, version, project_id, dumps(subscriptions), at)).fetchone()[0]

    def running(self, db: Db, plugin: str | None = None, project_id: str | None = None) -> list[Any]:
        """Shadows not ended (all, one plugin's, one project's of a plugin), oldest first."""
        where, params = ["ended_at IS NULL"], []
        for column, value in (("plugin", plugin), ("project_id", project_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return db.execute(f"SELECT * FROM shadows WHERE {' AND '.join(where)} ORDER BY id", params).fetchall()

    def latest(self, db: Db, plugin: str | None = None, project_id: str | None = None) -> list[Any]:
        """The newest shadow of each (plugin, project), ended or not: what a report shows."""
        where, params = [], []
        for column, value in (("plugin", plugin), ("project_id", project_id)):
            if value is not None:
                where.append(f"s.{column} = ?")
                params.append(value)
        return db.execute(
            "SELECT s.* FROM shadows s WHERE s.id = (SELECT MAX(o.id) FROM shadows o WHERE o.plugin = s.plugin"
            " AND o.project_id = s.project_id)" + "".join(f" AND {w}" for w in where) + " ORDER BY s.plugin,"
            " s.project_id", params).fetchall()

    def end(self, db: Db, shadow_id: int, reason: str, at: str) -> None:
        """End a shadow; its runs not started yet never will ("skipped", with the reason)."""
        db.execute("UPDATE shadows SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                   (at, reason, shadow_id))
        db.execute("UPDATE shadow_runs SET status = ?, error = ?, finished_at = ? WHERE shadow_id = ? AND status = ?",
                   (RunStatus.SKIPPED, f"the shadow ended ({reason}) before this event ran", at, shadow_id,
                    RunStatus.PENDING))

    # Shadow runs -------------------------------------------------------------------------

    def add_run(self, db: Db, run_id: str, shadow_id: int, event_id: str, event_seq: int, at: str,
                ended: tuple[str, str | None, str | None, bool] | None = None) -> None:
        """A shadow run of an event, pending; or ``ended`` at once (status, outcome, error, no
        hook): the candidate has no hook for the event, or it fell too far behind."""
        status, outcome, error, no_hook = ended or (RunStatus.PENDING, None, None, False)
        db.execute(
            "INSERT INTO shadow_runs (id, shadow_id, event_id, event_seq, status, outcome, error, no_hook, created_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (run_id, shadow_id, event_id, event_seq, status, outcome, error, int(no_hook), at,
             at if ended else None))

    def queued_by_shadow(self, db: Db) -> dict[int, int]:
        """Shadow runs pending or running, per shadow that has any."""
        return {row[0]: row[1] for row in db.execute(
            f"SELECT shadow_id, COUNT(*) FROM shadow_runs WHERE status IN {_QUEUED_SQL} GROUP BY shadow_id")}

    def next_queued(self, db: Db) -> Any:
        """The oldest pending shadow run (event order), with its shadow's plugin, version and
        project."""
        return db.execute(
            "SELECT r.*, s.plugin, s.version, s.project_id FROM shadow_runs r JOIN shadows s ON s.id = r.shadow_id"
            " WHERE r.status = ? ORDER BY r.event_seq LIMIT 1", (RunStatus.PENDING,)).fetchone()

    def claim(self, db: Db, run_id: str, at: str) -> bool:
        """Running; False when another lane took it, or its shadow ended."""
        return db.execute("UPDATE shadow_runs SET status = ?, started_at = ? WHERE id = ? AND status = ?",
                          (RunStatus.RUNNING, at, run_id, RunStatus.PENDING)).rowcount == 1

    def requeue_running(self, db: Db, started_before: str | None = None) -> int:
        """Pending again: shadow runs left running by a process that stopped (all of them, or
        those started before ``started_before``); how many."""
        if started_before is None:
            return db.execute("UPDATE shadow_runs SET status = ? WHERE status = ?",
                              (RunStatus.PENDING, RunStatus.RUNNING)).rowcount
        return db.execute("UPDATE shadow_runs SET status = ? WHERE status = ? AND started_at < ?",
                          (RunStatus.PENDING, RunStatus.RUNNING, started_before)).rowcount

    def finish(self, db: Db, run_id: str, status: str, outcome: str | None, error: str | None,
               actions: list[dict[str, Any]], no_hook: bool, duration_ms: float | None, at: str) -> None:
        db.execute("UPDATE shadow_runs SET status = ?, outcome = ?, error = ?, actions = ?, no_hook = ?,"
                   " duration_ms = ?, finished_at = ? WHERE id = ?",
                   (status, outcome, error, dumps(actions), int(no_hook), duration_ms, at, run_id))

    def set_differs(self, db: Db, run_id: str, differs: bool) -> None:
        db.execute("UPDATE shadow_runs SET differs = ? WHERE id = ?", (int(differs), run_id))

    # What a report reads -----------------------------------------------------------------

    def counts(self, db: Db, shadow_id: int) -> list[Any]:
        """(status, outcome, no_hook, differs, how many) of a shadow's runs."""
        return db.execute("SELECT status, outcome, no_hook, differs, COUNT(*) AS n FROM shadow_runs WHERE shadow_id = ?"
                          " GROUP BY status, outcome, no_hook, differs", (shadow_id,)).fetchall()

    def runs_of(self, db: Db, shadow_id: int, where: str = "", limit: int = 10**9) -> list[Any]:
        """A shadow's runs, newest event first; ``where``: more conditions (SQL of the report's)."""
        return db.execute(f"SELECT * FROM shadow_runs WHERE shadow_id = ? {where} ORDER BY event_seq DESC LIMIT ?",
                          (shadow_id, limit)).fetchall()

    def live_run(self, db: Db, event_id: str, plugin: str, version: int) -> Any:
        """The plugin's run of the event by another version than the candidate (the live one)."""
        return db.execute("SELECT id, version, status, outcome, error, duration_ms FROM runs WHERE event_id = ?"
                          " AND plugin = ? AND version <> ? ORDER BY created_at DESC LIMIT 1",
                          (event_id, plugin, version)).fetchone()

    def live_actions(self, db: Db, run_id: str) -> list[dict[str, Any]]:
        """Every action a live run produced, in its order, applied or not: those still on their
        way to a platform of its own are in the outbox, the others in the run's records."""
        rows = db.execute("SELECT seq, action FROM outbox WHERE run_id = ? UNION SELECT seq, action FROM run_actions"
                          " WHERE run_id = ? ORDER BY seq", (run_id, run_id)).fetchall()
        seen: dict[int, dict[str, Any]] = {}
        for seq, action in rows:
            seen.setdefault(seq, loads(action))
        return list(seen.values())

    def durations(self, db: Db, shadow_id: int, plugin: str, version: int) -> tuple[list[float], list[float]]:
        """Run durations (ms) over the events the shadow saw: the candidate's, the live runs'."""
        rows = db.execute(
            "SELECT r.duration_ms, l.duration_ms FROM shadow_runs r LEFT JOIN runs l ON l.event_id = r.event_id"
            " AND l.plugin = ? AND l.version <> ? WHERE r.shadow_id = ?", (plugin, version, shadow_id)).fetchall()
        return [r[0] for r in rows if r[0] is not None], [r[1] for r in rows if r[1] is not None]
