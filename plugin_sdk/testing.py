"""Unit-testing plugins with pytest, in a few lines::

    from plugin_sdk.testing import load_plugin

    def test_wrong_iban_opens_an_issue():
        plugin = load_plugin("main.py")
        result = plugin.submit({"IBAN": {"text": "DE89 3704"}}, asset_id="invoice-1")
        assert result.status == "ok"
        [issue] = result.actions_of("create_issue")
        assert "FR" in issue.text

The plugin runs in the test's own interpreter (so breakpoints and coverage work) through the
same executor as in the sandbox: same routing, same log capture, same action validation.
Events are built with :func:`make_event`; by default they carry a context (the asset with the
label, the project) so ``self.kili.labels(...)``/``assets(...)`` reads work.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from plugin_sdk._executor import Executor
from plugin_sdk._loader import load_handler
from plugin_sdk.models import Event
from plugin_sdk.results import RunResult, result_from_outcome
from plugin_sdk.subscriptions import ASSET_EVENTS, LABEL_EVENTS, PROJECT_UPDATED

__all__ = ["PluginHarness", "load_plugin", "make_label", "make_event", "load_events", "dry_run"]

_ids = itertools.count(1)


def make_label(
    json_response: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    label_type: str = "DEFAULT",
    author_id: str = "user-1",
    seconds_to_label: float = 10,
    created_at: str = "2026-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    """A label dict with Kili's camelCase keys, as a hook receives it."""
    return {
        "id": id or f"label-{next(_ids)}",
        "labelType": label_type,
        "authorId": author_id,
        "secondsToLabel": seconds_to_label,
        "createdAt": created_at,
        "jsonResponse": json_response or {},
        **extra,
    }


def make_event(
    type: str = "onSubmit",
    *,
    json_response: dict[str, Any] | None = None,
    label: dict[str, Any] | None = None,
    asset_id: str = "asset-1",
    project_id: str = "project-1",
    id: str | None = None,
    asset: dict[str, Any] | None = None,
    labels: list[dict[str, Any]] | None = None,
    project: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    settings_updated: list[dict[str, Any]] | None = None,
    context: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A recorded event (a dict in the wire format), validated.

    For label events, ``label`` (or a label built from ``json_response``) is the event's label.
    An ``onProjectUpdated`` event carries ``settings_updated`` (``[{"key", "newValue",
    "oldValue"}]``). With ``context=True`` the event carries ``context.asset`` (``asset``
    merged over defaults, its ``labels`` being ``labels`` or just the event's label) and
    ``context.project``.
    """
    event: dict[str, Any] = {"id": id or f"evt-{next(_ids)}", "type": type, "project_id": project_id}
    if type in LABEL_EVENTS:
        event["label"] = label if label is not None else make_label(
            json_response, label_type="REVIEW" if type == "onReview" else "DEFAULT"
        )
    if type in ASSET_EVENTS or asset is not None:
        event["asset_id"] = asset_id
    if payload is not None or "." in type:
        event["payload"] = payload or {}
    if type == PROJECT_UPDATED or settings_updated is not None:
        event["settings_updated"] = settings_updated or []
    if context:
        ctx: dict[str, Any] = {"project": {"id": project_id, **(project or {})}}
        if "asset_id" in event:
            record: dict[str, Any] = {
                "id": asset_id, "externalId": asset_id, "status": "LABELED", "jsonMetadata": {},
                "labels": labels if labels is not None else ([event["label"]] if "label" in event else []),
                "issues": [],
            }
            record.update(asset or {})
            ctx["asset"] = record
        event["context"] = ctx
    event.update(extra)
    Event.model_validate(event)
    return event


def load_events(path: str | Path) -> list[dict[str, Any]]:
    """The events of a recorded ``.jsonl`` file (blank lines skipped), each validated."""
    events = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            event = json.loads(line)
            try:
                Event.model_validate(event)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: {error}") from None
            events.append(event)
    return events


class PluginHarness:
    """A plugin loaded for tests, bound to one project; :meth:`run` one event at a time."""

    def __init__(self, handler: type, project_id: str = "project-1", event_matcher: list[str] | None = None) -> None:
        self.project_id = project_id
        self._logs: list[dict[str, Any]] = []
        self._executor = Executor(handler, project_id, self._sink, logger_name=f"plugin_sdk.testing.{id(self)}",
                                  event_matcher=event_matcher)
        self.plugin = self._executor.plugin
        self.subscriptions: list[str] = self._executor.info["subscriptions"]

    def _sink(self, level: str, message: str, source: str) -> None:
        self._logs.append({"level": level, "message": message, "source": source})

    def run(self, event: dict[str, Any]) -> RunResult:
        """Run one recorded event (a dict in the wire format) and return its result."""
        Event.model_validate(event)
        if event["project_id"] != self.project_id:
            event = {**event, "project_id": self.project_id}
        self._logs = []
        started = time.perf_counter()
        outcome = self._executor.run(event)
        duration = (time.perf_counter() - started) * 1000
        return result_from_outcome(event.get("id"), outcome, self._logs, duration)

    def submit(self, json_response: dict[str, Any] | None = None, **event: Any) -> RunResult:
        """Run an ``onSubmit`` event built by :func:`make_event` from these arguments."""
        return self.run(make_event("onSubmit", json_response=json_response, project_id=self.project_id, **event))

    def review(self, json_response: dict[str, Any] | None = None, **event: Any) -> RunResult:
        """Run an ``onReview`` event built by :func:`make_event` from these arguments."""
        return self.run(make_event("onReview", json_response=json_response, project_id=self.project_id, **event))

    def send_back_to_queue(self, asset_id: str = "asset-1", **event: Any) -> RunResult:
        """Run an ``onSendBackToQueue`` event."""
        return self.run(make_event("onSendBackToQueue", asset_id=asset_id, project_id=self.project_id, **event))

    def project_updated(self, settings_updated: list[dict[str, Any]], **event: Any) -> RunResult:
        """Run an ``onProjectUpdated`` event: ``[{"key": "reviewCoverage", "newValue": 20,
        "oldValue": 0}]``."""
        return self.run(make_event(PROJECT_UPDATED, settings_updated=settings_updated, project_id=self.project_id,
                                   **event))

    def event(self, name: str, payload: dict[str, Any] | None = None, **event: Any) -> RunResult:
        """Run a dotted event (``asset.skipped``) for ``on_event``, with its ``payload``."""
        return self.run(make_event(name, payload=payload or {}, project_id=self.project_id, **event))


def load_plugin(plugin: str | Path | type, project_id: str = "project-1",
                event_matcher: list[str] | None = None) -> PluginHarness:
    """A harness for a plugin given as a ``main.py`` path, a plugin folder, or a class.
    ``event_matcher``: the patterns ``on_event`` receives, as given at upload (``plugins
    upload --event-matcher``); they replace the class attribute ``event_matcher``."""
    if isinstance(plugin, type):
        return PluginHarness(plugin, project_id, event_matcher)
    handler, _warnings = load_handler(plugin, module_name=f"_plugin_under_test_{next(_ids)}")
    return PluginHarness(handler, project_id, event_matcher)


def dry_run(plugin: str | Path, events: str | Path, sandbox: str = "process", timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``plugin-runtime dry-run`` on a plugin and an events file, as a user would, and
    return its JSON lines (one dict per event, in order). Raises AssertionError with the
    command's messages when it refuses the plugin or the file as a whole."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events", str(events),
         "--sandbox", sandbox, "--format", "json"],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    if done.returncode not in (0, 1):
        raise AssertionError(f"dry-run refused the plugin or the events (exit {done.returncode}):\n{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines()]
