"""The durable run queue: runs wait in the store, so a restart, a crash or a retry loses none.

A lane is one (plugin, version, project): its runs are taken strictly in event order, its
head first. The head waits until its ``next_attempt_at`` (a failed attempt's backoff, stored
with the run); a later run of the lane never overtakes it.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Protocol

from plugin_runtime.store import Store
from plugin_runtime.store.codec import Db, later, now

Lane = tuple[str, int, str]


def default_worker() -> str:
    """The worker name runs record when none is given: ``HOST:PID``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RunQueue(Protocol):
    """What the scheduler needs of the run queue. Runs are enqueued by the intake, in the
    transaction that stores their event; a run is finished by the applier, in its own."""

    def enqueue(self, db: Db, run_id: str, event_id: str, event_seq: int, lane: Lane, asset_id: str | None,
                root_id: str | None = None) -> None: ...

    def lanes(self) -> list[Lane]:
        """Lanes with queued runs (after a restart, or when a build finished)."""
        ...

    def head(self, lane: Lane) -> Any:
        """The lane's next run (pending, or running when a process died with it), or None."""
        ...

    def claim(self, run_id: str) -> bool:
        """Mark a head run running (an attempt more); False when it is no longer queued."""
        ...

    def reschedule(self, run_id: str, reason: str, delay_s: float) -> None:
        """Back to pending after a failed attempt, not to be taken before ``delay_s``."""
        ...

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running (all, or one project's)."""
        ...


class StoreRunQueue:
    """The run queue as the store's ``runs`` (the embedded default)."""

    def __init__(self, store: Store, worker: str | None = None) -> None:
        """``worker``: the name claimed runs record (default ``HOST:PID``)."""
        self.store = store
        self.worker = worker or default_worker()

    def enqueue(self, db: Db, run_id: str, event_id: str, event_seq: int, lane: Lane, asset_id: str | None,
                root_id: str | None = None) -> None:
        plugin, version, project_id = lane
        self.store.runs.insert(db, run_id, event_id, event_seq, plugin, version, project_id, asset_id, now(), root_id)

    def lanes(self) -> list[Lane]:
        return self.store.runs.lanes(self.store.read())

    def head(self, lane: Lane) -> Any:
        return self.store.runs.head(self.store.read(), *lane)

    def claim(self, run_id: str) -> bool:
        with self.store.write() as db:
            return self.store.runs.claim(db, run_id, now(), self.worker)

    def reschedule(self, run_id: str, reason: str, delay_s: float) -> None:
        with self.store.write() as db:
            self.store.runs.reschedule(db, run_id, reason, later(delay_s))

    def pending(self, project_id: str | None = None) -> int:
        return self.store.queued.count(project_id)
