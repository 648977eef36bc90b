"""Events in: store an event and plan its runs, in one transaction, then wake their lanes.

An event is stored (with the runs it causes) before it is acknowledged. Events that plugins'
actions cause on the platform come in here too (``record``, in the applier's transaction),
counted against their root event's budget and the queues.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from plugin_runtime import logs, metrics
from plugin_runtime.budget import Chain, queue_full
from plugin_runtime.errors import Busy
from plugin_runtime.intake.writer import GroupCommit
from plugin_runtime.platforms.base import Mirror
from plugin_runtime.scheduler import Lane, Scheduler
from plugin_runtime.statuses import RunOutcome, RunStatus
from plugin_runtime.store import Db, Store
from plugin_runtime.store.codec import now
from plugin_sdk.subscriptions import subscribed

#: Run ids drawn from the OS's random source at a time.
RUN_ID_BATCH = 256
#: Events caused by plugins' actions stop triggering runs past this depth.
MAX_DEPTH = 3
#: The plugins active on a project, each with its version and subscriptions.
Targets = Callable[[Db, str], list[dict[str, Any]]]


def plan(targets: list[dict[str, Any]], event_type: str, cause_plugin: str | None, depth: int) -> list[dict[str, Any]]:
    """Which plugin versions get a run for an event: those subscribed to its type, except the
    plugin whose action caused it, and none past ``MAX_DEPTH``. (What a chain of caused events
    may add up to is the root's budget: ``plugin_runtime.budget``.)"""
    if depth > MAX_DEPTH:
        return []
    return [t for t in targets if t["plugin"] != cause_plugin and subscribed(t["subscriptions"], event_type)]


class RunIds:
    """Unpredictable run ids (caused events' ids derive from them), drawn from the OS in
    batches: a draw gives up the GIL, and the intake draws while it holds the store's writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex, self._next = "", 0

    def new(self) -> str:
        with self._lock:
            if self._next == len(self._hex):
                self._hex, self._next = os.urandom(8 * RUN_ID_BATCH).hex(), 0
            start, self._next = self._next, self._next + 16
            return f"run-{self._hex[start:self._next]}"


class Intake:
    def __init__(self, store: Store, targets: Targets, mirror: Mirror | None, scheduler: Scheduler,
                 max_queue: int = 10_000, max_queue_per_project: int = 2_500) -> None:
        """``mirror``: a platform keeping its own copy of what events say (embedded), told
        in the transaction that stores each event."""
        self.store, self._targets, self.mirror, self.scheduler = store, targets, mirror, scheduler
        self.max_queue, self.max_queue_per_project = max_queue, max_queue_per_project
        self.run_ids = RunIds()
        #: Webhooks' events, stored by a thread of their own, many to a transaction.
        self.writer = GroupCommit(self.submit_many)

    def submit(self, event: dict[str, Any], source: str = "webhook") -> bool:
        """Store a validated event (making what it refers to known to the platform) and plan
        its runs, in one transaction. False when its id is already stored."""
        with self.store.write() as db:
            if self.store.events.exists(db, event["id"]):
                return False
            if self.mirror is not None:
                self.mirror.mirror(event)
            runs = self.record(db, event, source, None, None, 0)
        self.scheduler.notify(runs)
        return True

    def submit_many(self, events: list[tuple[dict[str, Any], str]]) -> list[bool | Busy]:
        """Store validated events from outside (with their sources) in one transaction, as
        webhooks are: each is True (stored, its runs planned), False (its id was stored
        already) or the ``Busy`` refusing it when its queue is full (nothing of it stored).
        Any other error rolls them all back."""
        outcomes: list[bool | Busy] = []
        lanes: list[Lane] = []
        # Each project's targets, read once per transaction: nothing else writes meanwhile.
        active: dict[str, list[dict[str, Any]]] = {}
        with self.store.write() as db:
            for event, source in events:
                busy = self._busy(event["project_id"], lanes)
                if busy is not None:
                    outcomes.append(busy)
                    continue
                if self.store.events.exists(db, event["id"]):
                    outcomes.append(False)
                    continue
                if self.mirror is not None:
                    self.mirror.mirror(event)
                project = event["project_id"]
                if project not in active:
                    active[project] = self._targets(db, project)
                lanes += self.record(db, event, source, None, None, 0, active=active[project])
                outcomes.append(True)
        self.scheduler.notify(lanes)
        return outcomes

    def _busy(self, project_id: str, queued: list[Lane]) -> Busy | None:
        """Why an event from outside is refused (HTTP 429) when a queue is full; ``queued``:
        the lanes of the runs this transaction queued, not pending until it commits."""
        pending = self.scheduler.pending
        if pending() + len(queued) >= self.max_queue:
            return Busy("the runtime is busy; retry later")
        if pending(project_id) + sum(lane[2] == project_id for lane in queued) >= self.max_queue_per_project:
            return Busy(f"project {project_id!r} has too many pending runs; retry later")
        return None

    def close(self) -> None:
        """Store the events handed to the writer already; later ones are refused (Busy)."""
        self.writer.close()

    def submit_change(self, change: Callable[[], dict[str, Any]], source: str = "platform") -> dict[str, Any]:
        """Apply a platform change (``change()`` makes it in a transaction of the store, which
        joins this one, and returns the event it emits, with its id) and record that event, in
        one transaction: no change without its event, and back."""
        with self.store.write() as db:
            event = change()
            runs = self.record(db, event, source, None, None, 0)
        self.scheduler.notify(runs)
        return event

    def record(self, db: Any, event: dict[str, Any], source: str, cause_run: str | None,
               cause_plugin: str | None, depth: int, chain: Chain | None = None,
               active: list[dict[str, Any]] | None = None) -> list[Lane]:
        """Store an event and its runs; a caused event (``chain``) only within its root's budget,
        and its runs skipped (with the reason) when the queue is full. Returns the lanes to wake
        once the transaction commits. ``active``: the project's targets, when the caller read
        them in this transaction already."""
        if active is None:
            active = self._targets(db, event["project_id"])
        targets = plan(active, event["type"], cause_plugin, depth)
        if chain is not None and not chain.admit(db, len(targets)):
            return []
        skipped = None if chain is None else self._queue_full(event["project_id"], len(targets), chain.queued)
        if "context" not in event and event.get("asset_id") and self.mirror is not None:
            # Recorded with what the plugin saw, so an export of it dry-runs the same way.
            event = {**event, "context": self.mirror.snapshot(event)}
        root_id = event["id"] if chain is None else chain.root_id
        seq = self.store.events.insert(db, event, source, cause_run, cause_plugin, depth, root_id, now())
        metrics.event_received(source, event["project_id"])
        lanes = []
        for target in targets:
            run_id = self.run_ids.new()
            lane = (target["plugin"], target["version"], event["project_id"])
            if skipped:
                self.store.runs.insert(db, run_id, event["id"], seq, *lane, event.get("asset_id"), now(), root_id,
                                       (RunOutcome.QUEUE_FULL, skipped))
                logs.run_ended(run_id, event["id"], *lane, RunStatus.SKIPPED, RunOutcome.QUEUE_FULL, None)
            else:
                self.scheduler.queue.enqueue(db, run_id, event["id"], seq, lane, event.get("asset_id"), root_id)
                lanes.append(lane)
        if chain is not None:
            chain.recorded(db, len(targets), skipped)
        return lanes

    def _queue_full(self, project_id: str, planned: int, queued: int) -> str | None:
        """Caused events count against the queues as webhooks do (which get 429 instead);
        ``queued``: runs this chain queued, not yet committed (so not counted as pending)."""
        pending = self.scheduler.pending
        return (queue_full(pending(project_id) + queued, planned, self.max_queue_per_project,
                           f"project {project_id!r}", "PLUGIN_RUNTIME_MAX_QUEUE_PER_PROJECT")
                or queue_full(pending() + queued, planned, self.max_queue, "the runtime", "PLUGIN_RUNTIME_MAX_QUEUE"))
