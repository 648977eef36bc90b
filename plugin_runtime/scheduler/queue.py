"""The durable run queue: runs wait in the store, so a restart, a crash or a retry loses none.

A lane is one (plugin, version, project): its runs are taken strictly in event order, its
head first. The head waits until its ``next_attempt_at`` (a failed attempt's backoff, stored
with the run); a later run of the lane never overtakes it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from plugin_runtime.statuses import BUILT, RunStatus, VersionStatus
from plugin_runtime.store import Store
from plugin_runtime.store.codec import Db, later, loads, now, seconds_until

Lane = tuple[str, int, str]


def default_worker() -> str:
    """The worker name runs record when none is given: ``HOST:PID``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Head(Enum):
    """What became of a lane's head when it was taken."""

    CLAIMED = "claimed"  # running now, an attempt more: run it
    LATER = "later"  # waiting for its next attempt (``wait_s``)
    BUILDING = "building"  # its version is still being built
    UNRUNNABLE = "unrunnable"  # its version failed to build or was deleted (``reason``)


@dataclass
class Taken:
    """A lane's head run, as ``take`` left it."""

    run: dict[str, Any]
    head: Head
    #: The run's event (CLAIMED), parsed once here.
    event: dict[str, Any] | None = None
    wait_s: float = 0.0
    reason: str | None = None
    #: The lane's next runs, claimed with it (CLAIMED, up to the queue's ``batch``), in event order.
    following: list[Taken] = field(default_factory=list)


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

    def take(self, lane: Lane, db: Db | None = None) -> Taken | None:
        """The lane's head, claimed when it can run now, in one transaction (``db``'s when
        given: a finishing run's takes its successor); None when the lane is empty."""
        ...

    def release(self, run_ids: list[str]) -> None:
        """Claimed runs that did not run after all (a batch cut short): queued again as they
        were, no attempt counted."""
        ...

    def reschedule(self, run_id: str, reason: str, delay_s: float) -> None:
        """Back to pending after a failed attempt, not to be taken before ``delay_s``."""
        ...

    def pending(self, project_id: str | None = None) -> int:
        """Runs queued or running (all, or one project's)."""
        ...


class StoreRunQueue:
    """The run queue as the store's ``runs`` (the embedded default)."""

    def __init__(self, store: Store, worker: str | None = None, batch: int = 1) -> None:
        """``worker``: the name claimed runs record (default ``HOST:PID``); ``batch``: runs a
        take claims at most (the head, and the lane's next ones as its ``following``)."""
        self.store = store
        self.worker = worker or default_worker()
        self.batch = batch

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

    def take(self, lane: Lane, db: Db | None = None) -> Taken | None:
        if db is None:
            with self.store.write() as transaction:
                return self.take(lane, transaction)
        row = self.store.runs.head_to_run(db, *lane)
        if row is None:
            return None
        run = dict(row)
        body, status, error = run.pop("event_body"), run.pop("version_status"), run.pop("build_error")
        wait = seconds_until(run["next_attempt_at"])
        if wait > 0:
            return Taken(run, Head.LATER, wait_s=wait)
        if status is None or status == VersionStatus.FAILED:
            reason = "the plugin was deleted" if status is None else f"the build failed: {error}"
            return Taken(run, Head.UNRUNNABLE, reason=reason)
        if status not in BUILT:
            return Taken(run, Head.BUILDING)
        # The head was read under the write lock: nothing else can claim or end it meanwhile.
        at = now()
        self.store.runs.claim(db, run["id"], at, self.worker)
        run.update(status=RunStatus.RUNNING, attempts=run["attempts"] + 1, started_at=at)
        return Taken(run, Head.CLAIMED, event=loads(body), following=self._following(db, lane, run, self.batch - 1, at))

    def _following(self, db: Db, lane: Lane, head: dict[str, Any], limit: int, at: str) -> list[Taken]:
        """The lane's next runs after ``head``, claimed, up to the first that must wait."""
        taken: list[Taken] = []
        for row in self.store.runs.following(db, *lane, head["event_seq"], limit) if limit > 0 else ():
            run = dict(row)
            body = run.pop("event_body")
            if seconds_until(run["next_attempt_at"]) > 0:
                break
            self.store.runs.claim(db, run["id"], at, self.worker)
            run.update(status=RunStatus.RUNNING, attempts=run["attempts"] + 1, started_at=at)
            taken.append(Taken(run, Head.CLAIMED, event=loads(body)))
        return taken

    def release(self, run_ids: list[str]) -> None:
        if run_ids:
            with self.store.write() as db:
                self.store.runs.unclaim(db, run_ids)

    def reschedule(self, run_id: str, reason: str, delay_s: float) -> None:
        with self.store.write() as db:
            self.store.runs.reschedule(db, run_id, reason, later(delay_s))

    def pending(self, project_id: str | None = None) -> int:
        return self.store.queued.count(project_id)
