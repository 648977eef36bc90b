"""Shadows: a candidate version run beside the live one, and the report comparing them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from plugin_runtime.api.models.base import MAX_VERSION, Answer
from plugin_runtime.api.models.runs import RunLog


class ShadowVersion(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class Shadow(Answer):
    id: int
    plugin: str
    version: int = Field(description="the candidate version")
    project_id: str
    started_at: str
    ended_at: str | None
    end_reason: str | None = Field(description="stopped, promoted, replaced, the plugin deleted")


class ShadowsEnded(Answer):
    ended: list[Shadow]


class Promoted(Answer):
    plugin: str
    version: int = Field(description="the live version now")
    ended: list[Shadow] = Field(description="the plugin's shadows this ended")


class ShadowEvents(Answer):
    seen: int = Field(description="events of the project the candidate or the live version had a hook for")
    compared: int = Field(description="events both sides ended")
    differing: int = Field(description="compared events whose status or actions differ")
    waiting: int = Field(description="shadow runs still queued, and events the shadow has not looked at yet")
    not_run: int = Field(description="events the candidate never ran: it fell behind, or the shadow ended first")


class Latency(Answer):
    count: int
    p50: float | None
    p95: float | None
    max: float | None


class ShadowCandidate(Answer):
    ok: int = Field(description="runs that ended ok (with a hook)")
    no_hook: int = Field(description="events only the live version has a hook for")
    errors: int
    timeouts: int
    failed: dict[str, int] = Field(description="failed runs by outcome (error, timeout, oom_killed, ...)")
    latency_ms: Latency


class ShadowLive(Answer):
    latency_ms: Latency


class ShadowSide(Answer):
    run_id: str | None = Field(description="null: the live version had no run for the event (it did nothing)")
    status: str = Field(description="ok, or how the run failed")
    actions: list[dict[str, Any]]


class LiveSide(ShadowSide):
    version: int | None


class CandidateSide(ShadowSide):
    error: str | None


class ShadowDifference(Answer):
    event_id: str
    live: LiveSide
    candidate: CandidateSide
    only_live: list[dict[str, Any]] = Field(description="actions only the live version did")
    only_candidate: list[dict[str, Any]] = Field(description="actions only the candidate did")
    reordered: bool = Field(description="the same actions, in another order")


class ShadowFailure(Answer):
    event_id: str
    run_id: str
    outcome: str | None
    error: str | None
    logs: list[RunLog] = Field(description="the candidate's log lines for the event (its logger and prints)")


class ShadowReport(Shadow):
    live_version: int | None
    events: ShadowEvents
    candidate: ShadowCandidate
    live: ShadowLive
    differences: list[ShadowDifference] = Field(description="the newest, up to the number asked")
    failures: list[ShadowFailure] = Field(description="the candidate's newest failed runs")


class ShadowReports(Answer):
    shadows: list[ShadowReport] = Field(description="the newest shadow of each plugin and project, ended or not")
