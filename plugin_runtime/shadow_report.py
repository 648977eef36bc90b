"""What a shadow saw: events, events whose actions differ from the live version's (with the
differences, from the diff's ``compare``), the candidate's errors and timeouts, and the run
durations of both sides. Read-only.

Each side of an event is its status (``ok``, or the outcome of a failed run) and its actions in
wire form, every one the plugin produced whether applied or refused. An event the live
version had no run for counts as the live version doing nothing; a side still queued is
compared once it ends.
"""

from __future__ import annotations

from typing import Any

from plugin_runtime.diff import Comparison, compare
from plugin_runtime.statuses import ENDED, RunStatus
from plugin_runtime.store import Store, loads
from plugin_runtime.store.codec import Db

#: Differences and failures a report lists by default (newest first); the counts cover all.
DIFFERENCES = 20
FAILURES = 10
#: Events whose comparison waited for their live run, compared again when a report is read.
RECHECKED = 5_000


def _live_side(store: Store, db: Db, run: Any, plugin: str, version: int) -> dict[str, Any] | None:
    """The live side of a shadow run's event; None while it has not ended (or never will run)."""
    live = store.shadows.live_run(db, run["event_id"], plugin, version)
    if live is None:
        return {"run_id": None, "version": None, "status": "ok", "actions": []}
    if live["status"] not in ENDED:
        return None
    ok = live["status"] == RunStatus.SUCCEEDED
    status = "ok" if ok else live["outcome"] or live["status"]
    return {"run_id": live["id"], "version": live["version"], "status": status,
            "actions": store.shadows.live_actions(db, live["id"]) if ok else [], "error": live["error"]}


def _candidate_status(run: Any) -> str:
    return "ok" if run["status"] == RunStatus.SUCCEEDED else run["outcome"] or run["status"]


def differs(store: Store, db: Db, run: Any, status: str, actions: list[dict[str, Any]]) -> bool | None:
    """Whether a shadow run (of ``run``'s shadow: plugin, version) did otherwise than the live
    version on its event; None while the live run has not ended."""
    live = _live_side(store, db, run, run["plugin"], run["version"])
    return None if live is None else not compare(live["status"], live["actions"], status, actions).same


def _comparison(store: Store, db: Db, shadow: Any, run: Any) -> tuple[dict[str, Any], Comparison] | None:
    live = _live_side(store, db, run, shadow["plugin"], shadow["version"])
    if live is None or run["status"] not in ENDED:
        return None
    return live, compare(live["status"], live["actions"], _candidate_status(run), loads(run["actions"], []))


def _latency(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)

    def at(q: float) -> float | None:
        return round(ordered[int(q * (len(ordered) - 1))], 3) if ordered else None

    return {"count": len(ordered), "p50": at(0.5), "p95": at(0.95), "max": at(1.0)}


def report(store: Store, shadow: Any, differences: int = DIFFERENCES, failures: int = FAILURES) -> dict[str, Any]:
    """The report of one shadow (a ``shadows`` row)."""
    db = store.read()
    counts = {"seen": 0, "compared": 0, "differing": 0, "waiting": 0, "not_run": 0}
    outcomes: dict[str, int] = {}
    ok = no_hook = 0
    for row in store.shadows.counts(db, shadow["id"]):
        counts["seen"] += row["n"]
        if row["status"] in (RunStatus.PENDING, RunStatus.RUNNING):
            counts["waiting"] += row["n"]
        elif row["status"] == RunStatus.SKIPPED:
            counts["not_run"] += row["n"]
        elif row["status"] == RunStatus.SUCCEEDED:
            no_hook += row["n"] if row["no_hook"] else 0
            ok += 0 if row["no_hook"] else row["n"]
        else:
            outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["n"]
        if row["differs"] is not None:
            counts["compared"] += row["n"]
            counts["differing"] += row["n"] if row["differs"] else 0
    if shadow["ended_at"] is None:  # events its lane has not looked at yet (a moment's worth)
        counts["waiting"] += store.shadows.unplanned(db, shadow["project_id"], shadow["planned_seq"])
    listed: list[dict[str, Any]] = []
    # Compared when they ended but their live run had not: compared now (read only).
    for run in store.shadows.runs_of(db, shadow["id"], f"AND differs IS NULL AND status IN {_ENDED_SQL}", RECHECKED):
        found = _comparison(store, db, shadow, run)
        if found is not None:
            counts["compared"] += 1
            if not found[1].same:
                counts["differing"] += 1
                listed.append(_difference(run, *found))
    for run in store.shadows.runs_of(db, shadow["id"], "AND differs = 1", differences):
        found = _comparison(store, db, shadow, run)
        if found is not None:
            listed.append(_difference(run, *found))
    listed.sort(key=lambda item: item.pop("_seq"), reverse=True)
    candidate_ms, live_ms = store.shadows.durations(db, shadow["id"], shadow["plugin"], shadow["version"])
    plugin = store.plugins.get(db, shadow["plugin"])
    failed = store.shadows.runs_of(db, shadow["id"], f"AND status = '{RunStatus.FAILED}'", failures)
    return {
        "id": shadow["id"], "plugin": shadow["plugin"], "version": shadow["version"],
        "live_version": plugin["current_version"] if plugin is not None else None,
        "project_id": shadow["project_id"], "started_at": shadow["started_at"], "ended_at": shadow["ended_at"],
        "end_reason": shadow["end_reason"], "events": counts,
        "candidate": {"ok": ok, "no_hook": no_hook, "errors": outcomes.get("error", 0),
                      "timeouts": outcomes.get("timeout", 0), "failed": outcomes, "latency_ms": _latency(candidate_ms)},
        "live": {"latency_ms": _latency(live_ms)},
        "differences": listed[:differences],
        "failures": [{"event_id": run["event_id"], "run_id": run["id"], "outcome": run["outcome"],
                      "error": run["error"], "logs": store.run_records.logs(db, run["id"])} for run in failed],
    }


_ENDED_SQL = "(" + ", ".join(f"'{status}'" for status in ENDED) + ")"


def _difference(run: Any, live: dict[str, Any], comparison: Comparison) -> dict[str, Any]:
    return {"_seq": run["event_seq"], "event_id": run["event_id"],
            "live": {"run_id": live["run_id"], "version": live["version"], "status": live["status"],
                     "actions": live["actions"]},
            "candidate": {"run_id": run["id"], "status": _candidate_status(run), "actions": loads(run["actions"], []),
                          "error": run["error"]},
            "only_live": comparison.only_a, "only_candidate": comparison.only_b, "reordered": comparison.reordered}
