"""Shadows: a candidate version of a plugin run beside its live version on every event of one
project, its actions computed and stored, never applied.

The live path does nothing for a shadow: the shadow lane reads the project's events from the
event log, after the last one it looked at (``planned_seq``), and plans a shadow run for each
event the candidate or the live version has a hook for, in batches, in transactions of its own.
Shadow runs wait outside the run queue (``store/shadows.py``: no backpressure, budget or retry
counts them) and are run by one thread only while no live lane has work and no event came in
for a moment, in sandboxes of their own (never a live run's warm worker); past ``MAX_BACKLOG``
waiting, a candidate that fell behind skips events rather than hold anything up. Their results
go to the shadow's records and nowhere else: this module holds no platform, so a shadow run can
neither apply an action nor cause an event. ``promote`` makes the candidate live and ends its
shadows; ``shadow_report`` compares the two sides with the diff's ``compare``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from plugin_runtime.errors import PluginRuntimeError, RegistryConflict, RegistryNotFound
from plugin_runtime.intake import plan
from plugin_runtime.intake.intake import RunIds
from plugin_runtime.reads import ReadMeter
from plugin_runtime.shadow_report import differs
from plugin_runtime.statuses import BUILT, RunOutcome, RunStatus, VersionStatus
from plugin_runtime.store import Store, loads
from plugin_runtime.store.codec import Db, later, now
from plugin_sdk.actions import dump_actions
from plugin_sdk.results import RunResult, Status

__all__ = ["MAX_BACKLOG", "Shadows"]

_log = logging.getLogger(__name__)
#: Events one shadow may have waiting; past it, the candidate fell behind the live traffic and
#: the oldest are recorded as not run for it (the live runs never wait for it).
MAX_BACKLOG = 10_000
#: How often the lane looks at the event log for new events of its shadows' projects.
POLL_S = 0.25
#: Events of a project planned in one transaction, and shadow runs planned ahead of the lane.
PLAN_BATCH = 50
#: Blocks until no live lane has work, up to a timeout; False when it still has.
LiveIdle = Callable[[float], bool]
#: How long no event may have been stored before the lane runs a shadow run: on a machine of
#: few cores the live path's own work (HTTP, storing, planning) needs the CPU between live
#: runs too. Under steady traffic a candidate waits for the gaps.
QUIET_S = 0.05
#: How often the lane stops its candidates' idle workers.
EVICT_S = 30.0
#: A shadow run running longer than any run may last (the limits' ceiling) was left by a process
#: that stopped: on a store other processes share, it is taken back after this long.
STALE_S = 3600.0 + 60.0


class Sandboxes(Protocol):
    """The shadows' own sandboxes (a ``SandboxManager`` of their own)."""

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult: ...

    def evict_idle(self) -> None: ...

    def close(self) -> None: ...


