"""What a run left: its log lines and its actions (with whether each was applied)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plugin_runtime.store.codec import Db, dumps, loads

#: (level, message, source)
LogLine = tuple[str, str, str]


class RunRecords:
    def replace_logs(self, db: Db, run_id: str, lines: Iterable[LogLine], first: int = 0, fresh: bool = False) -> None:
        """The run's log lines, numbered from ``first`` (0: any earlier attempt's are dropped,
        unless ``fresh``: the run's first attempt, which has none)."""
        if first == 0 and not fresh:
            db.execute("DELETE FROM run_logs WHERE run_id = ?", (run_id,))
        rows = [(run_id, first + i, *line) for i, line in enumerate(lines)]
        if rows:
            db.executemany("INSERT INTO run_logs (run_id, seq, level, message, source) VALUES (?, ?, ?, ?, ?)", rows)

    def append_logs(self, db: Db, run_id: str, lines: list[LogLine]) -> None:
        """Lines added to a run's logs after it finished (what its actions caused)."""
        if lines:
            first = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM run_logs WHERE run_id = ?", (run_id,)).fetchone()[0]
            self.replace_logs(db, run_id, lines, first)

    def replace_actions(self, db: Db, run_id: str, actions: Iterable[tuple[int, dict[str, Any], str, str | None]],
                        fresh: bool = False) -> None:
        """The run's actions settled when it finished: (seq, action in its wire form, status,
        reason); an earlier attempt's are dropped (none when ``fresh``: its first attempt)."""
        if not fresh:
            db.execute("DELETE FROM run_actions WHERE run_id = ?", (run_id,))
        rows = [(run_id, seq, dumps(action), status, reason) for seq, action, status, reason in actions]
        if rows:
            db.executemany("INSERT INTO run_actions (run_id, seq, action, status, reason) VALUES (?, ?, ?, ?, ?)", rows)

    def add_actions(self, db: Db, run_id: str, actions: Iterable[tuple[int, dict[str, Any], str, str | None]]) -> None:
        """Actions settled after their run finished (the platform applied or refused them):
        (seq, action in its wire form, status, reason)."""
        db.executemany("INSERT INTO run_actions (run_id, seq, action, status, reason) VALUES (?, ?, ?, ?, ?)"
                       " ON CONFLICT DO NOTHING",
                       [(run_id, seq, dumps(action), status, reason) for seq, action, status, reason in actions])

    def actions(self, db: Db, run_id: str) -> list[dict[str, Any]]:
        return [{"action": loads(r["action"]), "status": r["status"], "reason": r["reason"]}
                for r in db.execute("SELECT * FROM run_actions WHERE run_id = ? ORDER BY seq", (run_id,))]

    def logs(self, db: Db, run_id: str) -> list[dict[str, Any]]:
        return [{"level": r["level"], "message": r["message"], "source": r["source"]}
                for r in db.execute("SELECT * FROM run_logs WHERE run_id = ? ORDER BY seq", (run_id,))]

    def lines_after(self, db: Db, after: int, limit: int, plugin: str | None = None,
                    project_id: str | None = None) -> list[dict[str, Any]]:
        """Log lines of every run, oldest first, after the cursor ``after`` (each line's ``id``,
        which only grows), with their run's ids."""
        where: list[str] = ["l.id > ?"]
        params: list[int | str] = [after]
        for column, value in (("r.plugin", plugin), ("r.project_id", project_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = db.execute(
            "SELECT l.id AS cursor, l.level, l.message, l.source, r.id AS run_id, r.plugin, r.version,"
            " r.project_id, r.asset_id, r.event_id, r.finished_at FROM run_logs l JOIN runs r ON r.id = l.run_id"
            f" WHERE {' AND '.join(where)} ORDER BY l.id LIMIT ?", (*params, limit)).fetchall()
        return [dict(row) for row in rows]
