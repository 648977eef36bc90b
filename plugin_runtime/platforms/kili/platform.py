"""A project connected to Kili (``platforms.base.Platform``): plugins' actions applied through
Kili's official client, their reads answered live from Kili, for the connected project only.

Kili offers no idempotency key, so each action is applied once by its outbox key (kept in the
store once applied) and, for the actions that would otherwise repeat (an issue, a question, a
label), checked against Kili first: one already there, from an attempt that crashed before its
key was kept, is not made twice. Setting a status, properties, metadata or an issue's status
again changes nothing. Kili sends its own events as webhooks: ``apply`` returns none.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from plugin_runtime.applier.policy import Facts
from plugin_runtime.errors import PlatformRefused, PlatformUnavailable
from plugin_runtime.platforms.base import Keyed
from plugin_runtime.platforms.kili import actions, reads, webhooks
from plugin_runtime.platforms.kili.client import open_client
from plugin_runtime.store.codec import now
from plugin_runtime.store.connections import Connection

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.store import Store


class KiliPlatform:
    """See the module docstring; one per connected project."""

    shares_store = False

    def __init__(self, connection: Connection, store: Store, settings: Settings) -> None:
        self.connection, self.store = connection, store
        self.remote: str = connection.config["project"]
        self._cache = settings.data_dir / "kili"
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def kili(self) -> Any:
        """The official client, opened on first use (opening it calls Kili)."""
        with self._lock:
            if self._client is None:
                try:
                    self._client = open_client(self.connection.credentials["api_key"],
                                               self.connection.config.get("api_endpoint"), self._cache)
                except PlatformRefused as error:
                    raise PlatformUnavailable(f"Kili: {error}") from None
            return self._client

    # The port ----------------------------------------------------------------------------

    def facts(self, asset_ids: Collection[str], label_ids: Collection[str]) -> Facts:
        """Which of these assets and labels Kili has in the connected project."""
        with _unavailable("reading the assets the actions name"):
            found = {a["id"] for a in self.kili.assets(project_id=self.remote, asset_id_in=list(asset_ids),
                                                     fields=["id"], disable_tqdm=True)} if asset_ids else set()
            labels = {}
            for label_id in label_ids:
                for label in self.kili.labels(project_id=self.remote, label_id=label_id, fields=["id", "labelOf.id"],
                                              disable_tqdm=True):
                    labels[label["id"]] = label["labelOf"]["id"]
        return Facts({a: self.connection.project_id for a in found}, labels)

    def apply(self, keyed: Sequence[Keyed], at: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Apply each action not applied yet, in order, keeping its key once Kili took it."""
        from plugin_sdk.actions import dump_actions

        keys = [key for key, _ in keyed]
        done = self.store.connections.applied(self.store.read(), keys)
        for (key, action), wire in zip(keyed, dump_actions([a for _, a in keyed])):
            if key in done:
                continue
            with _unavailable(f"applying {wire['type']} to asset {wire['asset_id']}"):
                actions.apply(self.kili, self.remote, wire)
            with self.store.write() as db:
                self.store.connections.mark_applied(db, key, now())
        return []

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """A plugin's read, from Kili, for the connected project whatever it names."""
        with _unavailable(f"kili.{method}"):
            answer = reads.read(self.kili, self.remote, project_id, method, query)
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"kili.{method} took past the event's read time")
        return answer

    def receive(self, headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
        return webhooks.receive(self.connection, headers, body)

    def close(self) -> None:
        self._client = None


class _unavailable:
    """Kili's failures (down, a timeout, a GraphQL error) as PlatformUnavailable: the outbox
    retries them; a refusal of ours (PlatformRefused) passes as it is."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _tb: Any) -> None:
        if error is None or isinstance(error, (PlatformRefused, PlatformUnavailable, TimeoutError)):
            return
        if isinstance(error, Exception):
            detail = json.dumps(str(error))[1:-1][:300]
            raise PlatformUnavailable(f"Kili failed {self.doing}: {type(error).__name__}: {detail}") from error
