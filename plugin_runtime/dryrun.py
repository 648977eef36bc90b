"""``plugin-runtime dry-run``: a plugin against recorded events, no server, no platform.

Prints one JSON line per event on stdout (or a readable summary on a terminal); diagnostics
and progress go to stderr. Each action the service would refuse is listed in the event's
``rejected`` with the service's reason (``applier.policy``: its size, and its scope judged on
what the events file says exists, see ``Known``); one whose scope the dry-run cannot judge, its
event carrying no context, is listed in ``warnings``. Exit code 0 only if every event is ``ok``
and no action is rejected.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from plugin_runtime.applier.policy import Facts, named, refusal, size_refusal
from plugin_runtime.recordings import read_events
from plugin_runtime.requirements import logical_lines
from plugin_runtime.sandbox.base import Limits, Sandbox
from plugin_runtime.source import PluginSource
from plugin_runtime.terminal import escape
from plugin_sdk.actions import dump_actions
from plugin_sdk.results import RunResult, Status

SandboxFactory = Callable[[PluginSource, Limits], Sandbox]


def open_sandbox(kind: str, source: PluginSource, limits: Limits) -> Sandbox:
    """The sandbox named on the command line."""
    if kind == "process":
        from plugin_runtime.sandbox.process import ProcessSandbox

        return ProcessSandbox(source, limits)
    if kind == "docker":
        from plugin_runtime.sandbox.docker import open_for_source

        return open_for_source(source, limits, progress=lambda m: sys.stderr.write(f"[docker] {escape(m)}\n"))
    raise ValueError(f"unknown sandbox {kind!r}: expected process or docker")


class _Progress:
    """A counter on stderr when it is a terminal; silent otherwise."""

    def __init__(self, err: IO[str], enabled: bool) -> None:
        self.err, self.enabled, self.last = err, enabled, 0.0

    def update(self, done: int, counts: Counter[str]) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last > 0.2:
            self.last = now
            self.err.write(f"\r{done} events  ({counts[Status.OK]} ok, {done - counts[Status.OK]} not ok)")
            self.err.flush()

    def clear(self) -> None:
        if self.enabled and self.last:
            self.err.write("\r\033[K")


def run_dry_run(
    source: PluginSource,
    events: str | Path,
    *,
    sandbox: str = "process",
    limits: Limits | None = None,
    out: IO[str],
    err: IO[str],
    human: bool = False,
    progress: bool = False,
    default_packages: Sequence[str] = (),
) -> int:
    """Run every event of ``events`` through the plugin; returns the exit code.
    ``default_packages``: what every plugin image has (the runtime's setting)."""
    limits = limits or Limits()
    for warning in source.warnings:
        err.write(f"warning: {escape(warning, multiline=True)}\n")
    if sandbox == "process" and logical_lines(source.requirements):
        err.write("warning: --sandbox process does not install requirements.txt: the plugin imports what this "
                  "environment has; --sandbox docker runs it with exactly its requirements, as the service does\n")
    if sandbox == "process" and default_packages:
        from plugin_runtime.default_packages import missing_here

        missing = missing_here(source, default_packages)
        err.write(f"warning: {missing}\n" if missing else "")
    counts: Counter[str] = Counter()
    started = time.monotonic()
    meter = _Progress(err, progress and not human)
    done = rejected_actions = unchecked_actions = 0
    known = Known()
    box = open_sandbox(sandbox, source, limits)
    try:
        for recorded in read_events(events):
            if recorded.error is not None:
                result = RunResult(event_id=recorded.event_id, status=Status.ERROR, error=recorded.error)
                err.write(f"error: {escape(recorded.error, multiline=True)}\n")
                event: dict[str, Any] | None = None
            else:
                event = recorded.event
                assert event is not None
                known.learn(event)
                result = box.run(event)
            counts[result.status] += 1
            done += 1
            rejected, warnings = known.check(result, event)
            rejected_actions += len(rejected)
            unchecked_actions += len(warnings)
            if human:
                out.write(_human(result, event, rejected, warnings) + "\n")
            else:
                out.write(json.dumps({**result.wire(), "rejected": rejected, "warnings": warnings},
                                     ensure_ascii=False) + "\n")
            out.flush() if done % 256 == 0 or human else None
            meter.update(done, counts)
    finally:
        box.close()
        meter.clear()
    out.flush()
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no events"
    if rejected_actions:
        summary += f"; {rejected_actions} action(s) the service would reject"
    if unchecked_actions:
        summary += f"; {unchecked_actions} action(s) the dry-run could not check (their events' recorded context does not tell)"
    line = f"dry-run: {done} events in {elapsed:.2f} s: {summary}"
    (out if human else err).write(("\n" if human else "") + line + "\n")
    return 0 if done == counts[Status.OK] and not rejected_actions else 1


class Known:
    """What the dry-run knows of the records actions name, as the service's policy reads it
    (``Facts``): what the events so far carry, each in its event's project: its asset and
    label, its context's asset and assets, and their labels. The service's platform knows at
    least what the events it received carry, so an action naming an asset or label of another
    project or asset is refused as the service refuses it; one naming an unknown record is
    refused as missing when its event carries a context (the recording describes its project),
    and only warned about when it carries none. An issue a status change names is known from
    its context asset's ``issues``; one not there is refused as missing only when that asset's
    issues were recorded."""

    def __init__(self) -> None:
        self.asset_projects: dict[str, str] = {}
        self.label_assets: dict[str, str] = {}
        self.issue_assets: dict[str, str] = {}
        #: Assets whose issues a context listed (context.asset.issues).
        self.issues_recorded: set[str] = set()

    def learn(self, event: dict[str, Any]) -> None:
        project, asset_id = event["project_id"], event.get("asset_id")
        context = event.get("context") or {}
        if asset_id:
            self.asset_projects.setdefault(asset_id, project)
            label_id = (event.get("label") or {}).get("id")
            if label_id:
                self.label_assets.setdefault(label_id, asset_id)
        for asset in [context.get("asset"), *(context.get("assets") or [])]:
            if isinstance(asset, dict) and isinstance(asset.get("id"), str):
                self.asset_projects.setdefault(asset["id"], project)
                for label in asset.get("labels") or []:
                    if isinstance(label, dict) and isinstance(label.get("id"), str):
                        self.label_assets.setdefault(label["id"], asset["id"])
                self._learn_issues(asset)

    def _learn_issues(self, asset: dict[str, Any]) -> None:
        if not isinstance(asset.get("issues"), list):
            return
        self.issues_recorded.add(asset["id"])
        for issue in asset["issues"]:
            if isinstance(issue, dict) and isinstance(issue.get("id"), str):
                self.issue_assets.setdefault(issue["id"], asset["id"])

    def check(self, result: RunResult, event: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The result's actions the service would refuse (``index``, ``reason``: its words),
        and those the dry-run cannot judge (``index``, ``warning``)."""
        if not result.actions:
            return [], []
        facts = Facts(self.asset_projects, self.label_assets, issue_assets=self.issue_assets)
        context = (event or {}).get("context") or {}
        described = bool(context.get("asset") or context.get("assets"))
        project = (event or {}).get("project_id", "")
        rejected, warnings = [], []
        for index, action in enumerate(dump_actions(result.actions)):
            unknown = None if described or event is None else _unknown(action, project, facts)
            unknown = unknown or (None if event is None else self._unknown_issue(action, project))
            reason = size_refusal(action) if unknown or event is None else refusal(action, project, facts)
            if reason is not None:
                rejected.append({"index": index, "reason": reason})
            if unknown is not None:
                warnings.append({"index": index, "warning": _not_checked(unknown, action, project)})
        return rejected, warnings

    def _unknown_issue(self, action: dict[str, Any], project: str) -> str | None:
        """The issue a status change names, when the recording cannot tell where it is (the
        policy would call it missing)."""
        if action["type"] != "update_issue_status" or action["issue_id"] in self.issue_assets:
            return None
        if self.asset_projects.get(action["asset_id"]) != project or action["asset_id"] in self.issues_recorded:
            return None  # refused for its asset, or missing for sure: the asset's issues were recorded
        return f"issue {action['issue_id']!r}"


def _not_checked(unknown: str, action: dict[str, Any], project: str) -> str:
    if unknown.startswith("issue "):
        why = (f"{unknown} is not an issue of asset {action['asset_id']!r}; no event's context lists that "
               "asset's issues (context.asset.issues)")
    else:
        why = f"{unknown} does not exist in project {project!r}; the event carries no context"
    return (f"not checked: the service refuses this action if {why}, so the dry-run cannot tell (record events "
            "with their context: plugin-runtime events export)")


def _unknown(action: dict[str, Any], project: str, facts: Facts) -> str | None:
    """The record ``action`` names that ``facts`` do not know, when they cannot refuse it otherwise."""
    assets, labels = named([action])
    missing = sorted(asset for asset in assets if asset not in facts.asset_projects)
    if missing:
        return f"asset {missing[0]!r}"
    if any(facts.asset_projects[asset] != project for asset in assets):
        return None  # another project's: refused whatever else exists
    missing = sorted(label for label in labels if label not in facts.label_assets)
    return f"label {missing[0]!r}" if missing else None


def _human(result: RunResult, event: dict[str, Any] | None, rejected: Sequence[dict[str, Any]] = (),
           warnings: Sequence[dict[str, Any]] = ()) -> str:
    # Everything but our own words comes from the plugin or the recording: escaped.
    kind = event.get("type", "?") if event else "?"
    asset = (event or {}).get("asset_id") or "-"
    head = escape(f"{result.event_id or '?'}  {kind}  {asset}  ") + result.status.upper()
    if result.skipped:
        return head + "  (no hook for this event)"
    lines = [f"{head}  {len(result.actions)} action(s)  {result.duration_ms:.1f} ms"]
    reasons = {item["index"]: item["reason"] for item in rejected}
    cautions = {item["index"]: item["warning"] for item in warnings}
    for index, action in enumerate(result.actions):
        data = action.model_dump(mode="json", exclude_none=True)
        data.pop("type")
        target = escape(str(data.pop("asset_id")))
        detail = " ".join(f"{k}={shorten(json.dumps(v, ensure_ascii=False))}" for k, v in data.items())
        lines.append(f"    -> {action.type} {target} {detail}".rstrip())
        if index in reasons:
            lines.append(f"       REJECTED by the service: {escape(reasons[index])}")
        if index in cautions:
            lines.append(f"       WARNING: {escape(cautions[index])}")
    for log in result.logs[:HUMAN_LOG_LINES]:
        first, *rest = shorten(log.message, multiline=True).splitlines() or [""]
        lines.append(f"    [{escape(log.level.lower())}] {first}")
        lines.extend(f"      {line}" for line in rest)
    if len(result.logs) > HUMAN_LOG_LINES:
        lines.append(f"    ... {len(result.logs) - HUMAN_LOG_LINES} more log lines (--format json shows all)")
    if result.error:
        lines.extend("    ! " + line for line in escape(result.error, multiline=True).splitlines())
    return "\n".join(lines)


#: What a human view shows of one run's logs; JSON output keeps everything.
HUMAN_LOG_LINES = 20
HUMAN_TEXT_CHARS = 400


def shorten(text: str, limit: int = HUMAN_TEXT_CHARS, multiline: bool = False) -> str:
    """``text`` for a terminal: cut to ``limit`` characters, saying how much was left out, and
    escaped (``terminal.escape``; newlines kept when ``multiline``)."""
    cut = text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"
    return escape(cut, multiline)
