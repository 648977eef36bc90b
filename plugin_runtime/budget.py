"""What one event from outside may cause through plugins' actions, decided without I/O.

Decisions are pure functions; ``Chain`` keeps a root's counters on its event row (through the
store's ``events``), inside the caller's transaction.

An event that came from outside (a webhook, a label submitted on the platform) is a *root*.
Every event its runs' actions emit, at any depth, and every run of those events, is counted
against the root's budget: without it two plugins answering each other's send-backs grow one
webhook into fan-out to the power of the depth. A caused event either gets all its runs or is
not recorded; once a root's budget is spent, its chain stops there and the root says why.

Caused events also count against the project's queue, as webhooks do: when the queue is
full, the event is recorded and its runs are ``skipped`` (with the reason), never lost
silently; ``runs retry`` runs them later.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from plugin_runtime.store.codec import Db
from plugin_runtime.store.events import Events


@dataclass(frozen=True)
class EventBudget:
    """Per root event: how many caused runs and caused events it may give."""

    max_runs: int = 100
    max_events: int = 1_000


@dataclass(frozen=True)
class RootUsage:
    """What a root has caused so far (the counters stored on its event row)."""

    caused_runs: int = 0
    caused_events: int = 0
    exceeded: str | None = None


def over_budget(usage: RootUsage, budget: EventBudget, planned_runs: int) -> str | None:
    """Why a caused event with ``planned_runs`` runs may not be recorded under this root
    (``None``: it may)."""
    if usage.exceeded is not None:
        return usage.exceeded
    if usage.caused_events + 1 > budget.max_events:
        return f"its caused events reached the limit of {budget.max_events} (PLUGIN_RUNTIME_MAX_CAUSED_EVENTS)"
    if usage.caused_runs + planned_runs > budget.max_runs:
        return (f"its caused runs reached {usage.caused_runs} of the limit of {budget.max_runs} "
                f"(PLUGIN_RUNTIME_MAX_CAUSED_RUNS) and the next caused event needed {planned_runs}")
    return None


def queue_full(pending: int, planned_runs: int, limit: int, queue: str, setting: str) -> str | None:
    """Why the runs of a caused event are skipped rather than queued (``None``: they fit).
    ``pending`` counts the queue's queued and running runs."""
    if planned_runs and pending + planned_runs > limit:
        return (f"{queue} had {pending} pending runs (limit {limit}, {setting}) when this caused event "
                "arrived: not run; `plugin-runtime runs retry RUN_ID` runs it")
    return None


@dataclass
class CausedReport:
    """What one run's actions caused, for its logs and metrics."""

    events: int = 0
    runs: int = 0
    dropped_events: int = 0
    skipped_runs: int = 0
    #: The root's budget, when this run is the one that spent it.
    exceeded: str | None = None
    skipped_reason: str | None = None

    def metrics(self) -> dict[str, int]:
        return {"events": self.events, "runs": self.runs, "dropped_events": self.dropped_events,
                "skipped_runs": self.skipped_runs}

    def log_lines(self, root_id: str) -> list[tuple[str, str, str]]:
        """Runtime lines for the run's logs: (level, message, source)."""
        lines = []
        if self.dropped_events:
            lines.append(("WARNING", f"event budget of root event {root_id!r} spent: {self.exceeded}; "
                          f"{self.dropped_events} event(s) this run's actions caused were not recorded "
                          "(their platform changes were applied)", "runtime"))
        if self.skipped_runs:
            lines.append(("WARNING", f"{self.skipped_runs} run(s) of events this run caused were skipped: "
                          f"{self.skipped_reason}", "runtime"))
        return lines


@dataclass
class Chain:
    """The events one run's actions cause, counted against the run's root event."""

    root_id: str
    depth: int
    budget: EventBudget
    usage: RootUsage
    report: CausedReport = field(default_factory=CausedReport)
    #: Runs queued by this chain so far (not yet in the scheduler's pending count).
    queued: int = 0
    events: Events = field(default_factory=Events)

    @classmethod
    def of_run(cls, db: Db, run: Any, budget: EventBudget, events: Events | None = None) -> "Chain":
        events = events or Events()
        lineage = events.lineage(db, run["event_id"])
        root_id = run["root_id"] or (lineage[0] if lineage else run["event_id"])
        counters = events.usage(db, root_id)
        usage = RootUsage(*counters) if counters else RootUsage()
        return cls(root_id, lineage[1] if lineage else 0, budget, usage, events=events)

    def admit(self, db: Db, planned_runs: int) -> bool:
        """Whether a caused event with ``planned_runs`` runs is recorded; if not, the root
        counts it as dropped and keeps the reason."""
        reason = over_budget(self.usage, self.budget, planned_runs)
        if reason is None:
            return True
        self.report.dropped_events += 1
        self.report.exceeded = reason
        self.usage = replace(self.usage, exceeded=reason)
        self.events.count_dropped(db, self.root_id, reason)
        return False

    def recorded(self, db: Db, runs: int, skipped: str | None) -> None:
        """A caused event was recorded with ``runs`` runs (``skipped``: why they will not run)."""
        self.usage = replace(self.usage, caused_runs=self.usage.caused_runs + runs,
                             caused_events=self.usage.caused_events + 1)
        self.events.count_caused(db, self.root_id, runs)
        self.report.events += 1
        if skipped:
            self.report.skipped_runs += runs
            self.report.skipped_reason = skipped
        else:
            self.report.runs += runs
            self.queued += runs
