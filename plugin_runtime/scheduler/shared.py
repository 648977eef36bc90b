"""The run queue shared by every process of a runtime on PostgreSQL, run by procrastinate.

Runs stay in the store's ``runs`` table, the truth as on SQLite. What procrastinate adds is
who runs what, across processes and machines: a run entering the queue (stored by an
intake, requeued by ``runs retry``) makes sure, in the same transaction, that its lane
(plugin, version, project) has a procrastinate job waiting to start (a trigger of the schema,
``store/postgres_schema.py``, migration 11), locked by the lane, so one job of a lane runs at
a time. A job drains its lane from its head (``take``), in the order in which events were
stored, since one transaction writes at a time; a failed attempt, a run waiting for its
version's build or for its retry time keeps its job (retried at that time) so no later run
overtakes.

procrastinate holds the claims: a worker sends a heartbeat every ``HEARTBEAT_S``; a job whose
worker missed them for ``LEASE_S`` is handed back to the queue by any worker's reaper, and
its run is taken again by whoever fetches it: the same run, one attempt more.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from plugin_runtime.scheduler.lanes import Execute
from plugin_runtime.scheduler.queue import Lane, StoreRunQueue, Taken, default_worker
from plugin_runtime.statuses import QUEUED, VersionStatus
from plugin_runtime.store.codec import Db
from plugin_runtime.store.postgres import QUEUE, TASK, PostgresStore

__all__ = ["QUEUE", "TASK", "SharedRunQueue", "SharedScheduler", "default_name"]

#: A worker's claim on a job is released when its heartbeat is this old (the issue: <= 30 s).
LEASE_S = 20.0
HEARTBEAT_S = 5.0
#: How often each process looks for jobs of workers whose lease expired.
REAP_EVERY_S = 5.0
#: How often a job whose version is still building looks again.
BUILD_POLL_S = 1.0


def default_name() -> str:
    """A worker's name when none is given: ``HOST:PID``."""
    return default_worker()


class SharedRunQueue(StoreRunQueue):
    """The runs table as on SQLite; a claim names the worker (``worker``, its ``--name``).
    A lane's head is taken outside the writers' lock: its job's procrastinate lock already
    keeps every other process off the lane. ``batch``: runs a take claims at most, run
    together when the dispatcher has ``run_many``; one by default, since the runs of a batch
    are recorded together after all of them ran, so a run's reads would not see the effects
    of the batch's runs before it (a plugin reading what it wrote last time, test_scale_out)."""

    def __init__(self, store: PostgresStore, worker: str, batch: int = 1) -> None:
        super().__init__(store, worker, batch)
        self.shared_store = store

    def take(self, lane: Lane, db: Db | None = None) -> Taken | None:
        if db is not None:  # a finishing run's transaction takes its successor
            return super().take(lane, db)
        with self.shared_store.claiming() as claiming:
            return super().take(lane, claiming)

    def others_waiting(self, lane: Lane) -> bool:
        """Whether another lane's job could start now but no worker took it (all are busy)."""
        plugin, version, project_id = lane
        return bool(self.store.read().execute(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queue_name = ? AND j.status = 'todo'"
            " AND j.lock <> ? AND (j.scheduled_at IS NULL OR j.scheduled_at <= now()) AND NOT EXISTS"
            " (SELECT 1 FROM procrastinate_jobs d WHERE d.lock = j.lock AND d.status = 'doing'))",
            (QUEUE, f"lane:{plugin}:{version}:{project_id}")).fetchone()[0])

    def wake(self, lane: Lane) -> None:
        """Make sure the lane has a job waiting to start (one that stopped with runs left)."""
        with self.shared_store.claiming() as claiming:
            claiming.execute("SELECT plugin_runtime_wake_lane(?, ?, ?)", lane)


class SharedScheduler:
    """What the dispatcher and the intake ask of a scheduler, on the shared queue. Nothing is
    woken from here: the jobs are made with the runs, and PostgreSQL notifies the workers
    (``scheduler/workers.py``), in this process or in any other."""

    def __init__(self, queue: SharedRunQueue, execute: Execute) -> None:
        self.queue, self.execute = queue, execute

    def notify(self, lanes: Iterable[Lane]) -> None:
        """Jobs are made by the transaction that queued the runs."""

    def resume(self) -> None:
        """Every queued run has its job in the database already."""

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running in the shared queue (all processes'), all or one project's."""
        return self.queue.pending(project_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until no run is queued but those waiting for their version's build (tests, the demo)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.runnable() > 0:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def runnable(self) -> int:
        statuses = ", ".join(f"'{status}'" for status in QUEUED)
        return self.queue.store.read().execute(
            f"SELECT COUNT(*) FROM runs r JOIN plugin_versions v ON v.plugin = r.plugin AND v.version = r.version"
            f" WHERE r.status IN ({statuses}) AND v.status != ?", (VersionStatus.DEPLOYING,)).fetchone()[0]

    def close(self) -> None:
        """The workers are stopped by their owner."""
