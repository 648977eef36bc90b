"""Webhook events stored by a thread of their own, many to a transaction (group commit).

A webhook's event is handed to the writer thread and answered once the transaction storing it
has committed, as before: an acknowledged event is stored, a refused one is not. While one
transaction commits, the events arriving meanwhile wait and go together into the next, so a
busy intake pays one transaction (and one write of the pages the events share) for many of
them, and the HTTP event loop never waits for the store's lock or its disk.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from plugin_runtime.errors import Busy

#: Events at most in one transaction: a burst is stored in a few, none holds the writer long.
MAX_BATCH = 64
#: Stores events in one transaction: for each, True (stored), False (its id was stored
#: already) or the Busy refusing it (nothing stored); raises when the transaction failed.
StoreMany = Callable[[list[tuple[dict[str, Any], str]]], list["bool | Busy"]]

_log = logging.getLogger(__name__)
_Item = tuple[dict[str, Any], str, "Future[bool]"]


class GroupCommit:
    def __init__(self, store_many: StoreMany, max_batch: int = MAX_BATCH) -> None:
        """``store_many``: a method of its owner (the intake), held weakly: the thread never
        keeps an intake (and its store) alive, and stops when the owner is dropped unclosed."""
        self._store_many = weakref.WeakMethod(store_many)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        weakref.finalize(store_many.__self__, self._queue.put, None)  # type: ignore[attr-defined]
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, event: dict[str, Any], source: str) -> Future[bool]:
        """Store a validated event with those around it; the future is True once it is
        stored, False when its id was stored already, or raises (``Busy``: nothing stored)."""
        future: Future[bool] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(Busy("the runtime is stopping; retry later"))
                return future
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="intake-writer", daemon=True)
                self._thread.start()
            self._queue.put((event, source, future))
        return future

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, stopping = [item], False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            # A request given up meanwhile (its future cancelled) stores nothing.
            batch = [i for i in batch if i[2].set_running_or_notify_cancel()]
            try:
                self._commit(batch)
            except Exception as error:  # a bug here must not leave requests waiting forever
                _log.exception("storing %d webhook event(s) failed unexpectedly", len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            if stopping:
                return

    def _commit(self, batch: list[_Item]) -> None:
        if not batch:
            return
        try:
            store_many = self._store_many()
            if store_many is None:
                raise Busy("the runtime is stopping; retry later")
            outcomes = store_many([(event, source) for event, source, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                batch[0][2].set_exception(error)
                return
            # One event the store or its platform refused rolled them all back: each again
            # alone, so that only it is refused.
            for item in batch:
                self._commit([item])
            return
        for (_, _, future), outcome in zip(batch, outcomes):
            if isinstance(outcome, Busy):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def close(self) -> None:
        """Store what was handed over already, then stop; later events are refused as Busy."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()
