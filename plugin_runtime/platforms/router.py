"""Which platform each project is on: a project connected to a platform of its own (Label
Studio, later Kili) gets that platform, every other project the default (embedded) one.

The core asks ``Platforms.of(project_id)`` and never which kind it got. A kind of platform is
a module under ``platforms/`` named in ``KINDS``, exposing ``KIND`` (a ``Kind``): how to
connect a project, open its platform from the stored ``Connection``, and disconnect it.
Connections are read from the store and kept, reloaded when one changes here (``refresh``)
and every ``reload_s`` (another process may have changed them).

Optional abilities of a connected platform, found by protocol rather than by kind: a
``Receiver`` turns the platform's webhooks into events, a ``Watcher`` looks at the platform
for what its webhooks missed (started and stopped with its connection).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import ValidationError

from plugin_runtime.errors import ConnectionRefused
from plugin_runtime.platforms.base import Mirror, Platform
from plugin_runtime.store.connections import Connection

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.store import Store

_log = logging.getLogger(__name__)

#: Platform kinds by name: the module exposing its ``KIND``. Kili's joins here.
KINDS = {"label-studio": "plugin_runtime.platforms.label_studio", "kili": "plugin_runtime.platforms.kili"}
#: Stores a platform's event; False when it was stored already. Raises ``Busy`` when full.
Submit = Callable[[dict[str, Any]], bool]


class Kind(Protocol):
    """A kind of platform a project can be connected to."""

    name: str

    def connect(self, project_id: str | None, params: dict[str, Any], runtime_url: str,
                previous: Connection | None) -> Connection:
        """Check ``params`` against the platform and set it up to send its events to
        ``runtime_url`` (idempotent: ``previous`` is the project's connection, to update);
        raises ``ConnectionRefused`` saying what to fix, leaving nothing half-made."""
        ...

    def disconnect(self, connection: Connection) -> None:
        """Undo what ``connect`` set up on the platform (its webhook), as far as it can."""
        ...

    def open(self, connection: Connection, store: Store, settings: Settings) -> Platform:
        """The platform of a connected project (opening it does not call the platform)."""
        ...


@runtime_checkable
class Receiver(Protocol):
    """A connected platform whose webhooks the runtime receives."""

    def receive(self, headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
        """The events a webhook carries (none: ignored); ``Unauthorized`` without the
        connection's secret, ``Refused`` for a body that is not the platform's webhook."""
        ...


@runtime_checkable
class Watcher(Protocol):
    """A connected platform the runtime looks at for changes its webhooks did not bring."""

    def watch(self, submit: Submit) -> None:
        """Start looking (a thread of its own), submitting the events found."""
        ...

    def close(self) -> None:
        ...


def webhook_url(runtime_url: str, project_id: str) -> str:
    """Where a connected project's platform sends its webhooks: the runtime's intake."""
    return f"{runtime_url.rstrip('/')}/v1/connections/{project_id}/webhook"


def refused_params(error: ValidationError, usage: str) -> ConnectionRefused:
    """A connect's parameters refused: ``usage`` (what it needs), then each of pydantic's
    problems as ``field: what is wrong``."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return ConnectionRefused(f"{usage} ({problems})")


def kind(name: str) -> Kind:
    """The kind of platform called ``name``; ConnectionRefused naming the known ones."""
    module = KINDS.get(name)
    if module is None:
        raise ConnectionRefused(f"unknown platform kind {name!r}: one of {', '.join(sorted(KINDS))}")
    found: Kind = importlib.import_module(module).KIND
    return found


class Platforms:
    """The platform of each project (see the module docstring)."""

    def __init__(self, default: Platform, store: Store | None = None, settings: Settings | None = None,
                 reload_s: float = 5.0) -> None:
        self.default, self.store, self.settings, self.reload_s = default, store, settings, reload_s
        self._lock = threading.RLock()
        #: project id -> (the connection it was opened from, its platform)
        self._open: dict[str, tuple[Connection, Platform]] = {}
        self._loaded_at = float("-inf")
        self._submit: Submit | None = None

    @property
    def may_defer(self) -> bool:
        """Whether some project's platform may not share the store (so an outbox drainer is needed)."""
        return self.store is not None or not self.default.shares_store

    def of(self, project_id: str) -> Platform:
        """The platform of ``project_id``: its connected one, else the default."""
        opened = self._connections().get(project_id)
        return self.default if opened is None else opened[1]

    def connected(self, project_id: str) -> Platform | None:
        """The connected platform of ``project_id``, None when it is the default's."""
        opened = self._connections().get(project_id)
        return None if opened is None else opened[1]

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """A plugin's read, answered by its project's platform (``reads.DeadlineReader``)."""
        return self.of(project_id).read(project_id, method, query, deadline)

    # The intake's mirror: only a platform keeping its own copy of events (the embedded) ----

    def mirror(self, event: dict[str, Any]) -> None:
        platform = self.of(event["project_id"])
        if isinstance(platform, Mirror):
            platform.mirror(event)

    def snapshot(self, event: dict[str, Any]) -> dict[str, Any]:
        platform = self.of(event["project_id"])
        return platform.snapshot(event) if isinstance(platform, Mirror) else {}

    # Connections ---------------------------------------------------------------------------

    def watch(self, submit: Submit) -> None:
        """Start the connected platforms' watchers, now and as projects get connected."""
        with self._lock:
            self._submit = submit
        self.refresh()

    def refresh(self) -> None:
        """Reload the connections now (one was added, changed or removed)."""
        with self._lock:
            self._loaded_at = float("-inf")
        self._connections()

    def _connections(self) -> dict[str, tuple[Connection, Platform]]:
        if self.store is None or time.monotonic() - self._loaded_at < self.reload_s:
            return self._open
        with self._lock:
            if time.monotonic() - self._loaded_at < self.reload_s:
                return self._open
            stored = {c.project_id: c for c in self.store.connections.all(self.store.read())}
            opened = dict(self._open)
            for project_id, (connection, platform) in self._open.items():
                if stored.get(project_id) != connection:
                    del opened[project_id]
                    _close(platform)
            for project_id, connection in stored.items():
                if project_id not in opened:
                    opened[project_id] = (connection, self._opened(connection))
            self._open, self._loaded_at = opened, time.monotonic()
            return opened

    def _opened(self, connection: Connection) -> Platform:
        from plugin_runtime.config import Settings

        assert self.store is not None
        platform = kind(connection.kind).open(connection, self.store, self.settings or Settings())
        if self._submit is not None and isinstance(platform, Watcher):
            platform.watch(self._submit)
        return platform

    def close(self) -> None:
        with self._lock:
            opened, self._open = self._open, {}
            self._loaded_at = float("inf")  # closed: nothing is opened again
        for _, platform in opened.values():
            _close(platform)


def per_project(platform: Platform | Platforms) -> Platforms:
    """``platform`` as the platform of every project, unless it already routes per project."""
    return platform if isinstance(platform, Platforms) else Platforms(platform)


def _close(platform: Platform) -> None:
    close = getattr(platform, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # a platform failing to close must not keep the others open
            _log.exception("a connected platform failed to close")
