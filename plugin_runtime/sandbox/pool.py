"""Warm workers, one per project, shared by every sandbox kind.

A worker serves one project's events one after another; it is replaced after it died (crash,
timeout, out-of-memory, flood), after ``max_events`` events, and evicted when idle. A worker
never serves two projects.
"""

from __future__ import annotations

import time
from typing import Any

from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.channel import CallHandler, Worker
from plugin_sdk.results import RunResult
from plugin_sdk.subscriptions import subscribed


class WorkerPool:
    """Subclasses say how a worker starts (``_spawn``); the pool decides when."""

    def __init__(
        self,
        limits: Limits | None = None,
        on_call: CallHandler | None = None,
        max_events: int = 10_000,
        idle_s: float = 300.0,
    ) -> None:
        self.limits = limits or Limits()
        self.on_call = on_call
        self.max_events = max_events
        self.idle_s = idle_s
        self.workers: dict[str, Worker] = {}
        self.last_used: dict[str, float] = {}
        self.cold_starts = 0

    def _spawn(self, project_id: str) -> Worker:
        raise NotImplementedError

    def worker(self, project_id: str) -> Worker:
        """The warm worker of ``project_id``, started if there is none alive."""
        worker = self.workers.get(project_id)
        if worker is not None and worker.load_error is not None:
            return worker  # loading fails the same way every time: no respawn per event
        if worker is not None and not worker.dead and worker.events_served < self.max_events:
            return worker
        if worker is not None:
            worker.shutdown()
        worker = self._spawn(project_id)
        self.cold_starts += 1
        worker.start(project_id)
        self.workers[project_id] = worker
        return worker

    def info(self, project_id: str) -> dict[str, Any] | None:
        """What the plugin declared (hooks, subscriptions, warnings), once loaded."""
        return self.worker(project_id).info

    def run(self, event: dict[str, Any]) -> RunResult:
        project_id = event["project_id"]
        self.evict_idle()
        self.last_used[project_id] = time.monotonic()
        worker = self.worker(project_id)
        if worker.load_error is not None:
            return RunResult(event_id=event.get("id"), status="error", error=worker.load_error)
        assert worker.info is not None
        if not subscribed(worker.info.get("subscriptions", []), event["type"]):
            return RunResult(event_id=event.get("id"), status="ok", skipped=True)
        return worker.run(event)

    def evict_idle(self) -> None:
        """Stop the workers nobody used for ``idle_s`` seconds."""
        now = time.monotonic()
        for project_id, used in list(self.last_used.items()):
            if now - used > self.idle_s and project_id in self.workers:
                self.workers.pop(project_id).shutdown()
                del self.last_used[project_id]

    def close(self) -> None:
        for worker in self.workers.values():
            worker.shutdown()
        self.workers.clear()
        self.last_used.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
