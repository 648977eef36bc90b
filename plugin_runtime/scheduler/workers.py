"""procrastinate workers in this process, running lane jobs of the shared queue (``shared``).

A job drains its lane: it runs the lane's runs in order through the dispatcher (``execute``:
sandbox, then the applier's transaction, which also claims the lane's next run), and
completes when the lane is empty. The lane stays on the worker, whose sandbox for it is warm,
unless another lane's job waits for a worker after ``SLICE_S``: then the lane gets a new job,
behind the waiting ones, so a busy project does not keep a worker from the others (nor from
their sandboxes: every switch may start one cold). A lane whose head cannot run yet asks
for the job to be tried again (``LaterError``): at the run's next attempt time after a failed
attempt, in ``BUILD_POLL_S`` while its version is building. Anything else going wrong
(PostgreSQL away in the middle) retries it in a second: a job is never dropped while its
lane has runs. Its writes, and procrastinate's own, commit without waiting for the disk
(``PostgresStore.lane_job`` says why that is safe), and lock only its project.

The worker runs in a thread with an event loop of its own. When it stops on an error (its
database connections lost: PostgreSQL restarted), it starts again after a backoff: no process
exits because PostgreSQL went away. Each process also hands back the jobs of workers whose
lease expired (``reap``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import procrastinate
from procrastinate import retry as procrastinate_retry

from plugin_runtime.scheduler.lanes import Step
from plugin_runtime.scheduler.queue import Head
from plugin_runtime.scheduler.shared import (
    BUILD_POLL_S,
    HEARTBEAT_S,
    LEASE_S,
    QUEUE,
    REAP_EVERY_S,
    TASK,
    SharedScheduler,
)

_log = logging.getLogger(__name__)
#: Seconds before a job whose run could not be taken (the database away) is tried again.
ERROR_RETRY_S = 1.0
#: The longest wait before a stopped worker starts again.
MAX_BACKOFF_S = 5.0
#: How long a job runs its lane before it looks whether another lane waits for a worker.
SLICE_S = 2.0


class LaterError(Exception):
    """The job's run is still queued: try the job again in ``delay_s``."""

    def __init__(self, delay_s: float, why: str) -> None:
        super().__init__(why)
        self.delay_s = delay_s


class _Again(procrastinate_retry.BaseRetryStrategy):
    """Every failed job is tried again (its run is in the queue until it ends)."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> procrastinate_retry.RetryDecision:
        delay = exception.delay_s if isinstance(exception, LaterError) else ERROR_RETRY_S
        return procrastinate_retry.RetryDecision(retry_in={"milliseconds": max(0, int(delay * 1000))})


class Workers:
    """``concurrency`` lane jobs at a time, as worker ``name``, with ``scheduler``'s execute."""

    def __init__(self, database_url: str, scheduler: SharedScheduler, name: str, concurrency: int) -> None:
        self.scheduler, self.name, self.concurrency = scheduler, name, concurrency
        # Losing a job's fetch or end in a crash of PostgreSQL hands the job back (the lease),
        # and it runs whatever its lane then holds: no reason to wait for the disk.
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=database_url, kwargs={"options": "-c synchronous_commit=off"}))
        self.app.task(name=TASK, queue=QUEUE, retry=_Again())(self.run_lane)
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._forever, name=f"worker {name}", daemon=True)

    # A job --------------------------------------------------------------------------------

    def run_lane(self, plugin: str, version: int, project_id: str) -> None:
        """Run the lane's runs in order until it is empty, or until another lane waits after a
        slice (then the lane gets a new job); complete once no run it claimed is left running."""
        lane = (plugin, version, project_id)
        queue = self.scheduler.queue
        slice_ends = time.monotonic() + SLICE_S
        with queue.shared_store.lane_job(project_id):
            taken = queue.take(lane)
            while taken is not None:
                if taken.head is Head.LATER:
                    raise LaterError(taken.wait_s, f"run {taken.run['id']} waits for its next attempt")
                last = self._stopping.is_set()
                if not last and time.monotonic() > slice_ends:
                    last = queue.others_waiting(lane)
                    slice_ends = time.monotonic() + SLICE_S
                # The slice's last run claims none after it: a claimed run must be run.
                step, following = self.scheduler.execute(taken, not last)
                if step is Step.WAIT:
                    raise LaterError(BUILD_POLL_S, f"run {taken.run['id']}'s version is still building")
                if step is Step.IDLE:
                    return  # the transaction that ended the run found the lane empty
                if last:
                    queue.wake(lane)  # runs may be left: a new job, behind the waiting ones
                    return
                # None: the end's transaction did not look (a failed attempt), so look here.
                taken = following if following is not None else queue.take(lane)

    # The worker's life --------------------------------------------------------------------

    def start(self) -> Workers:
        self._thread.start()
        return self

    def _forever(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                asyncio.run(self._serve())
                backoff = 0.2
            except asyncio.CancelledError:  # stop(): the running jobs ended first
                return
            except Exception as error:  # the database went away under the worker: start again
                _log.warning("worker %s stopped (%s: %s); starting again in %.1f s", self.name,
                             type(error).__name__, error, backoff)
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Sync jobs run on the loop's default executor: one thread per job at a time.
        self._loop.set_default_executor(ThreadPoolExecutor(self.concurrency + 1, thread_name_prefix="job"))
        async with self.app.open_async():
            self._main = asyncio.current_task()
            if self._stopping.is_set():
                return
            reaper = asyncio.create_task(self._reap())
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE], name=self.name, concurrency=self.concurrency, install_signal_handlers=False,
                    update_heartbeat_interval=HEARTBEAT_S, stalled_worker_timeout=LEASE_S,
                    fetch_job_polling_interval=1.0, delete_jobs="successful")
            finally:
                reaper.cancel()
        if not self._stopping.is_set():
            raise RuntimeError("the worker stopped on its own (a side task failed)")

    async def _reap(self) -> None:
        """Hand back to the queue the jobs of workers silent for ``LEASE_S`` (killed, cut off)."""
        manager = self.app.job_manager
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            try:
                for job in await manager.get_stalled_jobs(seconds_since_heartbeat=LEASE_S):
                    _log.warning("job %s (%s) of a silent worker is handed back to the queue", job.id,
                                 job.task_kwargs)
                    await manager.retry_job(job)
                await manager.prune_stalled_workers(LEASE_S)
            except Exception as error:  # the database away: the worker restarts around us
                _log.warning("reaper: %s: %s", type(error).__name__, error)

    def stop(self, timeout: float = 60) -> None:
        """Stop fetching jobs, let those running end, then return."""
        self._stopping.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(main.cancel)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)
