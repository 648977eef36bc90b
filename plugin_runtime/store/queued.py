"""How many runs are queued (pending or running), per project, kept in memory beside the store.

The webhook's backpressure asks on every request; a ``COUNT`` over the queued runs at each
one cost more than storing the event. The counts are read from the store when it opens and
then moved by the run changes that enter or leave the queue, once their transaction commits
(a rolled-back change moves nothing). Only the server's one ``Store`` writes its database.
"""

from __future__ import annotations

import threading
from typing import Any


class QueuedCounts:
    def __init__(self, rows: list[Any]) -> None:
        """``rows``: (project_id, queued runs), as ``Runs.queued_by_project`` reads them."""
        self._lock = threading.Lock()
        self._projects: dict[str, int] = {row[0]: row[1] for row in rows}
        self._total = sum(self._projects.values())

    def count(self, project_id: str | None = None) -> int:
        with self._lock:
            return self._total if project_id is None else self._projects.get(project_id, 0)

    def add(self, project_id: str, delta: int) -> None:
        with self._lock:
            left = self._projects.get(project_id, 0) + delta
            if left:
                self._projects[project_id] = left
            else:
                self._projects.pop(project_id, None)
            self._total += delta
