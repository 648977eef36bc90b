"""The runtime's metrics, exposed at ``/metrics`` in Prometheus' text format.

Counters and histograms move in memory where things happen, one call each from the intake
(events received), the webhook route (refusals), the end of a run (``logs.run_ended``), the
applier (actions), the sandbox pools and the builds: the hot path pays a dictionary lookup and
an addition. Gauges (queue depth, the oldest pending run, warm sandboxes, dead letters) are
read when scraped, from counts the runtime keeps in memory and indexed queries (``Gauges``).

The counters are the process's, as Prometheus clients keep them: runtimes sharing a process
(tests) add to the same ones, and a restart starts them from zero (``rate()`` expects it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY", "Gauges", "actions", "build_finished", "event_received", "exposition",
           "run_ended", "sandbox_started", "webhook_refused"]

PREFIX = "plugin_runtime"
# A ``_created`` gauge beside every counter doubles a scrape's size for what a restart shows anyway.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: A run lasts from milliseconds (a warm worker) to its time limit (60 s by default).
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: A build: a second (image reused) to the source-build limit (600 s by default).
BUILD_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)

_events = Counter(f"{PREFIX}_events_received", "Events stored: webhooks, the platform's (caused by actions), the CLI's",
                  ["source", "project"], registry=REGISTRY)
_refused = Counter(f"{PREFIX}_webhooks_refused", "Webhooks refused, by HTTP status (nothing stored)", ["status"],
                   registry=REGISTRY)
_signatures = Counter(f"{PREFIX}_webhook_signature_failures",
                      "Webhooks refused for their signature (unsigned, unknown secret, out of tolerance)",
                      registry=REGISTRY)
_runs = Counter(f"{PREFIX}_runs_ended", "Runs ended, by plugin, status and outcome (none: succeeded)",
                ["plugin", "status", "outcome"], registry=REGISTRY)
_run_seconds = Histogram(f"{PREFIX}_run_duration_seconds", "How long runs took in their sandbox, per plugin",
                         ["plugin"], buckets=RUN_BUCKETS, registry=REGISTRY)
_started = Counter(f"{PREFIX}_sandboxes_started", "Sandbox workers started (containers or processes)",
                   registry=REGISTRY)
_replaced = Counter(f"{PREFIX}_sandboxes_replaced",
                    "Sandbox workers started in place of one that died, timed out or served its events",
                    registry=REGISTRY)
_builds = Counter(f"{PREFIX}_builds", "Plugin version builds finished, by result (succeeded, failed)", ["result"],
                  registry=REGISTRY)
_build_seconds = Histogram(f"{PREFIX}_build_duration_seconds", "How long plugin version builds took", ["result"],
                           buckets=BUILD_BUCKETS, registry=REGISTRY)
_actions = Counter(f"{PREFIX}_actions", "Plugins' actions settled, by type and status (applied, rejected, failed)",
                   ["type", "status"], registry=REGISTRY)


# Where things happen: one call each ---------------------------------------------------------


def event_received(source: str, project_id: str) -> None:
    _events.labels(source, project_id).inc()


def webhook_refused(status: int, signature: bool) -> None:
    _refused.labels(str(status)).inc()
    if signature:
        _signatures.inc()


def run_ended(plugin: str, status: str, outcome: str | None, duration_ms: float | None) -> None:
    _runs.labels(plugin, str(status), str(outcome) if outcome else "none").inc()
    if duration_ms is not None:
        _run_seconds.labels(plugin).observe(duration_ms / 1000)


def sandbox_started(replacing: bool) -> None:
    _started.inc()
    if replacing:
        _replaced.inc()


def build_finished(succeeded: bool, seconds: float) -> None:
    result = "succeeded" if succeeded else "failed"
    _builds.labels(result).inc()
    _build_seconds.labels(result).observe(seconds)


def actions(types: Iterable[str], status: str) -> None:
    """Actions of these types settled with ``status``."""
    for kind in types:
        _actions.labels(kind, str(status)).inc()


# Read when scraped ----------------------------------------------------------------------------


@dataclass
class Gauges:
    """Where the scrape-time gauges come from: each a cheap call (in-memory counts, an
    indexed query)."""

    #: Runs pending or running, per project.
    queued: Callable[[], dict[str, int]]
    #: Seconds the oldest pending run has waited (0: none).
    oldest_pending_s: Callable[[], float]
    #: Sandbox workers alive and ready.
    warm: Callable[[], int]
    #: Runs in the dead-letter list.
    dead: Callable[[], int]


class _Scraped:
    def __init__(self, gauges: Gauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        queued = self.gauges.queued()
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Runs pending or running", value=sum(queued.values()))
        by_project = GaugeMetricFamily(f"{PREFIX}_project_queue_depth", "Runs pending or running, per project",
                                       labels=["project"])
        for project_id, count in sorted(queued.items()):
            by_project.add_metric([project_id], count)
        yield by_project
        yield GaugeMetricFamily(f"{PREFIX}_oldest_pending_run_age_seconds",
                                "How long the oldest pending run has waited (0: none waits)",
                                value=self.gauges.oldest_pending_s())
        yield GaugeMetricFamily(f"{PREFIX}_sandboxes_warm", "Sandbox workers alive, ready for events",
                                value=self.gauges.warm())
        yield GaugeMetricFamily(f"{PREFIX}_dead_letters", "Runs dead after their retries (runs retry redelivers)",
                                value=self.gauges.dead())


class _Everything:
    """The process's counters and one runtime's gauges, as one collector."""

    def __init__(self, scraped: _Scraped) -> None:
        self.scraped = scraped

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.scraped.collect()


def exposition(gauges: Gauges) -> Callable[[], bytes]:
    """A function answering a scrape: every metric in the text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything(_Scraped(gauges)))
    return lambda: generate_latest(registry)
