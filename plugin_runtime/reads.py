"""Plugins' reads in the service (``self.kili.labels()``, ...), metered per run.

The server answers reads outside the plugin's container, so its CPU quota does not bound
them: a plugin looping over reads would cost the server as much as it likes. Each run gets a
budget of read calls and of the server's time answering them; past either, reads are refused
with ``ReadLimitExceeded`` (the SDK raises ``plugin_sdk.ReadLimitExceeded``), the run's logs say
so, and the run's metrics count what was read.

A sandbox answers a plugin's ``call`` in the thread that runs its event, so the run's budget is
that thread's while the run lasts (``metered``), and the sandbox need not know about budgets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from plugin_runtime.errors import ReadLimitExceeded
from plugin_sdk.results import LogRecord, RunResult


@dataclass(frozen=True)
class ReadLimits:
    """Per event: read calls, and seconds of the server's time answering them."""

    max_calls: int = 1_000
    max_seconds: float = 10.0


class DeadlineReader(Protocol):
    """Answers a read for a project; stops with TimeoutError past ``deadline`` (perf_counter)."""

    def __call__(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any: ...


@dataclass
class ReadBudget:
    """One run's reads so far."""

    limits: ReadLimits
    calls: int = 0
    seconds: float = 0.0
    refused: int = 0
    reason: str | None = None

    def admit(self, method: str) -> float:
        """Count one call; its deadline (perf_counter), or ReadLimitExceeded past a limit."""
        if self.calls >= self.limits.max_calls:
            self.reason = (f"this event's reads reached the limit of {self.limits.max_calls} calls "
                           "(PLUGIN_RUNTIME_MAX_READS_PER_EVENT)")
        elif self.seconds >= self.limits.max_seconds:
            self.reason = self._time_reason()
        if self.reason is not None:
            self.refused += 1
            raise ReadLimitExceeded(f"kili.{method} refused: {self.reason}; read less per event "
                                    "(filter with asset_id, first, ...), or read once and keep the result")
        self.calls += 1
        return time.perf_counter() + self.limits.max_seconds - self.seconds

    def _time_reason(self) -> str:
        return (f"the server's time answering this event's reads reached the limit of "
                f"{self.limits.max_seconds:g} s (PLUGIN_RUNTIME_MAX_READ_SECONDS_PER_EVENT)")

    def timed_out(self, method: str) -> ReadLimitExceeded:
        self.reason = self._time_reason()
        self.refused += 1
        return ReadLimitExceeded(f"kili.{method} stopped: {self.reason}; read less per event "
                                 "(filter with asset_id, first, ...)")

    def metrics(self) -> dict[str, Any]:
        return {"calls": self.calls, "seconds": round(self.seconds, 4), "refused": self.refused}

    def annotate(self, result: RunResult) -> RunResult:
        """``result`` with the reads in its ``reads`` metrics and, when some were refused, a
        line in its logs saying which limit."""
        if not self.calls and not self.refused:
            return result
        logs = list(result.logs)
        if self.refused:
            logs.append(LogRecord(level="WARNING", source="runtime",
                                  message=f"{self.refused} read(s) refused: {self.reason}"))
        return result.model_copy(update={"reads": self.metrics(), "logs": logs})


class ReadMeter:
    """The reader the sandboxes get: answers through ``answer``, within the current run's
    budget."""

    def __init__(self, answer: DeadlineReader, limits: ReadLimits) -> None:
        self.answer, self.limits = answer, limits
        self._local = threading.local()

    def __call__(self, project_id: str, method: str, query: dict[str, Any]) -> Any:
        budget: ReadBudget | None = getattr(self._local, "budget", None)
        if budget is None:
            # Outside a run (not expected): still no read longer than a whole run's allowance.
            budget = ReadBudget(self.limits)
        deadline = budget.admit(method)
        started = time.perf_counter()
        try:
            return self.answer(project_id, method, query, deadline=deadline)
        except TimeoutError:
            raise budget.timed_out(method) from None
        finally:
            budget.seconds += time.perf_counter() - started

    @contextlib.contextmanager
    def budget(self) -> Iterator[ReadBudget]:
        """A fresh budget for the reads this thread answers inside the block."""
        previous = getattr(self._local, "budget", None)
        self._local.budget = budget = ReadBudget(self.limits)
        try:
            yield budget
        finally:
            self._local.budget = previous

    def metered(self, run: Callable[[str, int, dict[str, Any]], RunResult]) -> Callable[[str, int, dict[str, Any]], RunResult]:
        """``run`` (plugin, version, event) -> RunResult, each call with its own budget."""

        def metered_run(plugin: str, version: int, event: dict[str, Any]) -> RunResult:
            with self.budget() as budget:
                result = run(plugin, version, event)
            return budget.annotate(result)

        return metered_run

    def metered_many(self, run_many: Callable[[str, int, list[dict[str, Any]]], Generator[RunResult, None, None]]
                     ) -> Callable[[str, int, list[dict[str, Any]]], Generator[RunResult, None, None]]:
        """``run_many`` (plugin, version, events) -> RunResults, each run with its own budget:
        a run's reads are answered while its result is awaited, between two of them."""

        def metered_runs(plugin: str, version: int, events: list[dict[str, Any]]) -> Generator[RunResult, None, None]:
            results = run_many(plugin, version, events)
            try:
                while True:
                    with self.budget() as budget:
                        result = next(results, None)
                    if result is None:
                        return
                    yield budget.annotate(result)
            finally:
                results.close()

        return metered_runs

    def bounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` with one budget per call (an upload's check, whose plugin may read in
        its ``__init__``)."""

        def within_budget(*args: Any, **kwargs: Any) -> Any:
            with self.budget():
                return function(*args, **kwargs)

        return within_budget
