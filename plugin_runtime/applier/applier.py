"""A run's end, recorded once: its logs, its actions checked by the policy and written to the
outbox, and its status, in one transaction. A run already ended is never finished again.

The outbox is delivered to the platform (``deliver``): by a platform sharing the runtime's
store, in that same transaction (an event's effects are applied exactly when its run is
recorded); otherwise by the ``Drainer`` once the transaction commits, retried until the
platform takes it, each action once by its key. The events the changes cause enter through
the intake (``record``), counted against their root event's budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugin_runtime import logs
from plugin_runtime.applier import policy
from plugin_runtime.budget import Chain, EventBudget
from plugin_runtime.metrics import actions as settled_actions
from plugin_runtime.platforms.base import Keyed, Platform
from plugin_runtime.platforms.router import Platforms, per_project
from plugin_runtime.scheduler import Lane
from plugin_runtime.statuses import ENDED, ActionStatus, OutboxStatus, RunOutcome, RunStatus
from plugin_runtime.store import Store
from plugin_runtime.store.codec import now
from plugin_runtime.store.outbox import key
from plugin_sdk.results import RunResult

@dataclass
class End:
    """A run's end to record (``Applier.finish``'s arguments)."""

    run_id: str
    result: RunResult
    event: dict[str, Any] | None
    outcome: RunOutcome | None = None
    dead: bool = False


#: Records an event a run's actions caused (the intake's ``record``): returns the lanes to wake.
Record = Callable[..., list[Lane]]


class Applier:
    def __init__(self, store: Store, platform: Platform | Platforms, record: Record,
                 budget: EventBudget | None = None) -> None:
        self.store, self._record = store, record
        # Each run's actions go to its project's platform.
        self.platforms = per_project(platform)
        self.platform = self.platforms.default
        self.budget = budget or EventBudget()
        #: Called once a finished run left actions in the outbox for a platform of its own.
        self.on_outbox: list[Callable[[], None]] = []

    def finish(self, run_id: str, result: RunResult, event: dict[str, Any] | None, outcome: RunOutcome | None,
               dead: bool = False, also: Callable[[Any], None] | None = None) -> list[Lane] | None:
        """Record a run's end; returns the lanes of the runs its caused events queued, None
        when the run had already ended (nothing recorded). ``also(db)`` runs in the same
        transaction once the end is recorded (the scheduler takes the lane's next run)."""
        return self.finish_many([End(run_id, result, event, outcome, dead)], also)[0]

    def finish_many(self, ends: list[End], also: Callable[[Any], None] | None = None) -> list[list[Lane] | None]:
        """``finish`` for runs of one lane, in order, in one transaction (a batch run together):
        each recorded as it would be alone."""
        # Asked before the transaction: a platform of its own may be slow to answer.
        checked = [self._refusals(end.result, end.event) if end.result.ok and end.event is not None else ([], [])
                   for end in ends]
        recorded: list[tuple[Any, RunStatus, RunOutcome | None, End] | None] = []
        out: list[list[Lane] | None] = []
        queued = False
        with self.store.write() as db:
            for end, (wire, reasons) in zip(ends, checked):
                lanes, ended, went_out = self._record_end(db, end, wire, reasons)
                out.append(lanes)
                recorded.append(ended)
                queued = queued or went_out
            if also is not None and recorded[-1] is not None:  # an ended run's lane was someone else's
                also(db)
        for ended in recorded:
            if ended is not None:
                run, status, outcome, end = ended
                logs.run_ended(run["id"], run["event_id"], run["plugin"], run["version"], run["project_id"], status,
                               outcome, end.result.duration_ms, run["attempts"])
        if queued:
            for callback in self.on_outbox:
                callback()
        return out

    def _record_end(self, db: Any, end: End, wire: list[dict[str, Any]], reasons: list[str | None]
                ) -> tuple[list[Lane] | None, tuple[Any, RunStatus, RunOutcome | None, End] | None, bool]:
        """One run's end in ``db``'s transaction: (lanes to wake or None when it had ended
        already, what to log once committed, whether actions wait in the outbox)."""
        run_id, result, event = end.run_id, end.result, end.event
        metrics: dict[str, Any] = {"reads": (result.model_extra or {}).get("reads")}
        lanes: list[Lane] = []
        run = self.store.runs.get(db, run_id)
        if run["status"] in ENDED:
            return None, None, False  # already finished: never apply twice
        # Its first attempt, just claimed: no earlier attempt left logs or actions to replace.
        fresh = end.outcome is None and run["attempts"] == 1
        lines = [(log.level, log.message, log.source) for log in result.logs]
        if not result.ok and result.error:
            # The failure reads in the plugin's logs too, where an admin looks first.
            lines.append(("ERROR", f"{result.status}: {result.error}", "runtime"))
        self.store.run_records.replace_logs(db, run_id, lines, fresh=fresh)
        queued = False
        if result.ok and event is not None:  # its actions replace an earlier attempt's (_outbox)
            keyed = self._outbox(db, run, result, wire, reasons, self._at(event), fresh)
            shares_store = self.platforms.of(run["project_id"]).shares_store
            if keyed and shares_store:
                lanes = self.deliver(db, run, keyed, self._at(event), metrics)
            queued = bool(keyed) and not shares_store
            status = RunStatus.SUCCEEDED
        else:
            self.store.run_records.replace_actions(db, run_id, [], fresh)
            status = RunStatus.DEAD if end.dead else RunStatus.FAILED
        outcome = end.outcome or RunOutcome.of(result.status)
        self.store.runs.end(db, run_id, status, outcome, result.error, now(), result.duration_ms,
                            {name: value for name, value in metrics.items() if value})
        return lanes, (run, status, outcome, end), queued

    @staticmethod
    def _at(event: dict[str, Any]) -> str | None:
        return event.get("occurred_at") or (event.get("label") or {}).get("createdAt")

    def _refusals(self, result: RunResult, event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str | None]]:
        """The run's actions in their wire form, and why the policy refuses each (None: it
        goes to the platform)."""
        from plugin_sdk.actions import dump_actions

        wire = dump_actions(result.actions)
        facts = self.platforms.of(event["project_id"]).facts(*policy.named(wire))
        return wire, [policy.refusal(action, event["project_id"], facts) for action in wire]

    def _outbox(self, db: Any, run: Any, result: RunResult, wire: list[dict[str, Any]], reasons: list[str | None],
                at: str | None, fresh: bool = False) -> list[tuple[int, Keyed]]:
        """The run's actions into the outbox; returns those to deliver, (seq, (key, action)),
        in order."""
        self.store.outbox.add(db, run["id"], [(seq, action, reason) for seq, (action, reason)
                                              in enumerate(zip(wire, reasons))], at, now(), fresh)
        self.store.run_records.replace_actions(db, run["id"], [
            (seq, action, ActionStatus.REJECTED, reason) for seq, (action, reason) in enumerate(zip(wire, reasons))
            if reason is not None], fresh)
        settled_actions([action["type"] for action, reason in zip(wire, reasons) if reason is not None], "rejected")
        return [(seq, (key(run["id"], seq), action)) for seq, (action, reason)
                in enumerate(zip(result.actions, reasons)) if reason is None]

    def deliver(self, db: Any, run: Any, keyed: list[tuple[int, Keyed]], at: str | None,
                metrics: dict[str, Any] | None = None) -> list[Lane]:
        """Apply a run's pending outbox actions and record them applied, in ``db``'s
        transaction (a platform sharing the store: its changes commit with them)."""
        emitted = self.platforms.of(run["project_id"]).apply([pair for _, pair in keyed], at=at, run_id=run["id"])
        return self.delivered(db, run, keyed, emitted, metrics)

    def delivered(self, db: Any, run: Any, keyed: list[tuple[int, Keyed]], emitted: list[dict[str, Any]],
                  metrics: dict[str, Any] | None = None) -> list[Lane]:
        """Record that the platform applied these outbox actions; the events the changes
        emitted are recorded (their ids follow from the run's, so once)."""
        from plugin_sdk.actions import dump_actions

        run_id = run["id"]
        self.store.outbox.settle(db, [k for _, (k, _) in keyed], OutboxStatus.APPLIED)
        settled_actions([action.type for _, (_, action) in keyed], "applied")
        self.store.run_records.add_actions(db, run_id, [
            (seq, action, ActionStatus.APPLIED, None)
            for (seq, _), action in zip(keyed, dump_actions([a for _, (_, a) in keyed]))])
        if not emitted:
            return []
        lanes: list[Lane] = []
        chain = Chain.of_run(db, run, self.budget, self.store.events)
        for number, caused in enumerate(emitted):
            caused = {**caused, "id": f"{run_id}-e{number}", "cause": {"run_id": run_id, "plugin": run["plugin"]}}
            if not self.store.events.exists(db, caused["id"]):
                lanes += self._record(db, caused, "platform", run_id, run["plugin"], chain.depth + 1, chain)
        if metrics is not None:
            metrics["caused"] = chain.report.metrics()
        self.store.run_records.append_logs(db, run_id, chain.report.log_lines(chain.root_id))
        return lanes

    def dead_letter(self, run: Any, reason: str) -> None:
        """Mark a run dead alone, when not even its dead letter's logs could be recorded
        (``run`` as claimed: its attempts count the last one)."""
        with self.store.write() as db:
            self.store.runs.end_bare(db, run["id"], RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, reason, now())
        logs.run_ended(run["id"], run["event_id"], run["plugin"], run["version"], run["project_id"],
                       RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, None, run["attempts"])
