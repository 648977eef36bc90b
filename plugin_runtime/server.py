"""The runtime service, assembled: store, embedded platform, registry, sandboxes, dispatcher."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from plugin_runtime.config import Settings
from plugin_runtime.errors import Busy, PluginRuntimeError
from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.platforms.router import Platforms
from plugin_runtime.reads import ReadMeter
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.scheduler import Execute, Scheduler
from plugin_runtime.shadow import Shadows
from plugin_runtime.store.backends import is_shared, open_store

if TYPE_CHECKING:
    from plugin_runtime.scheduler.shared import SharedScheduler
    from plugin_runtime.scheduler.workers import Workers


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Secrets and the database live here: owner only.
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.token = settings.resolved_token()
        self.webhook_secrets = settings.webhook_secrets()
        self.store = open_store(settings.database_url, settings.data_dir)
        self.shared: SharedScheduler | None = None
        self.platform = EmbeddedPlatform(self.store)
        # Each project's platform: the one it is connected to (Label Studio, ...), else the embedded.
        self.platforms = Platforms(self.platform, self.store, settings)
        # Plugins' reads are answered by their project's platform within each run's read budget.
        self.reads = ReadMeter(self.platforms.read, settings.read_limits())
        self.sandboxes = SandboxManager(
            settings.sandbox, self._version, self._archive, self.reads,
            policy=settings.limits_policy(), base_image=settings.base_image,
            default_packages=settings.default_requirements(),
            build_timeout_s=settings.build_timeout_s, progress=lambda m: print(f"[build] {m}", file=sys.stderr, flush=True),
        )
        self.registry = Registry(self.store, self.reads.bounded(self.sandboxes.build))
        self.registry.on_deleted.append(self.sandboxes.forget)
        self.dispatcher = Dispatcher(self.store, self.registry, self.platforms, self.reads.metered(self.sandboxes.run),
                                     concurrency=settings.concurrency, max_attempts=settings.max_attempts,
                                     retry_base_s=settings.retry_base_s, budget=settings.event_budget(),
                                     max_queue=settings.max_queue, max_queue_per_project=settings.max_queue_per_project,
                                     scheduler=self._shared_scheduler(),
                                     run_many=self.reads.metered_many(self.sandboxes.run_many))
        # Shadowed candidates: planned from the event log and run below the live runs, in sandboxes
        # of their own.
        self.shadows = Shadows(self.store, SandboxManager(
            settings.sandbox, self._version, self._archive, self.reads, policy=settings.limits_policy(),
            base_image=settings.base_image, default_packages=settings.default_requirements()), self.reads,
            self.dispatcher.wait_idle, shared_store=is_shared(settings.database_url))
        self.registry.on_deleted.append(self.shadows.forget)
        self._stop = threading.Event()
        self.workers: Workers | None = None

    def _shared_scheduler(self) -> Callable[[Execute], Scheduler] | None:
        """On a shared database, runs go through its queue (procrastinate), run by this
        process's workers (``settings.workers``) and any ``plugin-runtime worker``."""
        if not is_shared(self.settings.database_url):
            return None
        from plugin_runtime.scheduler.shared import SharedRunQueue, SharedScheduler, default_name
        from plugin_runtime.store.postgres import PostgresStore

        assert isinstance(self.store, PostgresStore)  # is_shared: open_store made one
        queue = SharedRunQueue(self.store, self.settings.worker_name or default_name())

        def make(execute: Execute) -> Scheduler:
            self.shared = SharedScheduler(queue, execute)
            return cast(Scheduler, self.shared)  # the scheduler's face, on the shared queue

        return make

    def _version(self, name: str, version: int) -> dict:
        return self.registry.version(name, version)

    def _archive(self, name: str, version: int) -> bytes:
        return self.registry.archive(name, version)

    def start(self) -> None:
        """Resume what a previous process left: deploys, then pending runs."""
        self.registry.resume_builds()
        self.dispatcher.resume()
        workers = self.settings.concurrency if self.settings.workers is None else self.settings.workers
        if self.shared is not None and self.settings.database_url and workers:
            from plugin_runtime.scheduler.workers import Workers

            self.workers = Workers(self.settings.database_url, self.shared, self.shared.queue.worker, workers).start()
        # Connected platforms look for the changes their webhooks missed, now and every few seconds.
        self.platforms.watch(lambda event: self.submit_checked(event, "reconcile"))
        self.shadows.start_lane()
        threading.Thread(target=self._janitor, name="janitor", daemon=True).start()

    def _janitor(self) -> None:
        while not self._stop.wait(30):
            self.sandboxes.evict_idle()

    def pending_runs(self, project_id: str | None = None) -> int:
        """Runs queued or running: the scheduler's count, the one the intake's backpressure uses."""
        return self.dispatcher.pending(project_id)

    def submit_checked(self, event: dict, source: str) -> bool:
        """Store an event from outside, unless its queue is full (``Busy``: nothing stored);
        False when it was stored already."""
        if self.dispatcher.pending() >= self.settings.max_queue:
            raise Busy("the runtime is busy; retry later")
        if self.dispatcher.pending(event["project_id"]) >= self.settings.max_queue_per_project:
            raise Busy(f"project {event['project_id']!r} has too many pending runs; retry later")
        return self.dispatcher.submit(event, source=source)

    def close(self) -> None:
        """Stop at once: runs in progress are stopped with their sandboxes and stay queued, as
        they were, for the next start (a hook may sleep until its timeout, minutes)."""
        self._stop.set()
        if self.workers is not None:
            self.workers.stop()
        self.dispatcher.stop_runs()
        self.sandboxes.shut_down()
        self.shadows.close()
        self.dispatcher.close()
        self.platforms.close()
        self.registry.close()
        self.sandboxes.close()
        self.store.close()


def serve(settings: Settings) -> None:
    """Run the HTTP service until interrupted; containers are removed on the way out."""
    import uvicorn

    from plugin_runtime.api import create_app

    import fcntl
    import socket

    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # "a": a second server must not empty the URL the first one wrote before finding the lock held.
    lock = open(settings.data_dir / "server.lock", "a")  # noqa: SIM115 - held while serving
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise PluginRuntimeError(f"another plugin-runtime server already uses {settings.data_dir}: "
                                 "stop it, or give this one its own --data-dir") from None
    # Where it serves, for a client that finds the lock held but nothing at the URL it was given.
    lock.truncate(0)
    lock.write(f"http://{settings.host}:{settings.port}\n")
    lock.flush()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            raise PluginRuntimeError(f"cannot listen on {settings.host}:{settings.port}: {error.strerror} "
                                     "(choose another --port)") from None
    from plugin_runtime import logs

    # Configured once the lock is held: one server writes the data directory's runtime.log.
    logs.configure(settings.data_dir, settings.log_level, fmt=settings.log_format)
    runtime = Runtime(settings)
    app = create_app(runtime)
    print(f"plugin-runtime serving on http://{settings.host}:{settings.port} (data in {settings.data_dir}, "
          f"sandbox {settings.sandbox})", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        print("plugin-runtime stopping: runs in progress are stopped and will run again at the next start",
              file=sys.stderr, flush=True)
        runtime.close()
        print("plugin-runtime stopped", file=sys.stderr, flush=True)
