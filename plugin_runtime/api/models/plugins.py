"""Plugins, their versions and activations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from plugin_runtime.api.models.base import MAX_VERSION, Answer
from plugin_runtime.statuses import VersionStatus


class Rollback(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class PluginSummary(Answer):
    name: str
    current_version: int | None = Field(description="the live version; null until one is built")
    latest_version: int
    latest_status: VersionStatus
    latest_error: str | None = Field(default=None, description=(
        "the newest version's build error when its build failed: the live version (if any) keeps running, "
        "and without one the events of its projects get failed runs with this reason"))
    projects: list[str] = Field(description="projects it is active on")
    created_at: str


class Version(Answer):
    plugin: str
    version: int
    status: VersionStatus
    digest: str = Field(description="sha256 of the kept files")
    handler: str = Field(description="the PluginCore subclass")
    subscriptions: list[str] = Field(description="event types and patterns it has hooks for")
    warnings: list[str]
    dropped: list[str] = Field(description="uploaded files not kept")
    limits: dict[str, Any] = Field(description="limits requested at upload (memory_mb, timeout_s, ...)")
    image: str | None = Field(description="its Docker image; null with the process sandbox or before the build")
    freeze: list[str] = Field(description="what its requirements resolved to")
    build_error: str | None
    created_at: str
    ready_at: str | None
    candidate: bool = Field(default=False, description="uploaded as a candidate: built without going live, to be "
                                                       "shadowed then promoted")


class VersionWithLog(Version):
    build_log: str


class PluginDetail(PluginSummary):
    versions: list[Version]


class BuildLog(Answer):
    plugin: str
    version: int
    status: VersionStatus
    build_error: str | None
    build_log: str


class Deleted(Answer):
    deleted: str = Field(description="the plugin deleted, with its versions and activations")


class Activation(Answer):
    plugin: str
    project_id: str
    active: bool
    changed: bool = Field(description="false when it already was so (the call is idempotent)")
