"""A run's end, recorded once: its logs, its actions checked and applied to the platform, the
events those changes cause, and its status, all in one transaction. A run already ended is
never finished again, so whatever is retried, its effects are applied once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugin_runtime import logs
from plugin_runtime.budget import Chain, EventBudget
from plugin_runtime.platforms.base import Platform
from plugin_runtime.scheduler import Lane
from plugin_runtime.statuses import ENDED, ActionStatus, RunOutcome, RunStatus
from plugin_runtime.store import Store
from plugin_runtime.store.codec import now
from plugin_sdk.results import RunResult

#: Records an event a run's actions caused (the intake's ``record``): returns the lanes to wake.
Record = Callable[..., list[Lane]]


class Applier:
    def __init__(self, store: Store, platform: Platform, record: Record, budget: EventBudget | None = None) -> None:
        self.store, self.platform, self._record = store, platform, record
        self.budget = budget or EventBudget()

    def finish(self, run_id: str, result: RunResult, event: dict[str, Any] | None, outcome: RunOutcome | None,
               dead: bool = False) -> list[Lane] | None:
        """Record a run's end; returns the lanes of the runs its caused events queued, None
        when the run had already ended (nothing recorded)."""
        metrics: dict[str, Any] = {"reads": (result.model_extra or {}).get("reads")}
        lanes: list[Lane] = []
        with self.store.write() as db:
            run = self.store.runs.get(db, run_id)
            if run["status"] in ENDED:
                return None  # already finished: never apply twice
            lines = [(log.level, log.message, log.source) for log in result.logs]
            if not result.ok and result.error:
                # The failure reads in the plugin's logs too, where an admin looks first.
                lines.append(("ERROR", f"{result.status}: {result.error}", "runtime"))
            self.store.run_records.replace_logs(db, run_id, lines)
            if result.ok and event is not None:
                lanes = self._apply(db, run, result, event, metrics, len(lines))
                status = RunStatus.SUCCEEDED
            else:
                self.store.run_records.replace_actions(db, run_id, [])
                status = RunStatus.DEAD if dead else RunStatus.FAILED
            outcome = outcome or RunOutcome.of(result.status)
            self.store.runs.end(db, run_id, status, outcome, result.error, now(), result.duration_ms,
                                {key: value for key, value in metrics.items() if value})
        logs.run_ended(run_id, run["event_id"], run["plugin"], run["version"], run["project_id"], status, outcome,
                       result.duration_ms, run["attempts"])
        return lanes

    def _apply(self, db: Any, run: Any, result: RunResult, event: dict[str, Any], metrics: dict[str, Any],
               logged: int) -> list[Lane]:
        """Check and apply a succeeded run's actions; record the events they cause."""
        from plugin_sdk.actions import dump_actions

        run_id = run["id"]
        checks = self.platform.check(db, event, dump_actions(result.actions))
        self.store.run_records.replace_actions(
            db, run_id, [(c.action, ActionStatus.REJECTED if c.reason else ActionStatus.APPLIED, c.reason)
                         for c in checks])
        at = event.get("occurred_at") or (event.get("label") or {}).get("createdAt")
        emitted = self.platform.apply(db, run_id, [c.action for c in checks if c.reason is None], at=at)
        if not emitted:
            return []
        lanes: list[Lane] = []
        chain = Chain.of_run(db, run, self.budget, self.store.events)
        for number, caused in enumerate(emitted):
            caused = {**caused, "id": f"{run_id}-e{number}", "cause": {"run_id": run_id, "plugin": run["plugin"]}}
            lanes += self._record(db, caused, "platform", run_id, run["plugin"], chain.depth + 1, chain)
        metrics["caused"] = chain.report.metrics()
        self.store.run_records.replace_logs(db, run_id, chain.report.log_lines(chain.root_id), logged)
        return lanes

    def dead_letter(self, run: Any, reason: str) -> None:
        """Mark a run dead alone, when not even its dead letter's logs could be recorded."""
        with self.store.write() as db:
            self.store.runs.end_bare(db, run["id"], RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, reason, now())
        logs.run_ended(run["id"], run["event_id"], run["plugin"], run["version"], run["project_id"],
                       RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, None, run["attempts"] + 1)
