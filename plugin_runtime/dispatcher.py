"""The runtime's core, assembled: intake -> scheduler -> sandbox -> applier -> platform.

``Intake`` stores an event and plans its runs in one transaction; the ``Scheduler`` takes
them from the durable run queue, lanes in parallel and each lane's runs in event order; this
module runs a lane's head run through its plugin version's sandbox (``run``) and hands the
result to the ``Applier``, which records it and applies its actions once. Any exception from
a run is an infrastructure failure: retried at a stored ``next_attempt_at`` with backoff,
then dead; a lane is always released.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

from plugin_runtime import logs
from plugin_runtime.applier.applier import Applier, End
from plugin_runtime.applier.outbox import Drainer
from plugin_runtime.budget import EventBudget
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.intake import MAX_DEPTH, Intake, plan
from plugin_runtime.platforms.base import Platform
from plugin_runtime.platforms.router import Platforms, per_project
from plugin_runtime.registry import Registry
from plugin_runtime.scheduler import LANE_SLICE, Execute, Head, Lane, Scheduler, Step, StoreRunQueue, Taken
from plugin_runtime.statuses import RETRYABLE, RunOutcome, RunStatus
from plugin_runtime.store import Store
from plugin_runtime.store.codec import now
from plugin_sdk.results import RunResult, Status

__all__ = ["LANE_SLICE", "MAX_DEPTH", "Dispatcher", "Lane", "RunFunction", "plan"]

_log = logging.getLogger(__name__)
#: Runs one event through a plugin version's sandbox.
RunFunction = Callable[[str, int, dict[str, Any]], RunResult]
#: Runs a lane's events in order through its sandbox, one result each; may stop early, after a
#: run that stopped its worker (``SandboxManager.run_many``).
RunManyFunction = Callable[[str, int, list[dict[str, Any]]], Generator[RunResult, None, None]]
#: Runs of a lane claimed, run and recorded together when they wait: one sandbox message and
#: one write transaction for all. A lane that keeps up has one waiting: no batch, no delay.
BATCH = 16


def _stale_read(before: list[End], result: RunResult) -> bool:
    """Whether ``result``'s run read the platform while runs before it in its batch had actions
    not yet applied (a batch is recorded at its end): it read a state its lane's order says was
    already changed, so it must run again once they are applied. Its actions were not applied
    either, so running it again is safe."""
    return bool((result.model_extra or {}).get("reads")) and any(end.result.actions for end in before)


class Dispatcher:
    def __init__(self, store: Store, registry: Registry, platform: Platform | Platforms, run: RunFunction,
                 concurrency: int = 4, max_attempts: int = 5, retry_base_s: float = 0.5,
                 budget: EventBudget | None = None, max_queue: int = 10_000, max_queue_per_project: int = 2_500,
                 scheduler: Callable[[Execute], Scheduler] | None = None, run_many: RunManyFunction | None = None,
                 batch: int = BATCH) -> None:
        """``scheduler``: makes the scheduler from this dispatcher's execute (default: the
        in-process lanes over the store's queue; ``scheduler.shared``: PostgreSQL's).
        ``run_many``: runs the in-process lanes' waiting runs ``batch`` at a time."""
        self.store, self.registry, self._run, self._run_many = store, registry, run, run_many
        # The platform of each project (its connected one, else ``platform``).
        self.platforms = per_project(platform)
        self.platform = self.platforms.default
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.scheduler = (scheduler(self._execute) if scheduler is not None
                          else Scheduler(StoreRunQueue(store, batch=batch if run_many else 1), self._execute,
                                         concurrency))
        # The intake's mirror: the projects whose platform keeps its own copy of events.
        self.intake = Intake(store, registry.targets, self.platforms, self.scheduler, max_queue, max_queue_per_project)
        self.applier = Applier(store, self.platforms, self.intake.record, budget)
        # A platform of its own (remote) gets the outbox once runs commit, retried from there.
        self.drainer: Drainer | None = None
        if self.platforms.may_defer:
            self.drainer = Drainer(self.applier, retry_base_s=retry_base_s, notify=self.scheduler.notify)
            self.drainer.start()
        self.budget = self.applier.budget
        self.on_applied: list[Callable[[str], None]] = []
        registry.on_ready.append(lambda name, version: self.resume())
        self._stopping = False
        # Versions whose runs read the platform: their backlog runs one run at a time (see
        # ``_stale_read``), so each run reads what the runs before it in its lane did.
        self._reading: set[tuple[str, int]] = set()

    # What the service and the API use ----------------------------------------------------

    def submit(self, event: dict[str, Any], source: str = "webhook") -> bool:
        """Store a validated event and plan its runs (``Intake.submit``)."""
        return self.intake.submit(event, source)

    def submit_batched(self, event: dict[str, Any], source: str = "webhook") -> Future[bool]:
        """``submit`` from outside (a webhook), with the events arriving at the same time in one
        transaction, refused (``Busy``) when its queue is full; the future's result once it
        committed (``Intake.writer``)."""
        return self.intake.writer.submit(event, source)

    def submit_change(self, change: Callable[[], dict[str, Any]], source: str = "platform") -> dict[str, Any]:
        """Apply a platform change and record the event it emits (``Intake.submit_change``)."""
        return self.intake.submit_change(change, source)

    def resume(self) -> None:
        """Queue every pending run (after a restart, or when a build finished)."""
        self.scheduler.resume()

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running (all, or one project's)."""
        return self.scheduler.pending(project_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no lane has work (tests, the demo, shutdown)."""
        return self.scheduler.wait_idle(timeout)

    def stop_runs(self) -> None:
        """The runtime is stopping and its sandboxes are about to be stopped: no run starts, and
        a run in progress ends unrecorded (what its sandbox's stop made of it is not the
        plugin's doing), queued again as it was, no attempt counted: it runs at the next start."""
        self._stopping = True

    def close(self) -> None:
        self.intake.close()
        self.scheduler.close()
        if self.drainer is not None:
            self.drainer.close()

    # A lane's head run -------------------------------------------------------------------

    def _execute(self, taken: Taken, take_next: bool) -> tuple[Step, Taken | None]:
        """Run a lane's claimed head to its end, or to a new attempt later (an unrunnable one
        ends at once); WAIT while its version is still building. With ``take_next``, the
        transaction recording its end also takes the lane's next head, returned (IDLE: there
        was none, and the lane is left until notified)."""
        run = taken.run
        if taken.head is Head.BUILDING:
            return Step.WAIT, None
        if taken.head is Head.UNRUNNABLE:
            self._finish(run, RunResult(event_id=run["event_id"], status=Status.ERROR, error=taken.reason), None,
                         RunOutcome.BUILD_FAILED)
            return Step.DONE, None
        if self._stopping:
            return self._put_back([taken, *taken.following])
        if taken.following and self._run_many is not None:
            if (run["plugin"], run["version"]) in self._reading:
                return self._execute_singly([taken, *taken.following], take_next)
            return self._execute_batch(self._run_many, [taken, *taken.following], take_next)
        try:
            result = self._run(run["plugin"], run["version"], taken.event or {})
            if self._stopping:
                return self._put_back([taken, *taken.following])
            looked, following = self._finish(run, result, taken.event, None, take_next=take_next)
            return (Step.IDLE if looked and following is None else Step.DONE), following
        except Exception as error:
            if self._stopping:
                return self._put_back([taken, *taken.following])
            self._failed(run, error)
        return Step.DONE, None

    def _put_back(self, batch: list[Taken]) -> tuple[Step, Taken | None]:
        """Claimed runs the stopping runtime did not run to their end (``stop_runs``): queued
        again as they were; their lane is left (WAIT) until the next start resumes it."""
        self.scheduler.queue.release([taken.run["id"] for taken in batch])
        return Step.WAIT, None

    def _failed(self, run: Any, error: Exception) -> None:
        """Infrastructure (Docker down, container not created), or anything unexpected while
        running or recording the run: retried with backoff, then dead; never left running."""
        if isinstance(error, PluginRuntimeError):
            reason = str(error)
        else:
            _log.exception("run %s failed unexpectedly", run["id"], exc_info=error)
            reason = f"the runtime failed on this run ({type(error).__name__}: {error})"
        self._retry_later(run, reason.encode("utf-8", "replace").decode("utf-8"))

    def _execute_batch(self, run_many: RunManyFunction, batch: list[Taken],
                       take_next: bool) -> tuple[Step, Taken | None]:
        """A lane's claimed runs in order through one sandbox message, recorded in one
        transaction, each as it would be alone. A run that stopped its worker ends as alone and
        the next ones run in a fresh worker; a runtime failure recorded the runs before it, is
        the failed run's attempt, and puts the runs after it back as they were."""
        plugin, version = batch[0].run["plugin"], batch[0].run["version"]
        ends: list[End] = []
        failure: Exception | None = None
        try:
            while len(ends) < len(batch):
                before = len(ends)
                # Closed whatever happens: a worker left in the middle of a batch is stopped.
                with contextlib.closing(run_many(plugin, version, [t.event or {} for t in batch[before:]])) as results:
                    for result in results:
                        if _stale_read(ends, result):
                            self._reading.add((plugin, version))
                            break
                        taken = batch[len(ends)]
                        ends.append(End(taken.run["id"], result, taken.event))
                if (plugin, version) in self._reading:
                    break
                if len(ends) == before:
                    raise PluginRuntimeError("the sandbox gave no result for the run")
        except Exception as error:
            failure = error
        if self._stopping:
            return self._put_back(batch)
        looked, following = False, None
        if ends:
            try:
                # A batch cut short takes no next head: its own rest is that head, put back below.
                whole = failure is None and len(ends) == len(batch)
                looked, following = self._finish_many(batch[:len(ends)], ends, take_next and whole)
            except Exception as error:  # nothing of the batch was recorded
                failure, ends = error, []
        if failure is not None:
            self._failed(batch[len(ends)].run, failure)
            self.scheduler.queue.release([taken.run["id"] for taken in batch[len(ends) + 1:]])
            return Step.DONE, None
        if len(ends) < len(batch):  # cut at a stale read: the rest run again, one at a time
            self.scheduler.queue.release([taken.run["id"] for taken in batch[len(ends):]])
            return Step.DONE, None
        return (Step.IDLE if looked and following is None else Step.DONE), following

    def _execute_singly(self, batch: list[Taken], take_next: bool) -> tuple[Step, Taken | None]:
        """A reading version's claimed runs, each run and recorded before the next starts, as
        a lane that keeps up runs them."""
        looked, following = False, None
        for index, taken in enumerate(batch):
            try:
                result = self._run(taken.run["plugin"], taken.run["version"], taken.event or {})
                if self._stopping:
                    return self._put_back(batch[index:])
                last = index == len(batch) - 1
                looked, following = self._finish(taken.run, result, taken.event, None, take_next=take_next and last)
            except Exception as error:
                if self._stopping:
                    return self._put_back(batch[index:])
                self._failed(taken.run, error)
                self.scheduler.queue.release([t.run["id"] for t in batch[index + 1:]])
                return Step.DONE, None
        return (Step.IDLE if looked and following is None else Step.DONE), following

    def _retry_later(self, run: Any, reason: str) -> None:
        """``run`` as claimed: its attempts count the one that failed."""
        attempts = run["attempts"]
        if attempts >= self.max_attempts:
            _log.error("run %s dead letter after %d attempt(s) (runs retry redelivers it): %s", run["id"], attempts,
                       reason, extra=logs.of_run(run))
            dead = RunResult(event_id=run["event_id"], status=Status.ERROR, error=reason)
            try:
                self._finish(run, dead, None, RunOutcome.INFRASTRUCTURE, dead=True)
            except Exception:  # not even the dead letter's logs could be written: mark it alone
                _log.exception("run %s could not be dead-lettered with its logs", run["id"])
                self.applier.dead_letter(run, reason)
            return
        delay = min(30.0, self.retry_base_s * 2 ** attempts)
        _log.warning("run %s attempt %d of %d failed, retrying in %.1f s: %s", run["id"], attempts, self.max_attempts,
                     delay, reason, extra=logs.of_run(run))
        self.scheduler.queue.reschedule(run["id"], reason, delay)

    def _finish(self, run: Any, result: RunResult, event: dict[str, Any] | None, outcome: RunOutcome | None,
                dead: bool = False, take_next: bool = False) -> tuple[bool, Taken | None]:
        """Record the run's end (``Applier.finish``); with ``take_next``, take the lane's next
        head in the same transaction. Returns whether it looked, and the head it took."""
        taken: list[Taken | None] = [None]
        looked = [False]

        def take(db: Any) -> None:
            taken[0], looked[0] = self.scheduler.queue.take((run["plugin"], run["version"], run["project_id"]), db), True

        lanes = self.applier.finish(run["id"], result, event, outcome, dead, also=take if take_next else None)
        if lanes is None:
            return False, None
        self.scheduler.notify(lanes)
        for callback in self.on_applied:
            callback(run["id"])
        return looked[0], taken[0]

    def _finish_many(self, batch: list[Taken], ends: list[End], take_next: bool) -> tuple[bool, Taken | None]:
        """``_finish`` for a batch's runs, in one transaction."""
        head = batch[0].run
        lane = (head["plugin"], head["version"], head["project_id"])
        taken: list[Taken | None] = [None]
        looked = [False]

        def take(db: Any) -> None:
            taken[0], looked[0] = self.scheduler.queue.take(lane, db), True

        outs = self.applier.finish_many(ends, also=take if take_next else None)
        self.scheduler.notify([lane for lanes in outs if lanes for lane in lanes])
        for end, lanes in zip(ends, outs):
            if lanes is not None:
                for callback in self.on_applied:
                    callback(end.run_id)
        return looked[0], taken[0]

    # runs retry --------------------------------------------------------------------------

    def retry(self, run_id: str, live_version: bool = False) -> dict[str, Any]:
        """Run a failed, dead or skipped run again: a new attempt of the same run, or with
        ``live_version`` a run of the same event by the plugin's live version (after a fix)."""
        with self.store.write() as db:
            row = self.store.runs.get(db, run_id)
            if row is None:
                raise KeyError(run_id)
            if row["status"] not in RETRYABLE:
                raise ValueError(f"run {run_id} is {row['status']}: only failed, dead or skipped runs are retried")
            plugin = self.store.plugins.get(db, row["plugin"])
            if plugin is None:
                raise ValueError(f"plugin {row['plugin']!r} was deleted: its runs cannot be retried")
            version = plugin["current_version"] if live_version and plugin["current_version"] else row["version"]
            if version == row["version"]:
                self.store.runs.requeue(db, run_id)
                target = run_id
            else:
                existing = self.store.runs.find(db, row["event_id"], row["plugin"], version)
                if existing is not None and existing["status"] not in RETRYABLE:
                    raise ValueError(f"event {row['event_id']} already has run {existing['id']} ({existing['status']}) "
                                     f"for version {version}")
                if existing is not None:
                    target = existing["id"]
                    self.store.runs.requeue(db, target)
                else:
                    target = f"run-{uuid.uuid4().hex[:16]}"
                    self.store.runs.insert(db, target, row["event_id"], row["event_seq"], row["plugin"], version,
                                           row["project_id"], row["asset_id"], now())
        _log.info("run %s queued again (runs retry): event=%s plugin=%s@%s project=%s", target, row["event_id"],
                  row["plugin"], version, row["project_id"])
        self.scheduler.notify([(row["plugin"], version, row["project_id"])])
        return {"id": target, "status": RunStatus.PENDING, "version": version}
