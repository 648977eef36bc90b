"""The runtime's settings: flags and ``PLUGIN_RUNTIME_*`` environment variables, read once at
the entry point. Secrets not given are generated and kept in the data directory (mode 0600),
where the CLI on the same machine finds them.

This is the one module that reads the runtime's environment (the Docker engine's variables and
the cache folder too). The environments made for children are built elsewhere on purpose, from
an allow-list: a plugin process's (``sandbox.process``) and pip's (``resolver``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plugin_runtime.errors import SettingsError

DEFAULT_DATA_DIR = Path(".plugin-runtime")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLUGIN_RUNTIME_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    #: ``postgresql://user:password@host:port/db``: the shared store of a runtime on several
    #: machines (``plugin-runtime worker``); unset: the embedded SQLite file in ``data_dir``.
    database_url: str | None = None
    #: With a shared database: the workers ``serve`` runs in its process on the shared queue
    #: (None: ``concurrency``; 0: API and intake only, ``plugin-runtime worker`` runs them).
    workers: int | None = Field(default=None, ge=0, le=64)
    #: The name runs record of the worker that ran them (default ``HOST:PID``).
    worker_name: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=0, le=65535)
    url: str | None = None
    token: str | None = None
    #: One secret, or several separated by spaces (rotation: all are accepted, the first signs).
    webhook_secret: str | None = None
    sandbox: str = "docker"
    base_image: str = "plugin-runtime-base:bookworm"
    #: Seconds one source distribution may take to build in the build sandbox.
    build_timeout_s: float = Field(default=600.0, gt=0, le=7200)
    #: Packages every plugin image has without a requirements.txt, as on Kili's hosted runtime:
    #: requirements separated by spaces (``numpy>=2,<3 pandas``), or ``none``. One shared layer
    #: (``default_packages``); a plugin's own requirements win over it.
    default_packages: str = "numpy pandas scikit-learn opencv-python-headless Pillow requests"
    concurrency: int = Field(default=4, ge=1, le=64)
    max_queue: int = Field(default=10_000, ge=1)
    #: Pending runs one project may have before its events get 429 (others still get in).
    max_queue_per_project: int = Field(default=2_500, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    #: Infrastructure failures (Docker down, a container that would not start) are retried
    #: this many times with exponential backoff from ``retry_base_s``, then the run is dead.
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_base_s: float = Field(default=0.5, ge=0, le=60)
    #: Admin maxima for per-plugin limits, e.g. '{"memory_mb": 1024, "timeout_s": 120}'.
    limit_maxima: dict[str, float] = Field(default_factory=dict)
    #: What one event from outside (a root) may cause through plugins' actions, all depths
    #: together: runs, and events (send-backs, appended labels). Past either, the root's
    #: chain stops and is reported.
    max_caused_runs: int = Field(default=100, ge=0)
    max_caused_events: int = Field(default=1_000, ge=0)
    #: A plugin's reads (``self.kili.labels()``, ...) per event: calls, and the server's time
    #: answering them; past either, reads are refused with ReadLimitExceeded.
    max_reads_per_event: int = Field(default=1_000, ge=1)
    max_read_seconds_per_event: float = Field(default=10.0, gt=0)
    #: The runtime's own log (stderr and ``runtime.log`` in the data directory) from this level.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: Seconds between two looks at a connected platform (Label Studio) for the changes its
    #: webhooks did not bring (it sends each once and never retries).
    reconcile_interval_s: float = Field(default=5.0, gt=0, le=3600)
    #: ``json``: one JSON object per line, with run, event, plugin, version and project ids.
    log_format: Literal["text", "json"] = "text"
    #: A bearer token ``/metrics`` requires (the admin token is always accepted); unset: open.
    metrics_token: str | None = None
    #: How long a dashboard login lasts.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("default_packages")
    @classmethod
    def _default_packages_are_requirements(cls, value: str) -> str:
        from plugin_runtime.default_packages import parse

        parse(value)  # raises ValueError naming what is wrong
        return value

    def default_requirements(self) -> list[str]:
        """The default packages as requirements; empty when turned off."""
        from plugin_runtime.default_packages import parse

        return parse(self.default_packages)

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_in_lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def event_budget(self):
        from plugin_runtime.budget import EventBudget

        return EventBudget(max_runs=self.max_caused_runs, max_events=self.max_caused_events)

    def read_limits(self):
        from plugin_runtime.reads import ReadLimits

        return ReadLimits(max_calls=self.max_reads_per_event, max_seconds=self.max_read_seconds_per_event)

    def limits_policy(self):
        from plugin_runtime.sandbox.base import Limits, LimitsPolicy

        base = LimitsPolicy()
        return LimitsPolicy(maxima=Limits.model_validate({**base.maxima.model_dump(), **self.limit_maxima}))

    def secret_file(self, name: str) -> Path:
        return self.data_dir / name

    def resolved_token(self, create: bool = True) -> str | None:
        return self.token or _kept(self.secret_file("token"), create)

    def webhook_secrets(self, create: bool = True) -> list[str]:
        text = self.webhook_secret or _kept(self.secret_file("webhook-secret"), create)
        return text.split() if text else []

    @property
    def client_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


class EngineSettings(BaseSettings):
    """Where the Docker engine answers: Docker's own variables, as the Docker SDK reads them."""

    model_config = SettingsConfigDict(extra="ignore")

    docker_host: str = "unix:///var/run/docker.sock"
    docker_tls_verify: str | None = None


def cache_dir() -> Path:
    """Where the runtime keeps what it can compute again (base image facts, built wheels)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plugin-runtime"


def _kept(path: Path, create: bool) -> str | None:
    """A secret stored in ``path``, generated (owner-readable only) when missing. An empty
    file stops the runtime (``create``) rather than leave it without a token or a secret."""
    if path.exists():
        value = path.read_text().strip() or None
        if value is None and create:
            raise SettingsError(f"{path} is empty: write the secret in it, or delete the file and the runtime "
                                "generates a new one when it starts")
        return value
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
