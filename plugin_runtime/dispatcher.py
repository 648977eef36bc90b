"""Events to runs: store, plan, run in order, apply.

An event is stored (with the runs it causes) before it is acknowledged. Runs are grouped in
lanes, one per (plugin, version, project): a lane runs its runs one after another, in event
order, on that project's warm sandbox, so the runs of one asset happen in order; different
lanes run in parallel, up to ``concurrency``. A run's actions, its logs and its status commit
in one transaction, so its effects are applied once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from plugin_runtime import logs
from plugin_runtime.budget import Chain, EventBudget, queue_full
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.platforms.base import Platform
from plugin_runtime.platforms.embedded import now
from plugin_runtime.registry import Registry
from plugin_runtime.statuses import (
    ENDED, QUEUED, RETRYABLE, ActionStatus, RunOutcome, RunStatus, VersionStatus, placeholders,
)
from plugin_runtime.store import Store, dumps, loads
from plugin_sdk.results import RunResult, Status
from plugin_sdk.subscriptions import subscribed

#: Events caused by plugins' actions stop triggering runs past this depth.
MAX_DEPTH = 3
#: Runs a lane executes before it lets other lanes have its thread.
LANE_SLICE = 32

Lane = tuple[str, int, str]
_log = logging.getLogger(__name__)
#: Runs one event through a plugin version's sandbox.
RunFunction = Callable[[str, int, dict[str, Any]], RunResult]


def plan(targets: list[dict[str, Any]], event_type: str, cause_plugin: str | None, depth: int) -> list[dict[str, Any]]:
    """Which plugin versions get a run for an event: those subscribed to its type, except the
    plugin whose action caused it, and none past ``MAX_DEPTH``. (What a chain of caused events
    may add up to is the root's budget: ``plugin_runtime.budget``.)"""
    if depth > MAX_DEPTH:
        return []
    return [t for t in targets if t["plugin"] != cause_plugin and subscribed(t["subscriptions"], event_type)]


class Dispatcher:
    def __init__(self, store: Store, registry: Registry, platform: Platform, run: RunFunction,
                 concurrency: int = 4, max_attempts: int = 5, retry_base_s: float = 0.5,
                 budget: EventBudget | None = None, max_queue: int = 10_000, max_queue_per_project: int = 2_500) -> None:
        self.store, self.registry, self.platform, self._run = store, registry, platform, run
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.budget = budget or EventBudget()
        self.max_queue, self.max_queue_per_project = max_queue, max_queue_per_project
        # Held from a run's queue check to the queueing of the runs it caused, so two finishing
        # runs cannot both see room for the same free places.
        self._admit = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lane")
        self._lock = threading.Lock()
        self._queues: dict[Lane, deque[str]] = {}
        self._busy: set[Lane] = set()
        self._idle = threading.Condition(self._lock)
        self.on_applied: list[Callable[[str], None]] = []
        self._stopping = False
        # Runs queued and not finished, per project: the intake's backpressure reads these
        # instead of counting rows for every request.
        self._pending: dict[str, set[str]] = {}
        registry.on_ready.append(lambda name, version: self.resume())

    # Intake ------------------------------------------------------------------------------

    def submit(self, event: dict[str, Any], source: str = "webhook") -> bool:
        """Store a validated event (making what it refers to known to the platform) and plan
        its runs, in one transaction. False when its id is already stored."""
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM events WHERE id = ?", (event["id"],)).fetchone():
                return False
            self.platform.ingest(db, event)
            runs = self._record(db, event, source, None, None, 0)
        self._enqueue(runs)
        return True

    def submit_change(self, change: Callable[[Any], dict[str, Any]], source: str = "platform") -> dict[str, Any]:
        """Apply a platform change (``change(db)`` returns the event it emits, with its id) and
        record that event, in one transaction: no change without its event, and back."""
        with self.store.write() as db:
            event = change(db)
            runs = self._record(db, event, source, None, None, 0)
        self._enqueue(runs)
        return event

    def _record(self, db, event: dict[str, Any], source: str, cause_run: str | None,
                cause_plugin: str | None, depth: int, chain: Chain | None = None) -> list[tuple[Lane, str]]:
        """Store an event and its runs; a caused event (``chain``) only within its root's budget,
        and its runs skipped (with the reason) when the queue is full."""
        targets = plan(self.registry.targets(db, event["project_id"]), event["type"], cause_plugin, depth)
        if chain is not None and not chain.admit(db, len(targets)):
            return []
        skipped = None if chain is None else self._queue_full(event["project_id"], len(targets), chain.queued)
        if "context" not in event and event.get("asset_id"):
            # Recorded with what the plugin saw, so an export of it dry-runs the same way.
            event = {**event, "context": self.platform.context(db, event)}
        root_id = event["id"] if chain is None else chain.root_id
        cursor = db.execute(
            "INSERT INTO events (id, type, project_id, asset_id, body, source, cause_run, cause_plugin, depth, received_at,"
            " root_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event["id"], event["type"], event["project_id"], event.get("asset_id"), dumps(event), source,
             cause_run, cause_plugin, depth, now(), root_id))
        seq = cursor.lastrowid
        runs = []
        for target in targets:
            run_id = f"run-{uuid.uuid4().hex[:16]}"
            db.execute(
                "INSERT INTO runs (id, event_id, event_seq, plugin, version, project_id, asset_id, status, created_at,"
                " root_id, outcome, error, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, event["id"], seq, target["plugin"], target["version"], event["project_id"],
                 event.get("asset_id"), RunStatus.SKIPPED if skipped else RunStatus.PENDING, now(), root_id,
                 RunOutcome.QUEUE_FULL if skipped else None, skipped, now() if skipped else None))
            if skipped:
                logs.run_ended(run_id, event["id"], target["plugin"], target["version"], event["project_id"],
                               RunStatus.SKIPPED, RunOutcome.QUEUE_FULL, None)
            else:
                runs.append(((target["plugin"], target["version"], event["project_id"]), run_id))
        if chain is not None:
            chain.recorded(db, len(targets), skipped)
        return runs

    def _queue_full(self, project_id: str, planned: int, queued: int) -> str | None:
        """Caused events count against the queues as webhooks do (which get 429 instead);
        ``queued``: runs this chain queued, not yet counted as pending."""
        return (queue_full(self.pending(project_id) + queued, planned, self.max_queue_per_project,
                           f"project {project_id!r}", "PLUGIN_RUNTIME_MAX_QUEUE_PER_PROJECT")
                or queue_full(self.pending() + queued, planned, self.max_queue, "the runtime", "PLUGIN_RUNTIME_MAX_QUEUE"))

    # Lanes -------------------------------------------------------------------------------

    def _enqueue(self, runs: list[tuple[Lane, str]]) -> None:
        with self._lock:
            for lane, run_id in runs:
                self._pending.setdefault(lane[2], set()).add(run_id)
                self._queues.setdefault(lane, deque()).append(run_id)
                if lane not in self._busy and not self._stopping:
                    self._busy.add(lane)
                    self._pool.submit(self._drain, lane)

    def resume(self) -> None:
        """Queue every pending run (after a restart, or when a build finished)."""
        rows = self.store.read().execute(
            f"SELECT id, plugin, version, project_id FROM runs WHERE status IN {placeholders(QUEUED)} ORDER BY event_seq",
            QUEUED).fetchall()
        with self._lock:
            queued = {run for queue in self._queues.values() for run in queue}
        self._enqueue([((r["plugin"], r["version"], r["project_id"]), r["id"]) for r in rows if r["id"] not in queued])

    def _drain(self, lane: Lane) -> None:
        yielded = False
        try:
            for _ in range(LANE_SLICE):
                with self._lock:
                    queue = self._queues.get(lane)
                    if not queue or self._stopping:
                        return
                    run_id = queue[0]
                try:
                    waiting = self._execute(run_id)
                except Exception:
                    # _execute dead-letters its failures; this is the database itself failing:
                    # the run stays as it is for resume(), the lane goes on with the next ones.
                    _log.exception("run %s could not be executed", run_id)
                    waiting = False
                with self._lock:
                    if waiting:
                        # The version is still building: leave the lane; on_ready resumes it.
                        self._queues.pop(lane, None)
                        return
                    queue.popleft()
                    self._pending.get(lane[2], set()).discard(run_id)
            # A busy lane yields its thread after a slice, so one noisy project cannot starve the
            # others: it goes back to the end of the pool's queue, still marked busy.
            with self._lock:
                if self._stopping:
                    return
            self._pool.submit(self._drain, lane)
            yielded = True
        finally:
            # Whatever happened above, a lane not handed on is released: never busy forever.
            if not yielded:
                with self._lock:
                    self._busy.discard(lane)
                    self._idle.notify_all()

    def _execute(self, run_id: str) -> bool:
        """Run one run to its end. True when it must wait for its version's build."""
        db = self.store.read()
        run = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None or run["status"] in ENDED:
            return False
        version = db.execute("SELECT status, build_error FROM plugin_versions WHERE plugin = ? AND version = ?",
                             (run["plugin"], run["version"])).fetchone()
        if version is None or version["status"] == VersionStatus.FAILED:
            reason = "the plugin was deleted" if version is None else f"the build failed: {version['build_error']}"
            self._finish(run_id, RunResult(event_id=run["event_id"], status=Status.ERROR, error=reason), None,
                         RunOutcome.BUILD_FAILED)
            return False
        if version["status"] == VersionStatus.DEPLOYING:
            return True
        event = loads(db.execute("SELECT body FROM events WHERE id = ?", (run["event_id"],)).fetchone()[0])
        with self.store.write() as wdb:
            wdb.execute("UPDATE runs SET status = ?, attempts = attempts + 1, started_at = ? WHERE id = ?",
                        (RunStatus.RUNNING, now(), run_id))
        try:
            result = self._run(run["plugin"], run["version"], event)
            self._finish(run_id, result, event, None)
        except Exception as error:
            # Infrastructure (Docker down, container not created), or anything unexpected while
            # running or recording the run: retried with backoff, then dead; never left running.
            if isinstance(error, PluginRuntimeError):
                reason = str(error)
            else:
                _log.exception("run %s failed unexpectedly", run_id)
                reason = f"the runtime failed on this run ({type(error).__name__}: {error})"
            return self._retry_later(run_id, run, reason.encode("utf-8", "replace").decode("utf-8"))
        return False

    def _retry_later(self, run_id: str, run: Any, reason: str) -> bool:
        attempts = run["attempts"] + 1
        if attempts >= self.max_attempts:
            _log.error("run %s dead letter after %d attempt(s) (runs retry redelivers it): %s", run_id, attempts, reason)
            dead = RunResult(event_id=run["event_id"], status=Status.ERROR, error=reason)
            try:
                self._finish(run_id, dead, None, RunOutcome.INFRASTRUCTURE, dead=True)
            except Exception:  # not even the dead letter's logs could be written: mark it alone
                _log.exception("run %s could not be dead-lettered with its logs", run_id)
                with self.store.write() as wdb:
                    wdb.execute("UPDATE runs SET status = ?, outcome = ?, error = ?, finished_at = ? WHERE id = ?",
                                (RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, reason, now(), run_id))
                logs.run_ended(run_id, run["event_id"], run["plugin"], run["version"], run["project_id"],
                               RunStatus.DEAD, RunOutcome.INFRASTRUCTURE, None, attempts)
            return False
        with self.store.write() as wdb:
            wdb.execute("UPDATE runs SET status = ?, error = ? WHERE id = ?", (RunStatus.PENDING, reason, run_id))
        delay = min(30.0, self.retry_base_s * 2 ** attempts)
        _log.warning("run %s attempt %d of %d failed, retrying in %.1f s: %s", run_id, attempts, self.max_attempts,
                     delay, reason)
        time.sleep(delay)
        return False if self._stopping else self._execute(run_id)

    def _finish(self, run_id: str, result: RunResult, event: dict[str, Any] | None, outcome: RunOutcome | None,
                dead: bool = False) -> None:
        emitted_runs: list[tuple[Lane, str]] = []
        metrics = {"reads": (result.model_extra or {}).get("reads")}
        with self._admit, self.store.write() as db:
            run = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if run["status"] in ENDED:
                return  # already finished: never apply twice
            db.execute("DELETE FROM run_logs WHERE run_id = ?", (run_id,))
            lines = [(log.level, log.message, log.source) for log in result.logs]
            if not result.ok and result.error:
                # The failure reads in the plugin's logs too, where an admin looks first.
                lines.append(("ERROR", f"{result.status}: {result.error}", "runtime"))
            db.executemany("INSERT INTO run_logs (run_id, seq, level, message, source) VALUES (?, ?, ?, ?, ?)",
                           [(run_id, i, *line) for i, line in enumerate(lines)])
            db.execute("DELETE FROM run_actions WHERE run_id = ?", (run_id,))
            if result.ok and event is not None:
                from plugin_sdk.actions import dump_actions

                checks = self.platform.check(db, event, dump_actions(result.actions))
                db.executemany(
                    "INSERT INTO run_actions (run_id, seq, action, status, reason) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, i, dumps(c.action), ActionStatus.REJECTED if c.reason else ActionStatus.APPLIED, c.reason)
                     for i, c in enumerate(checks)])
                at = event.get("occurred_at") or (event.get("label") or {}).get("createdAt")
                emitted = self.platform.apply(db, run_id, [c.action for c in checks if c.reason is None], at=at)
                if emitted:
                    chain = Chain.of_run(db, run, self.budget)
                    for number, caused in enumerate(emitted):
                        caused = {**caused, "id": f"{run_id}-e{number}", "cause": {"run_id": run_id, "plugin": run["plugin"]}}
                        emitted_runs += self._record(db, caused, "platform", run_id, run["plugin"], chain.depth + 1, chain)
                    metrics["caused"] = chain.report.metrics()
                    db.executemany("INSERT INTO run_logs (run_id, seq, level, message, source) VALUES (?, ?, ?, ?, ?)",
                                   [(run_id, len(lines) + i, *line)
                                    for i, line in enumerate(chain.report.log_lines(chain.root_id))])
                status = RunStatus.SUCCEEDED
            else:
                status = RunStatus.DEAD if dead else RunStatus.FAILED
            outcome = outcome or RunOutcome.of(result.status)
            db.execute(
                "UPDATE runs SET status = ?, outcome = ?, error = ?, duration_ms = ?, finished_at = ?, metrics = ? WHERE id = ?",
                (status, outcome, result.error, result.duration_ms, now(),
                 dumps({key: value for key, value in metrics.items() if value}), run_id))
        logs.run_ended(run_id, run["event_id"], run["plugin"], run["version"], run["project_id"], status, outcome,
                       result.duration_ms, run["attempts"])
        self._enqueue(emitted_runs)
        for callback in self.on_applied:
            callback(run_id)

    def retry(self, run_id: str, live_version: bool = False) -> dict[str, Any]:
        """Run a failed, dead or skipped run again: a new attempt of the same run, or with
        ``live_version`` a run of the same event by the plugin's live version (after a fix)."""
        with self.store.write() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            if row["status"] not in RETRYABLE:
                raise ValueError(f"run {run_id} is {row['status']}: only failed, dead or skipped runs are retried")
            plugin = db.execute("SELECT current_version FROM plugins WHERE name = ?", (row["plugin"],)).fetchone()
            if plugin is None:
                raise ValueError(f"plugin {row['plugin']!r} was deleted: its runs cannot be retried")
            version = plugin["current_version"] if live_version and plugin["current_version"] else row["version"]
            if version == row["version"]:
                db.execute("UPDATE runs SET status = ?, outcome = NULL, error = NULL WHERE id = ?",
                           (RunStatus.PENDING, run_id))
                target = run_id
            else:
                existing = db.execute("SELECT id, status FROM runs WHERE event_id = ? AND plugin = ? AND version = ?",
                                      (row["event_id"], row["plugin"], version)).fetchone()
                if existing is not None and existing["status"] not in RETRYABLE:
                    raise ValueError(f"event {row['event_id']} already has run {existing['id']} ({existing['status']}) "
                                     f"for version {version}")
                if existing is not None:
                    target = existing["id"]
                    db.execute("UPDATE runs SET status = ?, outcome = NULL, error = NULL WHERE id = ?",
                               (RunStatus.PENDING, target))
                else:
                    target = f"run-{uuid.uuid4().hex[:16]}"
                    db.execute(
                        "INSERT INTO runs (id, event_id, event_seq, plugin, version, project_id, asset_id, status, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (target, row["event_id"], row["event_seq"], row["plugin"], version, row["project_id"],
                         row["asset_id"], RunStatus.PENDING, now()))
        _log.info("run %s queued again (runs retry): event=%s plugin=%s@%s project=%s", target, row["event_id"],
                  row["plugin"], version, row["project_id"])
        self._enqueue([((row["plugin"], version, row["project_id"]), target)])
        return {"id": target, "status": RunStatus.PENDING, "version": version}

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running (all, or one project's)."""
        with self._lock:
            if project_id is not None:
                return len(self._pending.get(project_id, ()))
            return sum(len(runs) for runs in self._pending.values())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no lane has work (tests, the demo, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        self._pool.shutdown(wait=True, cancel_futures=True)
