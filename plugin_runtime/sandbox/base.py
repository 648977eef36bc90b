"""What every sandbox offers: run one event through a plugin, get a RunResult back."""

from __future__ import annotations

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


class Sandbox(Protocol):
    """Runs events through one plugin version; one warm worker per project."""

    def run(self, event: dict[str, Any]) -> RunResult:
        """Run one (validated) recorded event; every plugin behaviour is a status, never an
        exception. Raises SandboxUnavailable only when nothing can run at all."""
        ...

    def close(self) -> None:
        """Stop every worker; nothing of the sandbox remains afterwards."""
        ...
