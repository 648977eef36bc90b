"""Runs, their actions and logs, and the budget of the event chain they belong to."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from plugin_runtime.api.models.base import Answer
from plugin_runtime.statuses import ActionStatus, RunOutcome, RunStatus


class Run(Answer):
    id: str
    event_id: str
    asset_id: str | None
    project_id: str
    plugin: str
    version: int
    status: RunStatus
    outcome: RunOutcome | None = Field(description="why it did not succeed: its sandbox status, or the runtime's")
    error: str | None
    attempts: int
    worker: str | None = Field(description="the worker that ran it last: its --name, default HOST:PID")
    duration_ms: float | None
    created_at: str
    finished_at: str | None
    rejected: int = Field(description="actions the runtime refused")
    root_id: str | None = Field(description="the event from outside whose chain this run belongs to")
    root_budget_exceeded: str | None = Field(description="why the root event's budget stopped its chain, if it did")
    metrics: dict[str, Any] = Field(description="reads answered (calls, seconds, refused) and what its actions caused")


class RunAction(Answer):
    action: dict[str, Any] = Field(description="the action, as in the README's wire formats")
    status: ActionStatus
    reason: str | None = Field(description="why it was rejected")


class RunLog(Answer):
    level: str
    message: str
    source: str = Field(description="logger, stdout, stderr or runtime")


class RootBudget(Answer):
    id: str
    caused_runs: int
    caused_events: int
    dropped_events: int
    budget_exceeded: str | None


class RunDetail(Run):
    actions: list[RunAction]
    logs: list[RunLog]
    root: RootBudget | None = Field(description="the budget of the run's root event")


class Retried(Answer):
    id: str = Field(description="the run that will run: the same one, or with live_version a new run")
    status: RunStatus
    version: int


class LogLine(Answer):
    cursor: int
    level: str
    message: str
    source: str
    run_id: str
    plugin: str
    version: int
    project_id: str
    asset_id: str | None
    event_id: str
    finished_at: str | None


class LogPage(Answer):
    lines: list[LogLine]
    cursor: int = Field(description="pass it as `after` for the next lines")
