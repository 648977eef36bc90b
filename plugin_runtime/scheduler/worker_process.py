"""``plugin-runtime worker``: a process running plugin runs from the shared queue, no HTTP.

It needs the database URL and a Docker engine (or ``--sandbox process``), nothing else: no
data directory, token or webhook secret. Plugin archives are read from the shared store; an
image this host lacks is built here on first use, from the version's stored archive (the
build resolves the same requirements the same way, and is reused after).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

from plugin_runtime.config import Settings
from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.platforms.router import Platforms
from plugin_runtime.reads import ReadMeter
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.scheduler import Execute, Scheduler
from plugin_runtime.scheduler.shared import SharedRunQueue, SharedScheduler, default_name
from plugin_runtime.scheduler.workers import Workers
from plugin_runtime.source import load_archive
from plugin_runtime.store.backends import check_url
from plugin_runtime.store.postgres import PostgresStore

_log = logging.getLogger(__name__)


class WorkerProcess:
    def __init__(self, settings: Settings, name: str | None = None, concurrency: int | None = None) -> None:
        if not settings.database_url:
            raise PluginRuntimeError("a worker runs on a shared database: give --database-url "
                                     "(or PLUGIN_RUNTIME_DATABASE_URL) postgresql://user:password@host:port/db")
        self.settings = settings
        self.name = name or settings.worker_name or default_name()
        self.store = PostgresStore(check_url(settings.database_url))
        self.platform = EmbeddedPlatform(self.store)
        self.platforms = Platforms(self.platform, self.store, settings)
        self.reads = ReadMeter(self.platforms.read, settings.read_limits())
        self.sandboxes = SandboxManager(
            settings.sandbox, self._version, self._archive, self.reads, policy=settings.limits_policy(),
            base_image=settings.base_image, build_timeout_s=settings.build_timeout_s,
            default_packages=settings.default_requirements(), progress=lambda m: _log.info("[build] %s", m))
        self.registry = Registry(self.store, self.reads.bounded(self.sandboxes.build))
        self._images: dict[tuple[str, int], threading.Lock] = {}
        self._images_lock = threading.Lock()
        queue = SharedRunQueue(self.store, self.name)
        self.shared: SharedScheduler | None = None

        def make(execute: Execute) -> Scheduler:
            self.shared = SharedScheduler(queue, execute)
            return cast(Scheduler, self.shared)  # the scheduler's face, on the shared queue

        self.dispatcher = Dispatcher(self.store, self.registry, self.platforms, self.reads.metered(self.sandboxes.run),
                                     max_attempts=settings.max_attempts, retry_base_s=settings.retry_base_s,
                                     budget=settings.event_budget(), max_queue=settings.max_queue,
                                     max_queue_per_project=settings.max_queue_per_project, scheduler=make)
        assert self.shared is not None
        self.workers: Workers = Workers(settings.database_url, self.shared, self.name,
                                        concurrency or settings.concurrency)

    def _version(self, name: str, version: int) -> dict[str, Any]:
        info = self.registry.version(name, version)
        if self.settings.sandbox == "docker" and info.get("image"):
            self._ensure_image(name, version, info["image"])
        return info

    def _archive(self, name: str, version: int) -> bytes:
        return self.registry.archive(name, version)

    def _ensure_image(self, name: str, version: int, image: str) -> None:
        """Build the version's image here when this host does not have it (first use)."""
        import docker.errors

        with self._images_lock:
            lock = self._images.setdefault((name, version), threading.Lock())
        with lock:
            try:
                self.sandboxes.client.images.get(image)
                return
            except docker.errors.ImageNotFound:
                pass
            _log.info("image %s is not on this host: building %s v%s from its stored archive", image, name, version)
            outcome = self.sandboxes.build(name, version, load_archive(self._archive(name, version)))
            if outcome.error is not None:
                raise PluginRuntimeError(f"{name} v{version} could not be built on worker {self.name}: {outcome.error}")

    def run(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set, then let the running ones end."""
        self.workers.start()
        _log.info("worker %s running %d job(s) at a time from %s", self.name, self.workers.concurrency,
                  self.store.where)
        stop.wait()
        self.close()

    def close(self) -> None:
        self.workers.stop()
        self.platforms.close()
        self.registry.close()
        self.sandboxes.close()
        self.store.close()
