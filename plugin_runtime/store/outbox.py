"""The applier's outbox: a run's actions on their way to the platform, each with its
idempotency key (``run_id:seq``), so a platform that is slow or down is retried without
applying anything twice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plugin_runtime.statuses import OutboxStatus
from plugin_runtime.store.codec import Db, dumps, loads


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
        rows = [(key(run_id, seq), run_id, seq, dumps(action), at,
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
        db.executemany("UPDATE outbox SET status = ?, reason = ? WHERE key = ?",
                       [(status, reason, k) for k in keys])

    def failed_attempt(self, db: Db, keys: Iterable[str], reason: str, not_before: str) -> None:
        db.executemany("UPDATE outbox SET attempts = attempts + 1, reason = ?, next_attempt_at = ? WHERE key = ?",
                       [(reason, not_before, k) for k in keys])


def _row(row: Any) -> dict[str, Any]:
    return {"key": row["key"], "run_id": row["run_id"], "seq": row["seq"], "action": loads(row["action"]),
            "at": row["at"], "attempts": row["attempts"], "next_attempt_at": row["next_attempt_at"]}
