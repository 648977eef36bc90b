"""Workers over the durable run queue: lanes in parallel, each lane's runs in event order.

The queue (the store) is the truth; what this module keeps in memory is only which lanes a
worker is on and which wait for a retry's time, so a lost wake-up costs at most a delay,
never a run. A lane is drained by one worker at a time, in slices, so one busy project cannot
starve the others; a run whose attempt failed waits at its stored ``next_attempt_at`` on a
timer, never in a worker; whatever a run does, its lane is released.

Slots go to plugins fairly: a free slot takes the waiting lane of the plugin holding the fewest,
and a plugin holding none while another holds several (a hook sleeping on many projects) gets
one of up to ``concurrency - 1`` extra slots at once rather than wait for those runs' timeouts.

Within a slice, the transaction that records a run's end also takes (claims) the lane's next
run, so a busy lane costs one write transaction per run.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum

from plugin_runtime.scheduler.queue import Head, Lane, RunQueue, Taken

#: Runs a lane executes before it lets other lanes have its thread.
LANE_SLICE = 32
#: How long a lane waits before looking again when the queue itself failed.
QUEUE_RETRY_S = 1.0
_log = logging.getLogger(__name__)


class Step(Enum):
    """What became of a lane's head run."""

    DONE = "done"  # ended, or rescheduled at a later next_attempt_at: look at the head again
    WAIT = "wait"  # cannot run yet (its version is building): leave the lane until notified
    IDLE = "idle"  # ended, and the transaction recording it found the lane empty: leave it


#: Runs a lane's head as taken (claimed, or not runnable) to its end, a new attempt, or
#: WAIT; when the second argument is True it may take the lane's next head in the
#: transaction recording this run's end, and returns it.
Execute = Callable[[Taken, bool], tuple[Step, Taken | None]]


class Scheduler:
    def __init__(self, queue: RunQueue, execute: Execute, concurrency: int = 4) -> None:
        self.queue, self._execute = queue, execute
        self._concurrency = concurrency
        # Threads for the slots and the extra slots (``_pick``); the lanes they run are chosen here.
        self._pool = ThreadPoolExecutor(max_workers=max(1, 2 * concurrency - 1), thread_name_prefix="lane")
        # Lanes waiting for a slot (they are in _busy), and the slots each plugin holds.
        self._ready: deque[Lane] = deque()
        self._held: Counter[str] = Counter()
        self._running = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy: set[Lane] = set()
        # Notified while a worker was on them: looked at again before they are released.
        self._dirty: set[Lane] = set()
        self._timers: dict[Lane, threading.Timer] = {}
        self._stopping = False

    def notify(self, lanes: Iterable[Lane]) -> None:
        """These lanes have new queued runs (committed): have a worker look at them."""
        with self._lock:
            for lane in lanes:
                self._wake(lane)

    def resume(self) -> None:
        """Look at every lane with queued runs (after a restart, or when a build finished)."""
        self.notify(self.queue.lanes())

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running (all, or one project's): the one count the runtime uses."""
        return self.queue.pending(project_id)

    def _wake(self, lane: Lane) -> None:
        """Under the lock."""
        if self._stopping:
            return
        if lane in self._busy:
            self._dirty.add(lane)
            return
        timer = self._timers.pop(lane, None)
        if timer is not None:
            timer.cancel()
        self._busy.add(lane)
        self._ready.append(lane)
        self._start()

    def _start(self) -> None:
        """Under the lock: waiting lanes onto the slots they may take."""
        while self._ready and not self._stopping:
            lane = self._pick()
            if lane is None:
                return
            self._ready.remove(lane)
            self._running += 1
            self._held[lane[0]] += 1
            self._pool.submit(self._drain, lane)

    def _pick(self) -> Lane | None:
        """Under the lock: the next waiting lane to start, or None. A free slot takes the
        oldest lane of the plugin holding the fewest; past ``concurrency``, only a plugin
        holding none while another holds several starts (on an extra slot)."""
        if self._running < self._concurrency:
            best: Lane | None = None
            for lane in self._ready:
                if best is None or self._held[lane[0]] < self._held[best[0]]:
                    best = lane
                    if not self._held[lane[0]]:
                        break
            return best
        if self._running >= 2 * self._concurrency - 1 or max(self._held.values(), default=0) < 2:
            return None
        return next((lane for lane in self._ready if not self._held[lane[0]]), None)

    def _drain(self, lane: Lane) -> None:
        handed_on = False
        try:
            handed_on = self._slice(lane)
        except Exception:  # the queue itself failed (the database): look again a little later
            _log.exception("lane %s could not be scheduled; trying again in %.0f s", lane, QUEUE_RETRY_S)
            self._later(lane, QUEUE_RETRY_S)
        finally:
            if not handed_on:
                self._release(lane)
            with self._lock:
                self._running -= 1
                self._held[lane[0]] -= 1
                if not self._held[lane[0]]:
                    del self._held[lane[0]]
                self._start()

    def _slice(self, lane: Lane) -> bool:
        """Up to LANE_SLICE runs of the lane; True when the lane was handed on to a new slice."""
        taken: Taken | None = None
        for left in range(LANE_SLICE - 1, -1, -1):
            # A run already claimed is run even when stopping: its attempt is counted.
            if taken is None:
                if self._stopping:
                    return False
                taken = self.queue.take(lane)
                if taken is None:
                    return False
            if taken.head is Head.LATER:
                self._later(lane, taken.wait_s)
                return False
            # Not on the slice's last run: a claimed run waiting for the next slice would be
            # claimed (its attempt counted) again.
            step, taken = self._execute(taken, left > 0 and not self._stopping)
            if step is not Step.DONE:
                return False
        # A busy lane yields its slot after a slice: back to the end of the waiting lanes.
        with self._lock:
            if self._stopping:
                return False
            self._ready.append(lane)
        return True

    def _later(self, lane: Lane, delay: float) -> None:
        with self._lock:
            if self._stopping:
                return
            previous = self._timers.pop(lane, None)
            if previous is not None:
                previous.cancel()
            timer = threading.Timer(delay, self._timer_fired, (lane,))
            timer.daemon = True
            self._timers[lane] = timer
            timer.start()

    def _timer_fired(self, lane: Lane) -> None:
        with self._lock:
            self._timers.pop(lane, None)
            self._wake(lane)

    def _release(self, lane: Lane) -> None:
        with self._lock:
            self._busy.discard(lane)
            if lane in self._dirty:
                self._dirty.discard(lane)
                if lane not in self._timers:
                    self._wake(lane)
            self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no lane has a worker or a retry waiting (tests, the demo, shutdown);
        lanes waiting for a build do not count."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy and not self._timers, timeout)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._idle.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