class Shadows:
    def __init__(self, store: Store, sandboxes: Sandboxes, reads: ReadMeter, live_idle: LiveIdle,
                 shared_store: bool = False, max_backlog: int = MAX_BACKLOG) -> None:
        """``live_idle``: the live scheduler's ``wait_idle``; ``reads``: the live runs' meter
        (a shadow run's reads get the same budget); ``shared_store``: other processes' lanes
        may be running shadow runs of this store."""
        self.store, self.sandboxes, self._live_idle = store, sandboxes, live_idle
        self.shared_store = shared_store
        self._run = reads.metered(sandboxes.run)
        self.max_backlog = max_backlog
        self.run_ids = RunIds()
        self._seen_seq, self._seen_at = -1, 0.0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # Planning (the lane's own transactions, in the live side's quiet moments) ----------------

    def plan_some(self) -> bool:
        """Plan the shadow runs of the next events (up to PLAN_BATCH) a running shadow has not
        looked at, when fewer than that wait already; False when no shadow had any to plan.
        Small transactions: each holds the store's writer a few milliseconds at most."""
        for candidate in self.store.shadows.running(self.store.read()):
            if self.store.shadows.queued(self.store.read(), candidate["id"]) >= PLAN_BATCH:
                continue  # enough planned ahead: what is not planned yet is counted as waiting
            with self.store.write() as db:
                shadow = self.store.shadows.get(db, candidate["id"])
                events = self.store.shadows.events_after(db, shadow, PLAN_BATCH) if shadow["ended_at"] is None else []
                if events:
                    self._plan(db, shadow, events)
                    return True
        return False

    def _plan(self, db: Db, shadow: Any, events: list[Any]) -> None:
        target = {"plugin": shadow["plugin"], "version": shadow["version"],
                  "subscriptions": loads(shadow["subscriptions"], [])}
        # Too far behind: the oldest events are not run, so the candidate works on recent traffic.
        behind = self.store.shadows.unplanned(db, shadow["project_id"], shadow["planned_seq"]) - self.max_backlog
        for number, event in enumerate(events):
            if event["live_version"] == shadow["version"] or event["live_status"] == RunStatus.SKIPPED:
                continue  # the candidate was live then (rolled back to), or the live run never ran
            # Where only the live version has a hook, the candidate's run says it has none (its
            # sandbox answers that without running anything): what the live one did differs.
            runs = plan([target], event["type"], event["cause_plugin"], event["depth"])
            if not runs and event["live_version"] is None:
                continue
            ended = None
            if number < behind:
                reason = f"the candidate fell behind the live traffic (over {self.max_backlog} events): not run"
                ended = (RunStatus.SKIPPED, RunOutcome.QUEUE_FULL, reason, False)
            self.store.shadows.add_run(db, self.run_ids.new(), shadow["id"], event["id"], event["seq"], now(), ended)
        self.store.shadows.planned(db, shadow["id"], events[-1]["seq"])

    # Starting, ending, promoting -----------------------------------------------------------

    def start(self, plugin: str, version: int, project_id: str) -> dict[str, Any]:
        """Shadow ``version`` of ``plugin`` on ``project_id`` from the next event on (idempotent;
        a shadow of another version there is ended, replaced)."""
        plugins = self.store.plugins
        with self.store.write() as db:
            row = self._candidate(db, plugin, version)
            if plugins.get(db, plugin)["current_version"] == version:
                raise RegistryConflict(f"{plugin} v{version} is the live version: shadow a newer one (plugins update "
                                       f"PATH --name {plugin} --candidate uploads one without making it live)")
            for running in self.store.shadows.running(db, plugin, project_id):
                if running["version"] == version:
                    return self._summary(running)
                self.store.shadows.end(db, running["id"], f"replaced by v{version}", now())
            subscriptions = loads(row["subscriptions"], [])
            shadow_id = self.store.shadows.start(db, plugin, version, project_id, subscriptions, now())
            started = self.store.shadows.latest(db, plugin, project_id)[0]
        _log.info("shadow: %s@%s started on project %s (shadow %s)", plugin, version, project_id, shadow_id)
        return self._summary(started)

    def _candidate(self, db: Db, plugin: str, version: int) -> Any:
        if self.store.plugins.get(db, plugin) is None:
            raise RegistryNotFound(f"plugin {plugin!r} does not exist")
        row = self.store.plugins.version(db, plugin, version)
        if row is None:
            raise RegistryNotFound(f"plugin {plugin!r} has no version {version}")
        if row["status"] == VersionStatus.DEPLOYING:
            raise RegistryConflict(f"{plugin} v{version} is still building: wait for it (plugins status {plugin})")
        if row["status"] not in BUILT:
            raise RegistryConflict(f"{plugin} v{version} failed to build: {row['build_error']}")
        return row

    def stop(self, plugin: str, project_id: str | None = None, reason: str = "stopped") -> list[dict[str, Any]]:
        """End the plugin's shadows (on one project, or all); returns those ended."""
        with self.store.write() as db:
            if self.store.plugins.get(db, plugin) is None:
                raise RegistryNotFound(f"plugin {plugin!r} does not exist")
            ended = self._end_all(db, plugin, project_id, reason)
        return ended

    def _end_all(self, db: Db, plugin: str, project_id: str | None, reason: str) -> list[dict[str, Any]]:
        running = self.store.shadows.running(db, plugin, project_id)
        for row in running:
            self.store.shadows.end(db, row["id"], reason, now())
            _log.info("shadow: %s@%s on project %s ended: %s", plugin, row["version"], row["project_id"], reason)
        return [self._summary(row, ended=reason) for row in running]

    def promote(self, plugin: str, version: int) -> list[dict[str, Any]]:
        """Make ``version`` live and end the plugin's shadows, in one transaction; returns
        the shadows ended."""
        with self.store.write() as db:
            self._candidate(db, plugin, version)
            self.store.plugins.make_live(db, plugin, version)
            ended = self._end_all(db, plugin, None, f"v{version} promoted to live")
        _log.info("deploy: %s v%s promoted to live", plugin, version)
        return ended

    def forget(self, plugin: str, images: list[str] | None = None) -> None:
        """A deleted plugin: its shadows end (the registry's ``on_deleted``)."""
        with self.store.write() as db:
            self._end_all(db, plugin, None, "the plugin was deleted")

    @staticmethod
    def _summary(row: Any, ended: str | None = None) -> dict[str, Any]:
        return {"id": row["id"], "plugin": row["plugin"], "version": row["version"], "project_id": row["project_id"],
                "started_at": row["started_at"], "ended_at": row["ended_at"] if ended is None else now(),
                "end_reason": row["end_reason"] if ended is None else ended}

    # The lane ----------------------------------------------------------------------------

    def start_lane(self) -> None:
        """Start the lane, after taking back the shadow runs a stopped process left running:
        all of them when this process is the store's only one; else those older than any run
        may last (another process's lane may be running the others)."""
        with self.store.write() as db:
            self.store.shadows.requeue_running(db, later(-STALE_S) if self.shared_store else None)
        self._thread = threading.Thread(target=self._loop, name="shadow", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        evicted = time.monotonic()
        while not self._stopping:
            self._wake.wait(POLL_S)
            self._wake.clear()
            if time.monotonic() - evicted > EVICT_S:
                evicted = time.monotonic()
                self._housekeeping()
            try:
                # Below every live run: planning a few events, or one shadow run, at a time, only
                # while no live lane has work and no event came in for a moment.
                while not self._stopping and self._quiet():
                    if self.plan_some():
                        continue
                    run = self._next()
                    if run is None:
                        break
                    self.execute(run)
            except Exception:  # the store failed: look again at the next poll
                _log.exception("the shadow lane could not plan or take its next run")

    def _next(self) -> Any:
        """The queued shadow run of the oldest event, among the running shadows' heads."""
        db = self.store.read()
        heads = [self.store.shadows.next_queued(db, shadow["id"]) for shadow in self.store.shadows.running(db)]
        return min((head for head in heads if head is not None), key=lambda head: head["event_seq"], default=None)

    def _quiet(self) -> bool:
        """Whether the live side is idle: no event stored for QUIET_S and no live lane with work
        (waited for up to POLL_S); sleeps out the quiet period first when it has not passed."""
        seq = self.store.shadows.last_event_seq(self.store.read())
        if seq != self._seen_seq:
            self._seen_seq, self._seen_at = seq, time.monotonic()
        calm = time.monotonic() - self._seen_at
        if calm < QUIET_S:
            time.sleep(QUIET_S - calm)
            return False
        return self._live_idle(POLL_S)

    def _housekeeping(self) -> None:
        """Idle candidate workers stopped; on a shared store, what a stopped process left running."""
        self.sandboxes.evict_idle()
        if self.shared_store:
            try:
                with self.store.write() as db:
                    self.store.shadows.requeue_running(db, later(-STALE_S))
            except Exception:  # the store failed: the next round tries again
                _log.exception("the shadow lane could not take back stale shadow runs")

    def execute(self, run: Any) -> None:
        """Run one queued shadow run and record its result beside it, never anywhere else."""
        with self.store.write() as db:
            if not self.store.shadows.claim(db, run["id"], now()):
                return
            state = self.store.plugins.version_state(db, run["plugin"], run["version"])
        outcome: RunOutcome | None = None
        if state is None:
            result = RunResult(event_id=run["event_id"], status=Status.ERROR, error="the plugin was deleted")
            outcome = RunOutcome.BUILD_FAILED
        else:
            event = self.store.events.body(self.store.read(), run["event_id"])
            try:
                result = self._run(run["plugin"], run["version"], event)
            except Exception as error:  # the sandbox, not the candidate: said as such, not retried
                if not isinstance(error, PluginRuntimeError):
                    _log.exception("shadow run %s failed unexpectedly", run["id"])
                result = RunResult(event_id=run["event_id"], status=Status.ERROR, error=f"the runtime failed on this "
                                   f"shadow run ({type(error).__name__}: {error})")
                outcome = RunOutcome.INFRASTRUCTURE
        self._record(run, result, outcome or RunOutcome.of(result.status))

    def _record(self, run: Any, result: RunResult, outcome: RunOutcome | None) -> None:
        actions = dump_actions(result.actions) if result.ok else []
        lines = [(log.level, log.message, log.source) for log in result.logs]
        if not result.ok and result.error:
            lines.append(("ERROR", f"{result.status}: {result.error}", "runtime"))
        with self.store.write() as db:
            self.store.shadows.finish(db, run["id"], RunStatus.SUCCEEDED if result.ok else RunStatus.FAILED, outcome,
                                      result.error, actions, result.skipped, result.duration_ms, now())
            self.store.run_records.replace_logs(db, run["id"], lines)
            verdict = differs(self.store, db, run, result.status if result.ok else str(outcome), actions)
            if verdict is not None:
                self.store.shadows.set_differs(db, run["id"], verdict)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30)
        self.sandboxes.close()
