"""Plugins and their versions: upload, build, activation per project, rollback, delete.

Every upload is a new immutable version (deploying -> active | failed). A plugin's live
version is the newest active one (``current_version``); ``rollback`` makes an older built
version current again. Builds run one at a time in the background; ``wait`` blocks until a
version leaves ``deploying``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from plugin_runtime import logs, metrics
from plugin_runtime.errors import (
    PluginInvalid,
    RegistryConflict,
    RegistryError,  # noqa: F401 - still importable from here, its home before errors.py
    RegistryNotFound,
    RegistryRefused,
)
from plugin_runtime.event_matcher import patterns_of, with_event_matcher
from plugin_runtime.platforms.embedded import now
from plugin_runtime.source import PluginSource, load_archive
from plugin_runtime.statuses import BUILT, VersionStatus
from plugin_runtime.store import Store, loads

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_log = logging.getLogger(__name__)


#: Builds an image for a version; returns (image, freeze, log) or raises with a build error.
BuildFunction = Callable[[str, int, PluginSource], "BuildOutcome"]


class BuildOutcome:
    """What a build produced: the image and the declared plugin (hooks, subscriptions), or the
    error the user must fix."""

    def __init__(self, image: str | None = None, freeze: list[str] | None = None, log: str = "",
                 error: str | None = None, info: dict[str, Any] | None = None) -> None:
        self.image, self.freeze, self.log, self.error, self.info = image, freeze or [], log, error, info or {}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RegistryRefused(
            f"invalid plugin name {name!r}: use 1 to 63 characters among a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


class Registry:
    def __init__(self, store: Store, build: BuildFunction) -> None:
        self.store = store
        self._build = build
        self._builds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build")
        self._changed = threading.Condition()
        self.on_ready: list[Callable[[str, int], None]] = []
        #: Called with (plugin, images of its versions) once a plugin is deleted.
        self.on_deleted: list[Callable[[str, list[str]], None]] = []

    # Versions ----------------------------------------------------------------------------

    def upload(self, name: str, source: PluginSource, *, create: bool,
               limits: dict[str, Any] | None = None, candidate: bool = False) -> dict[str, Any]:
        """A new version of ``name`` (``create``: the plugin must not exist yet; otherwise it
        must). Returns the version, ``deploying``; the build runs in the background. A
        ``candidate`` stays inactive once built, beside the live version (to shadow it)."""
        check_name(name)
        plugins = self.store.plugins
        with self.store.write() as db:
            exists = plugins.get(db, name) is not None
            if create and exists:
                raise RegistryConflict(f"plugin {name!r} already exists: use `plugins update` for a new version")
            if not create and not exists:
                raise RegistryNotFound(f"plugin {name!r} does not exist: use `plugins upload` first")
            if candidate and (not exists or plugins.get(db, name)["current_version"] is None):
                raise RegistryConflict(f"{name} has no live version for a candidate to be compared with: upload it "
                                       "without --candidate first")
            if not exists:
                plugins.create(db, name, now())
            version = plugins.add_version(db, name, source.digest(), source.archive(), source.handler,
                                          source.subscriptions, source.warnings, source.dropped, limits or {}, now())
            if candidate:
                plugins.mark_candidate(db, name, version)
        _log.info("deploy: %s@%s uploaded (%s), building", name, version, source.digest()[:16])
        self._builds.submit(self._run_build, name, version, source)
        return self.version(name, version)

    def resume_builds(self) -> None:
        """Build again what a stopped server left ``deploying`` (the archive is stored)."""
        for row in self.store.plugins.deploying(self.store.read()):
            try:
                # With the event matcher it was uploaded with (kept as its subscriptions).
                source = with_event_matcher(load_archive(row["archive"]), patterns_of(loads(row["subscriptions"], [])))
            except PluginInvalid as error:
                self._finish(row["plugin"], row["version"], BuildOutcome(error=str(error)))
                continue
            self._builds.submit(self._run_build, row["plugin"], row["version"], source)

    def _run_build(self, name: str, version: int, source: PluginSource) -> None:
        _log.info("build started: %s@%s", name, version, extra=logs.ids(plugin=name, version=version))
        started = time.monotonic()
        try:
            outcome = self._build(name, version, source)
        except Exception as error:  # an unexpected builder failure still ends the deploy
            _log.exception("build of %s@%s failed unexpectedly", name, version)
            outcome = BuildOutcome(error=f"the build failed unexpectedly: {error}", log=repr(error))
        seconds = time.monotonic() - started
        metrics.build_finished(outcome.error is None, seconds)
        if outcome.error is None:
            _log.info("build finished: %s@%s in %.1f s%s", name, version, seconds,
                      f", image {outcome.image}" if outcome.image else "", extra=logs.ids(plugin=name, version=version))
        else:
            # The first line only: the whole error and log are the version's (plugins build-log).
            _log.warning("build failed: %s@%s after %.1f s: %s", name, version, seconds,
                         outcome.error.splitlines()[0] if outcome.error else "", extra=logs.ids(plugin=name, version=version))
        self._finish(name, version, outcome)

    def _finish(self, name: str, version: int, outcome: BuildOutcome) -> None:
        plugins = self.store.plugins
        with self.store.write() as db:
            if plugins.get(db, name) is None:
                return  # deleted while it was building
            if outcome.error is not None:
                plugins.build_failed(db, name, version, outcome.error, outcome.log, now())
            else:
                plugins.built(db, name, version, outcome.image, outcome.freeze, outcome.log,
                              outcome.info.get("subscriptions"), outcome.info.get("warnings", []), now())
        if outcome.error is None:
            row = self.store.plugins.get(self.store.read(), name)
            live = row is None or row["current_version"] == version
            _log.info("deploy: %s@%s is %s", name, version, "live" if live else "built, a candidate (not live)")
        with self._changed:
            self._changed.notify_all()
        for callback in self.on_ready:
            callback(name, version)

    def wait(self, name: str, version: int, timeout: float | None = None) -> dict[str, Any]:
        """Block until the version is no longer deploying (or ``timeout`` passes)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version(name, version)["status"] != VersionStatus.DEPLOYING, timeout)
        return self.version(name, version)

    def rollback(self, name: str, version: int) -> dict[str, Any]:
        with self.store.write() as db:
            row = self._version_row(db, name, version)
            if row["status"] not in BUILT or not row["image"]:
                raise RegistryConflict(f"{name} v{version} is {row['status']}: only a built version can be rolled back to")
            self.store.plugins.make_live(db, name, version)
        _log.info("deploy: %s rolled back to version %s", name, version)
        return self.version(name, version)

    def delete(self, name: str) -> None:
        with self.store.write() as db:
            self.plugin_row(db, name)
            images = self.store.plugins.delete(db, name)
        _log.info("deploy: %s deleted with its %d image(s)", name, len(images))
        for callback in self.on_deleted:
            callback(name, images)

    # Activations -------------------------------------------------------------------------

    def activate(self, name: str, project_id: str) -> bool:
        """Idempotent; True when it was not active on the project. The project may be unknown.
        Refused (RegistryConflict, with the build error) when no version of the plugin is live
        or deploying: its events could only fail."""
        if not project_id:
            raise RegistryRefused("a project id is required")
        with self.store.write() as db:
            if self.plugin_row(db, name)["current_version"] is None:
                self._check_deployable(db, name)
            added = self.store.activations.add(db, name, project_id, now())
        if added:
            _log.info("deploy: %s activated on project %s", name, project_id)
        return added

    def _check_deployable(self, db, name: str) -> None:
        """Raise when the plugin has no live version and none building: every build failed."""
        plugins = self.store.plugins
        if plugins.latest_version(db, name, VersionStatus.DEPLOYING) is not None:
            return  # its events wait for the build
        newest = plugins.latest_version(db, name)
        assert newest is not None  # a plugin always has a version
        state = plugins.version_state(db, name, newest)
        raise RegistryConflict(
            f"{name} has no version that can run: v{newest} failed to build:\n{state['build_error']}\n"
            f"Fix the plugin and upload it again (plugin-runtime plugins update PATH --name {name}), then activate "
            f"it (plugin-runtime plugins build-log {name} shows the whole build log)")

    def deactivate(self, name: str, project_id: str) -> bool:
        with self.store.write() as db:
            self.plugin_row(db, name)
            removed = self.store.activations.remove(db, name, project_id)
        if removed:
            _log.info("deploy: %s deactivated on project %s", name, project_id)
        return removed

    def targets(self, db, project_id: str) -> list[dict[str, Any]]:
        """Plugins active on a project, each with the version its events go to: the current
        one, else the newest still deploying (its events wait for the build), else the newest,
        failed (its runs fail with the build error: an event is never silently dropped)."""
        return self.store.activations.targets(db, project_id)

    # Views -------------------------------------------------------------------------------

    def plugin_row(self, db, name: str):
        row = self.store.plugins.get(db, name)
        if row is None:
            raise RegistryNotFound(f"plugin {name!r} does not exist")
        return row

    def _version_row(self, db, name: str, version: int):
        row = self.store.plugins.version(db, name, version)
        if row is None:
            self.plugin_row(db, name)
            raise RegistryNotFound(f"plugin {name!r} has no version {version}")
        return row

    def version(self, name: str, version: int, with_log: bool = False) -> dict[str, Any]:
        row = self._version_row(self.store.read(), name, version)
        out = {
            "plugin": name, "version": version, "status": row["status"], "digest": row["digest"],
            "handler": row["handler"], "subscriptions": loads(row["subscriptions"], []),
            "warnings": loads(row["warnings"], []), "dropped": loads(row["dropped"], []),
            "limits": loads(row["limits"], {}),
            "image": row["image"], "freeze": loads(row["freeze"], []), "build_error": row["build_error"],
            "created_at": row["created_at"], "ready_at": row["ready_at"], "candidate": bool(row["candidate"]),
        }
        if with_log:
            out["build_log"] = row["build_log"]
        return out

    def versions(self, name: str) -> list[dict[str, Any]]:
        db = self.store.read()
        self.plugin_row(db, name)
        return [self.version(name, n) for n in self.store.plugins.version_numbers(db, name)]

    def latest(self, name: str) -> dict[str, Any]:
        db = self.store.read()
        self.plugin_row(db, name)
        number = self.store.plugins.latest_version(db, name)
        assert number is not None  # a plugin always has a version
        return self.version(name, number, with_log=True)

    def archive(self, name: str, version: int) -> bytes:
        return self._version_row(self.store.read(), name, version)["archive"]

    def plugins(self) -> list[dict[str, Any]]:
        db = self.store.read()
        out = []
        for row in self.store.plugins.names(db):
            latest = self.store.plugins.latest_version(db, row["name"])
            assert latest is not None  # a plugin always has a version
            state = self.store.plugins.version_state(db, row["name"], latest)
            out.append({"name": row["name"], "current_version": row["current_version"], "latest_version": latest,
                        "latest_status": state["status"], "latest_error": state["build_error"],
                        "projects": self.store.activations.projects(db, row["name"]), "created_at": row["created_at"]})
        return out

    def close(self) -> None:
        self._builds.shutdown(wait=False, cancel_futures=True)
