"""Per-project platforms: a connected project's runs read from and apply to its own platform
(through the outbox, as a remote one), every other project's the embedded default, in one
runtime at the same time.

Real parts: the runtime's store, registry, process sandboxes and dispatcher. The connected
"remote" kind is the embedded platform on a database of its own (as in test_outbox), registered
as a platform kind the way a real one is: a module named in ``KINDS`` exposing ``KIND``."""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.config import Settings
from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.errors import ConnectionRefused
from plugin_runtime.platforms import router
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.platforms.router import Platforms, per_project
from plugin_runtime.store import Store
from plugin_runtime.store.connections import Connection
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import active_plugin

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            [project] = self.kili.projects(project_id=self.project_id)
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"title": project["title"]}])
"""
LOCAL, CONNECTED = "proj-local", "proj-connected"


class Elsewhere(EmbeddedPlatform):
    """The embedded platform in a database of its own: a platform the runtime cannot commit with."""

    shares_store = False
    # A remote platform keeps no copy of what the runtime's events say (not a ``Mirror``).
    mirror = snapshot = None  # type: ignore[assignment]
    opened: list[Elsewhere] = []

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.closed = False
        Elsewhere.opened.append(self)

    def close(self) -> None:
        self.closed = True
        self.store.close()


class ElsewhereKind:
    name = "elsewhere"

    def connect(self, project_id: str | None, params: dict[str, Any], runtime_url: str,
                previous: Connection | None) -> Connection:
        raise NotImplementedError  # connected directly through the store in these tests

    def disconnect(self, connection: Connection) -> None:
        pass

    def open(self, connection: Connection, store: Store, settings: Settings) -> Elsewhere:
        return Elsewhere(Store(connection.config["path"]))


@pytest.fixture
def elsewhere_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("elsewhere_kind")
    module.KIND = ElsewhereKind()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "elsewhere_kind", module)
    monkeypatch.setitem(router.KINDS, "elsewhere", "elsewhere_kind")
    Elsewhere.opened.clear()


def connect(store: Store, project_id: str, path: Path) -> None:
    with store.write() as db:
        store.connections.put(db, Connection(project_id, "elsewhere", {"path": str(path)}, "s3cret",
                                             {"token": "t"}, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"))


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def runtime(tmp_path: Path, write_plugin, elsewhere_kind) -> Iterator[tuple[Dispatcher, Store, Store]]:
    store, remote_store = Store(tmp_path / "runtime.db"), Store(tmp_path / "remote.db")
    platform = EmbeddedPlatform(remote_store)
    with remote_store.write() as db:
        platform.create_project(db, CONNECTED, title="remote title")
        platform.create_asset(db, CONNECTED, {"id": "asset-r"})
    connect(store, CONNECTED, tmp_path / "remote.db")
    platforms = Platforms(EmbeddedPlatform(store), store)
    folder = write_plugin(tmp_path, PLUGIN)
    registry, sandboxes = active_plugin(store, platforms.read, folder, CONNECTED)
    registry.activate("checker", LOCAL)
    dispatcher = Dispatcher(store, registry, platforms, sandboxes.run, concurrency=2, retry_base_s=0.05)
    yield dispatcher, store, remote_store
    dispatcher.close()
    platforms.close()
    registry.close()
    sandboxes.close()
    store.close()
    remote_store.close()


def metadata(store: Store, asset_id: str) -> Any:
    row = store.read().execute("SELECT json_metadata FROM assets WHERE id = ?", (asset_id,)).fetchone()
    return None if row is None else row[0]


def test_each_project_reads_from_and_applies_to_its_own_platform(runtime) -> None:
    dispatcher, store, remote_store = runtime
    assert dispatcher.submit(make_event(id="evt-local", project_id=LOCAL, asset_id="asset-l",
                                        project={"id": LOCAL, "title": "local title"}))
    assert dispatcher.submit(make_event(id="evt-remote", project_id=CONNECTED, asset_id="asset-r", context=False))
    assert dispatcher.wait_idle(timeout=60)
    runs = dict(store.read().execute("SELECT event_id, status FROM runs").fetchall())
    assert runs == {"evt-local": "succeeded", "evt-remote": "succeeded"}
    # The local project's event was mirrored into the embedded platform and its action applied
    # there in the run's transaction; the connected project's never touched the runtime's tables.
    assert metadata(store, "asset-l") == '{"title":"local title"}'
    assert metadata(store, "asset-r") is None
    assert store.read().execute("SELECT COUNT(*) FROM projects WHERE id = ?", (CONNECTED,)).fetchone()[0] == 0
    # Its action went through the outbox to its own platform, which answered its read too.
    wait_for(lambda: metadata(remote_store, "asset-r") == '{"title":"remote title"}')
    statuses = dict(store.read().execute("SELECT key, status FROM outbox").fetchall())
    assert sorted(statuses.values()) == ["applied", "applied"]


def test_an_action_on_an_asset_the_connected_platform_lacks_is_refused_by_its_facts(runtime) -> None:
    dispatcher, store, remote_store = runtime
    # asset-l exists in the embedded platform, not in the connected project's own platform.
    assert dispatcher.submit(make_event(id="evt-local", project_id=LOCAL, asset_id="asset-l"))
    assert dispatcher.wait_idle(timeout=60)
    assert dispatcher.submit(make_event(id="evt-r2", project_id=CONNECTED, asset_id="asset-l", context=False))
    assert dispatcher.wait_idle(timeout=60)
    [(status, reason)] = store.read().execute(
        "SELECT o.status, o.reason FROM outbox o JOIN runs r ON r.id = o.run_id WHERE r.event_id = 'evt-r2'").fetchall()
    assert status == "rejected" and reason == "asset 'asset-l' does not exist"


def test_connecting_and_disconnecting_reroutes_a_project(tmp_path: Path, elsewhere_kind) -> None:
    store = Store(tmp_path / "runtime.db")
    default = EmbeddedPlatform(store)
    platforms = Platforms(default, store, reload_s=3600)
    assert platforms.of("proj-x") is default and platforms.connected("proj-x") is None
    connect(store, "proj-x", tmp_path / "x.db")
    assert platforms.of("proj-x") is default  # not reloaded yet: connections are kept
    platforms.refresh()
    [opened] = Elsewhere.opened
    assert platforms.of("proj-x") is opened and platforms.connected("proj-x") is opened
    assert platforms.of("proj-y") is default
    with store.write() as db:
        assert store.connections.remove(db, "proj-x")
    platforms.refresh()
    assert platforms.of("proj-x") is default and opened.closed
    platforms.close()
    store.close()


def test_a_changed_connection_is_opened_again_and_the_old_one_closed(tmp_path: Path, elsewhere_kind) -> None:
    store = Store(tmp_path / "runtime.db")
    platforms = Platforms(EmbeddedPlatform(store), store, reload_s=0)
    connect(store, "proj-x", tmp_path / "x.db")
    first = platforms.of("proj-x")
    assert platforms.of("proj-x") is first  # unchanged: the same platform
    connect(store, "proj-x", tmp_path / "y.db")
    second = platforms.of("proj-x")
    assert second is not first and first.closed and not second.closed
    platforms.close()
    assert second.closed
    store.close()


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConnectionRefused, match="unknown platform kind 'nope': one of .*label-studio"):
        router.kind("nope")


def test_a_single_platform_serves_every_project(tmp_path: Path) -> None:
    store = Store(tmp_path / "runtime.db")
    platform = EmbeddedPlatform(store)
    platforms = per_project(platform)
    assert platforms.of("a") is platform and platforms.of("b") is platform
    assert per_project(platforms) is platforms and not platforms.may_defer
    store.close()
