"""Shadows: a candidate version of a plugin run beside its live version on one project's
events, and the candidate's runs there (``shadow_runs``), whose actions are stored and never
applied.

A shadow run is not a run: it is in no lane of the run queue, counts against no queue or
budget, and nothing but the shadow lane (``plugin_runtime.shadow``) plans and reads it, from the
project's events stored after the shadow's ``planned_seq``; its logs are kept with the runs'
(``run_records``, under its own id).
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
        """A new shadow (the caller ended the one it replaces), from the next event stored on;
        returns its id."""
        return db.execute(
            "INSERT INTO shadows (plugin, version, project_id, subscriptions, started_at, planned_seq)"
            " VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) FROM events)) RETURNING id",
            (plugin, version, project_id, dumps(subscriptions), at)).fetchone()[0]

    def get(self, db: Db, shadow_id: int) -> Any:
        return db.execute("SELECT * FROM shadows WHERE id = ?", (shadow_id,)).fetchone()

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

    # Planning: the project's events after the shadow's planned_seq ---------------------------

    def events_after(self, db: Db, shadow: Any, limit: int) -> list[Any]:
        """The next events of a shadow's project it has not looked at, oldest first, each with
        the status and version of the plugin's live run of it (null: the plugin had none)."""
        live = "(SELECT r.{} FROM runs r WHERE r.event_id = e.id AND r.plugin = ? ORDER BY r.version DESC LIMIT 1)"
        return db.execute(
            f"SELECT e.id, e.seq, e.type, e.cause_plugin, e.depth, {live.format('status')} AS live_status,"
            f" {live.format('version')} AS live_version FROM events e WHERE e.project_id = ? AND e.seq > ?"
            " ORDER BY e.seq LIMIT ?",
            (shadow["plugin"], shadow["plugin"], shadow["project_id"], shadow["planned_seq"], limit)).fetchall()

    def planned(self, db: Db, shadow_id: int, seq: int) -> None:
        """The shadow looked at its project's events up to ``seq``."""
        db.execute("UPDATE shadows SET planned_seq = ? WHERE id = ? AND planned_seq < ?", (seq, shadow_id, seq))

    def unplanned(self, db: Db, project_id: str, after_seq: int) -> int:
        """Events of the project a shadow has not looked at yet."""
        return db.execute("SELECT COUNT(*) FROM events WHERE project_id = ? AND seq > ?",
                          (project_id, after_seq)).fetchone()[0]

    def last_event_seq(self, db: Db) -> int:
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def queued(self, db: Db, shadow_id: int) -> int:
        """A shadow's runs pending or running."""
        return db.execute(f"SELECT COUNT(*) FROM shadow_runs WHERE shadow_id = ? AND status IN {_QUEUED_SQL}",
                          (shadow_id,)).fetchone()[0]

    def next_queued(self, db: Db, shadow_id: int) -> Any:
        """A shadow's oldest pending run (event order), with its plugin, version and project."""
        return db.execute(
            "SELECT r.*, s.plugin, s.version, s.project_id FROM shadow_runs r JOIN shadows s ON s.id = r.shadow_id"
            f" WHERE r.shadow_id = ? AND r.status IN {_QUEUED_SQL} AND r.status = ? ORDER BY r.event_seq LIMIT 1",
            (shadow_id, RunStatus.PENDING)).fetchone()

    def claim(self, db: Db, run_id: str, at: str) -> bool:
        """Running; False when another lane took it, or its shadow ended."""
        return db.execute("UPDATE shadow_runs SET status = ?, started_at = ? WHERE id = ? AND status = ?",
                          (RunStatus.RUNNING, at, run_id, RunStatus.PENDING)).rowcount == 1

    def requeue_running(self, db: Db, started_before: str | None = None) -> None:
        """Shadow runs a process that stopped left running (all of them, or those started
        before ``started_before``): pending again, or skipped when their shadow ended since."""
        stale = f"status = '{RunStatus.RUNNING}'" + ("" if started_before is None else " AND started_at < ?")
        params = () if started_before is None else (started_before,)
        db.execute(f"UPDATE shadow_runs SET status = ?, error = ? WHERE {stale} AND shadow_id IN"
                   " (SELECT id FROM shadows WHERE ended_at IS NOT NULL)",
                   (RunStatus.SKIPPED, "the shadow ended while this event ran; it was not run to its end", *params))
        db.execute(f"UPDATE shadow_runs SET status = ? WHERE {stale}", (RunStatus.PENDING, *params))

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
        rows = db.execute("SELECT seq, action FROM outbox WHERE run_id = ? AND action <> ''"
                          " UNION SELECT seq, action FROM run_actions"
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
