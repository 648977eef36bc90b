"""The runtime's sandboxes: one warm pool per plugin version, built and probed at upload.

``kind="docker"`` is the runtime's sandbox; ``kind="process"`` runs plugins as local
processes, for development on machines without Docker (not a security boundary).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from plugin_runtime.errors import PluginRuntimeError, SandboxUnavailable
from plugin_runtime.event_matcher import patterns_of
from plugin_runtime.registry import BuildOutcome
from plugin_runtime.sandbox.base import Limits, LimitsPolicy
from plugin_runtime.sandbox.pool import ProjectReader, WorkerPool
from plugin_runtime.source import PluginSource, load_archive
from plugin_sdk.results import RunResult

if TYPE_CHECKING:
    import docker

    from plugin_runtime.builder import Builder

#: The project a freshly built version is loaded for once, to check it before it goes live.
PROBE_PROJECT = "__upload-check__"

VersionLookup = Callable[[str, int], dict[str, Any]]
ArchiveLookup = Callable[[str, int], bytes]


class SandboxManager:
    def __init__(self, kind: str, lookup: VersionLookup, archive: ArchiveLookup, reader: ProjectReader | None,
                 policy: LimitsPolicy | None = None, base_image: str | None = None,
                 progress: Callable[[str], None] | None = None, build_timeout_s: float | None = None,
                 default_packages: Sequence[str] = ()) -> None:
        if kind not in ("docker", "process"):
            raise ValueError(f"unknown sandbox {kind!r}: docker or process")
        self.kind, self.lookup, self.archive, self.reader = kind, lookup, archive, reader
        self.policy = policy or LimitsPolicy()
        self.progress = progress
        self.base_image = base_image
        self.build_timeout_s = build_timeout_s
        self.default_packages = list(default_packages)
        self._pools: dict[tuple[str, int], WorkerPool] = {}
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._builder: Builder | None = None
        self._closed = False

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from plugin_runtime.engine import connect
            from plugin_runtime.sandbox.docker import sweep

            self._client = connect()
            sweep(self._client)
        return self._client

    def limits(self, requested: dict[str, Any] | None = None) -> Limits:
        return self.policy.resolve(requested)

    # Build -------------------------------------------------------------------------------

    def build(self, name: str, version: int, source: PluginSource) -> BuildOutcome:
        """Build the version's image, then load the plugin once in a sandbox: an import error
        or a missing hook fails the deploy with the plugin's message."""
        image, freeze, log, built = None, [], "", []
        if self.kind == "docker":
            from plugin_runtime.builder import Builder, BuildFailed

            if self._builder is None:
                from plugin_runtime.base_image import DEFAULT_BASE_IMAGE

                self._builder = Builder(self.client, self.base_image or DEFAULT_BASE_IMAGE, self.progress,
                                        build_timeout_s=self.build_timeout_s, default_packages=self.default_packages)
            try:
                result = self._builder.build(source, f"plugin-runtime-plugin:{name}-v{version}")
            except BuildFailed as error:
                return BuildOutcome(error=error.error, log=error.log)
            image, freeze, log, built = result.image, result.freeze, "\n".join(result.log), result.warnings
        pool = self._new_pool(source, image)
        pool.event_matcher = list(source.event_matcher)
        try:
            worker = pool.worker(PROBE_PROJECT)
            if worker.load_error is not None and worker.load_stage == "init":
                # The module and its handler are fine; its __init__ failed on an empty probe
                # project, which says nothing of the real ones: deploy, with a warning.
                warning = f"creating the plugin for an empty project failed (it may need a real project): {worker.load_error}"
                return BuildOutcome(image=image, freeze=freeze, log=log,
                                    info={"subscriptions": source.subscriptions,
                                          "warnings": source.warnings + built + [warning]})
            if worker.load_error is not None:
                return BuildOutcome(error=f"the plugin failed to load: {worker.load_error}", log=log)
            info = worker.info or {}
            if built:  # the build's own (default packages left out), after the plugin's
                info = {**info, "warnings": [*info.get("warnings", []), *built]}
        finally:
            pool.close()
        return BuildOutcome(image=image, freeze=freeze, log=log, info=info)

    def _new_pool(self, source: PluginSource | None, image: str | None, requested: dict | None = None) -> WorkerPool:
        limits = self.limits(requested)
        if self.kind == "docker":
            from plugin_runtime.sandbox.docker import DockerSandbox

            if image is None:
                raise PluginRuntimeError("this version has no image to run in Docker: upload it again")
            return DockerSandbox(self.client, image, limits, reader=self.reader)
        from plugin_runtime.sandbox.process import ProcessSandbox

        assert source is not None
        return ProcessSandbox(source, limits, python=sys.executable, reader=self.reader)

    # Run ---------------------------------------------------------------------------------

    def run(self, name: str, version: int, event: dict[str, Any]) -> RunResult:
        return self._pool(name, version).run(event)

    def run_many(self, name: str, version: int, events: list[dict[str, Any]]) -> Generator[RunResult, None, None]:
        """``run`` for a lane's events in order (``WorkerPool.run_many``): it may stop early,
        after a run that stopped its worker."""
        return self._pool(name, version).run_many(events)

    def _pool(self, name: str, version: int) -> WorkerPool:
        key = (name, version)
        with self._lock:
            if self._closed:  # a run starting as the runtime stops would leave its worker behind
                raise SandboxUnavailable("the runtime is stopping: the run is left for its next start")
            pool = self._pools.get(key)
            if pool is None:
                info = self.lookup(name, version)
                if self.kind == "docker" and not info.get("image"):
                    raise PluginRuntimeError(f"{name} v{version} has no image")
                source = load_archive(self.archive(name, version)) if self.kind == "process" else None
                pool = self._pools[key] = self._new_pool(source, info.get("image"), info.get("limits"))
                pool.event_matcher = patterns_of(info.get("subscriptions"))
            return pool

    def forget(self, name: str, images: list[str]) -> None:
        """A deleted plugin: stop its containers and remove its images (not the shared
        dependency layers, which other plugins may use)."""
        with self._lock:
            pools = [self._pools.pop(key) for key in list(self._pools) if key[0] == name]
        for pool in pools:
            pool.close()
        if self.kind == "docker" and images:
            for image in images:
                try:
                    self.client.images.remove(image, noprune=False)
                except Exception:  # in use by a dry-run, or already gone: the next prune takes it
                    pass

    def warm(self) -> int:
        """Workers alive, ready for their next event (``/metrics``)."""
        with self._lock:
            pools = list(self._pools.values())
        return sum(1 for pool in pools for worker in list(pool.workers.values()) if not worker.dead)

    def evict_idle(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.evict_idle()

    def shut_down(self) -> None:
        """``close`` for good (the runtime stopping): a run starting afterwards is refused rather
        than given a worker nobody would stop."""
        with self._lock:
            self._closed = True
        self.close()

    def close(self) -> None:
        """Stop every worker (the next run starts fresh ones)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
