"""The applier's outbox: a run's actions on their way to the platform, each with its
idempotency key (``run_id:seq``), so a platform that is slow or down is retried without
applying anything twice.

Only a pending row keeps its action: once settled (applied, rejected, failed) the action is
in the run's records (``run_actions``), so the row keeps its key, status and reason and its
payload is dropped (``DROPPED``), never stored twice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plugin_runtime.statuses import OutboxStatus
from plugin_runtime.store.codec import Db, dumps, loads


#: A settled row's action: its payload lives in ``run_actions`` (a column that cannot be NULL
#: in the stores' first schemas).
DROPPED = ""


def key(run_id: str, seq: int) -> str:
    return f"{run_id}:{seq}"


class Outbox:
    def add(self, db: Db, run_id: str, actions: Iterable[tuple[int, dict[str, Any], str | None]], at: str | None,
            created_at: str, fresh: bool = False) -> None:
        """A finishing run's actions: (seq, action in its wire form, why the policy refuses it
        or None: pending). An earlier attempt's rows of the run are replaced (there are none
        when ``fresh``: its first attempt)."""
        if not fresh:
            db.execute("DELETE FROM outbox WHERE run_id = ?", (run_id,))
        rows = [(key(run_id, seq), run_id, seq, DROPPED if reason else dumps(action), at,
                 OutboxStatus.REJECTED if reason else OutboxStatus.PENDING, reason, created_at)
                for seq, action, reason in actions]
        if rows:
            db.executemany("INSERT INTO outbox (key, run_id, seq, action, at, status, reason, created_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def pending_of_run(self, db: Db, run_id: str) -> list[dict[str, Any]]:
        return [_row(r) for r in db.execute(
            "SELECT * FROM outbox WHERE run_id = ? AND status = 'pending' ORDER BY seq", (run_id,))]

    def pending(self, db: Db, limit: int = 100) -> list[dict[str, Any]]:
        """Pending rows in the order they are sent: oldest runs first, each run's in order."""
        return [_row(r) for r in db.execute(
            "SELECT * FROM outbox WHERE status = 'pending' ORDER BY created_at, run_id, seq LIMIT ?", (limit,))]

    def settle(self, db: Db, keys: Iterable[str], status: OutboxStatus, reason: str | None = None) -> None:
        """Settled for good: the action's payload is dropped (kept in the run's records)."""
        db.executemany("UPDATE outbox SET status = ?, reason = ?, action = ? WHERE key = ?",
                       [(status, reason, DROPPED, k) for k in keys])

    def failed_attempt(self, db: Db, keys: Iterable[str], reason: str, not_before: str) -> None:
        db.executemany("UPDATE outbox SET attempts = attempts + 1, reason = ?, next_attempt_at = ? WHERE key = ?",
                       [(reason, not_before, k) for k in keys])


def _row(row: Any) -> dict[str, Any]:
    return {"key": row["key"], "run_id": row["run_id"], "seq": row["seq"], "action": loads(row["action"]),
            "at": row["at"], "attempts": row["attempts"], "next_attempt_at": row["next_attempt_at"]}
