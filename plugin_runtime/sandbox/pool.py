"""Warm workers, one per project, shared by every sandbox kind.

A worker serves one project's events one after another; it is replaced after it died (crash,
timeout, out-of-memory, flood), after ``max_events`` events, and evicted when idle. A worker
never serves two projects. One that uses CPU while idle (a thread its plugin left running after
a hook), as the host measures it, is set aside (``contain_idle_cpu``) and replaced at its next event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from plugin_runtime import metrics
from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.channel import CallHandler, Worker
from plugin_sdk.results import RunResult, Status
from plugin_sdk.subscriptions import subscribed

#: Answers a plugin's read for the project its worker serves: (project_id, method, query).
ProjectReader = Callable[[str, str, dict[str, Any]], Any]
#: CPU seconds an idle worker may use, plus this share of the time since its last run: a
#: plugin's light housekeeping thread passes, a thread spinning after its hook does not.
IDLE_CPU_S = 0.2
IDLE_CPU_SHARE = 0.05
_log = logging.getLogger(__name__)


class WorkerPool:
    """Subclasses say how a worker starts (``_spawn``); the pool decides when."""

    def __init__(
        self,
        limits: Limits | None = None,
        reader: ProjectReader | None = None,
        max_events: int = 10_000,
        idle_s: float = 300.0,
    ) -> None:
        self.limits = limits or Limits()
        self.reader = reader
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self.max_events = max_events
        self.idle_s = idle_s
        self.workers: dict[str, Worker] = {}
        self.last_used: dict[str, float] = {}
        self.cold_starts = 0
        #: The ``on_event`` patterns the version was uploaded with, sent to each worker it starts.
        self.event_matcher: list[str] = []
        self._closed = False
        # Each idle worker's CPU (ns, as ``_cpu_ns`` measures it) and time when its last run ended.
        self._at_rest: dict[str, tuple[int, float]] = {}

    def _spawn(self, project_id: str) -> Worker:
        raise NotImplementedError

    def call_handler(self, project_id: str) -> CallHandler | None:
        """Reads for a worker, bound to its project: whatever project a plugin names in a
        ``call``, it is answered for its own."""
        reader = self.reader
        if reader is None:
            return None
        return lambda method, query: reader(project_id, method, query)

    def worker(self, project_id: str) -> Worker:
        """The warm worker of ``project_id``, started if there is none alive."""
        worker = self.workers.get(project_id)
        if worker is not None and worker.load_error is not None and worker.load_stage != "init":
            return worker  # importing fails the same way every time: no respawn per event
        if worker is not None and worker.events_served < self.max_events and not worker.idle_ended():
            return worker
        if worker is not None:
            # Dead, worn out, or gone while idle (with its Docker engine, say): a fresh one.
            worker.shutdown()
            self.workers.pop(project_id, None)
        replacing = worker is not None
        worker = self._spawn(project_id)
        self.cold_starts += 1
        worker.start(project_id, self.event_matcher)  # SandboxUnavailable when its engine went away meanwhile
        if self._closed:  # closed while it started (the runtime stopping): nobody would stop it
            worker.shutdown()
            raise SandboxUnavailable("the sandbox was closed while its worker started")
        self.workers[project_id] = worker
        metrics.sandbox_started(replacing)
        return worker

    def info(self, project_id: str) -> dict[str, Any] | None:
        """What the plugin declared (hooks, subscriptions, warnings), once loaded."""
        return self.worker(project_id).info

    def _occupy(self, project_id: str) -> None:
        """The project's worker is in use until ``_rest``: idle ones are evicted first, never it."""
        self.evict_idle()
        with self._lock:
            self._busy.add(project_id)
            self.last_used[project_id] = time.monotonic()

    def run(self, event: dict[str, Any]) -> RunResult:
        project_id = event["project_id"]
        self._occupy(project_id)
        try:
            worker = self.worker(project_id)
            if worker.load_error is not None:
                return RunResult(event_id=event.get("id"), status=Status.ERROR, error=worker.load_error)
            assert worker.info is not None
            if not subscribed(worker.info.get("subscriptions", []), event["type"]):
                return RunResult(event_id=event.get("id"), status=Status.OK, skipped=True)
            return worker.run(event)
        finally:
            self._rest(project_id)

    def run_many(self, events: list[dict[str, Any]]) -> Generator[RunResult, None, None]:
        """``run`` for events of one project, in order, those the plugin takes sent to its
        worker together (``Worker.run_many``); stops after a result that stopped the worker:
        the events after it were not run (run them again: a fresh worker takes them)."""
        project_id = events[0]["project_id"]
        self._occupy(project_id)
        try:
            worker = self.worker(project_id)
            if worker.load_error is not None:
                for event in events:
                    yield RunResult(event_id=event.get("id"), status=Status.ERROR, error=worker.load_error)
                return
            assert worker.info is not None
            wanted = [subscribed(worker.info.get("subscriptions", []), event["type"]) for event in events]
            ran = worker.run_many([event for event, sent in zip(events, wanted) if sent])
            try:
                for event, sent in zip(events, wanted):
                    if not sent:
                        yield RunResult(event_id=event.get("id"), status=Status.OK, skipped=True)
                        continue
                    result = next(ran, None)
                    if result is None:
                        return
                    yield result
            finally:
                ran.close()
        finally:
            self._rest(project_id)

    def _rest(self, project_id: str) -> None:
        """A run of the project ended: its worker is idle from here."""
        cpu = self._cpu_ns(project_id)
        with self._lock:
            self._busy.discard(project_id)
            self.last_used[project_id] = at = time.monotonic()
            if cpu is not None:
                self._at_rest[project_id] = (cpu, at)

    def _cpu_ns(self, project_id: str) -> int | None:
        """The CPU time the project's worker used so far, as the host measures it (never as the
        plugin says); None when this sandbox does not measure it."""
        return None

    def _set_aside(self, project_id: str, worker: Worker) -> None:
        """Stop an idle worker using CPU from using more until it is replaced."""
        worker.stop()

    def contain_idle_cpu(self) -> list[str]:
        """Set aside the idle workers that used more CPU since their last run than ``IDLE_CPU_S``
        and ``IDLE_CPU_SHARE`` of the time since: marked dead (the project's next event starts a
        fresh one) and stopped from using more (``_set_aside``). Returns their projects."""
        now, caught = time.monotonic(), []
        with self._lock:
            for project_id, (rested, at) in list(self._at_rest.items()):
                worker = self.workers.get(project_id)
                used = None if worker is None or worker.dead or project_id in self._busy else self._cpu_ns(project_id)
                if used is None:
                    del self._at_rest[project_id]
                elif (used - rested) / 1e9 > IDLE_CPU_S + IDLE_CPU_SHARE * (now - at):
                    assert worker is not None
                    worker.dead = True  # replaced before its next event (``worker``)
                    del self._at_rest[project_id]
                    caught.append((project_id, worker, (used - rested) / 1e9, now - at))
        for project_id, worker, seconds, idle in caught:
            _log.warning("a worker of project %s used %.1f s of CPU in the %.1f s since its last run ended (a thread "
                         "its plugin left running after a hook?): set aside, a fresh one takes the next event",
                         project_id, seconds, idle)
            self._set_aside(project_id, worker)
        return [project_id for project_id, *_ in caught]

    def evict_idle(self) -> None:
        """Stop the workers nobody used for ``idle_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            idle = [p for p, used in self.last_used.items()
                    if now - used > self.idle_s and p in self.workers and p not in self._busy]
            stopping = [self.workers.pop(p) for p in idle]
            for project_id in idle:
                del self.last_used[project_id]
        for worker in stopping:
            worker.shutdown()

    def close(self) -> None:
        self._closed = True
        # Listed first: a run in progress (the runtime stopping) may replace its worker meanwhile.
        for worker in list(self.workers.values()):
            worker.shutdown()
        self.workers.clear()
        self.last_used.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
