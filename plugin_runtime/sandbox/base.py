"""What every sandbox offers: run one event through a plugin, get a RunResult back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from plugin_sdk.results import RunResult


class Limits(BaseModel):
    """Per-run limits. The process sandbox enforces time and output; Docker enforces all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    memory_mb: int = Field(default=512, ge=32)
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=128, ge=8)
    max_log_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    max_actions: int = Field(default=1000, ge=1)
    start_timeout_s: float = Field(default=30.0, gt=0)


class LimitsPolicy(BaseModel):
    """Admin-set defaults and maxima; a plugin may ask for other limits within the maxima."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Limits = Limits()
    maxima: Limits = Limits(
        timeout_s=300, memory_mb=2048, cpus=2.0, pids=512, max_log_bytes=16 * 1024 * 1024,
        max_message_bytes=64 * 1024 * 1024, max_actions=10_000,
    )

    def resolve(self, requested: Mapping[str, Any] | None = None) -> Limits:
        """The limits of a plugin asking for ``requested``; raises ValueError naming each
        limit over its maximum or unknown."""
        values = self.defaults.model_dump()
        problems = []
        for name, value in (requested or {}).items():
            if name not in values:
                problems.append(f"unknown limit {name!r} (known: {', '.join(sorted(values))})")
                continue
            ceiling = getattr(self.maxima, name)
            if value > ceiling:
                problems.append(f"{name}={value} is over the maximum the admin allows ({ceiling})")
            values[name] = value
        if problems:
            raise ValueError("; ".join(problems))
        return Limits.model_validate(values)


class Sandbox(Protocol):
    """Runs events through one plugin version; one warm worker per project."""

    def run(self, event: dict[str, Any]) -> RunResult:
        """Run one (validated) recorded event; every plugin behaviour is a status, never an
        exception. Raises SandboxUnavailable only when nothing can run at all."""
        ...

    def close(self) -> None:
        """Stop every worker; nothing of the sandbox remains afterwards."""
        ...
