"""The outbox to a platform that does not share the runtime's store (as a remote one): its
actions wait in the outbox until the run commits, are retried while the platform is down, and
are applied once, by their idempotency keys.

Real parts: the runtime's store, registry and process sandboxes; the "remote" platform is the
embedded one on a database of its own, which is down (raises ConnectionError) when told."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.dispatcher import Dispatcher
from plugin_runtime.platforms.base import Keyed
from plugin_runtime.platforms.embedded import EmbeddedPlatform
from plugin_runtime.store import Store
from plugin_sdk.actions import AddToReview, CreateIssue
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import active_plugin

PLUGIN = """
    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
            self.kili.add_to_review(asset_ids=["someone-elses"])
"""
PROJECT = "proj-remote"


class Remote(EmbeddedPlatform):
    """The embedded platform in a database of its own: the runtime cannot commit with it."""

    shares_store = False

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.down = 0  # calls to apply still to fail
        self.calls = 0

    def apply(self, actions: Sequence[Keyed], at: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise ConnectionError("the platform is down")
        return super().apply(actions, at, run_id)


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def remote(tmp_path: Path, write_plugin) -> Iterator[tuple[Dispatcher, Store, Remote]]:
    store, remote_store = Store(tmp_path / "runtime.db"), Store(tmp_path / "remote.db")
    platform = Remote(remote_store)
    with remote_store.write() as db:
        platform.create_project(db, PROJECT)
        platform.create_asset(db, PROJECT, {"id": "asset-1"})
    registry, sandboxes = active_plugin(store, platform.read, write_plugin(tmp_path, PLUGIN), PROJECT)
    dispatcher = Dispatcher(store, registry, platform, sandboxes.run, concurrency=2, retry_base_s=0.05)
    yield dispatcher, store, platform
    dispatcher.close()
    registry.close()
    sandboxes.close()
    store.close()
    remote_store.close()


def outbox(store: Store) -> list[tuple[str, str, str | None]]:
    return [tuple(r) for r in store.read().execute("SELECT key, status, reason FROM outbox ORDER BY seq")]


def test_a_platform_down_gets_the_actions_once_it_is_back(remote) -> None:
    dispatcher, store, platform = remote
    platform.down = 2
    assert dispatcher.submit(make_event(id="evt-1", project_id=PROJECT, asset_id="asset-1"))
    assert dispatcher.wait_idle(timeout=60)
    [run] = store.read().execute("SELECT id, status FROM runs").fetchall()
    assert run["status"] == "succeeded"  # the run is recorded whether or not the platform is up
    wait_for(lambda: outbox(store)[0][1] == "applied")
    # The policy refused the other project's asset before anything was sent; the action it let
    # through was sent three times (down, down, up) and applied once.
    [(key, status, _), (_, refused, reason)] = outbox(store)
    assert (key, status) == (f"{run['id']}:0", "applied")
    assert refused == "rejected" and "does not exist" in reason
    assert platform.calls == 3
    assert platform.asset(platform.store.read(), PROJECT, "asset-1")["status"] == "TO_REVIEW"
    assert [r[0] for r in platform.store.read().execute("SELECT key FROM applied_actions")] == [key]
    actions = store.read().execute("SELECT seq, status FROM run_actions ORDER BY seq").fetchall()
    assert [tuple(a) for a in actions] == [(0, "applied"), (1, "rejected")]


def test_a_redelivered_action_is_a_no_op(tmp_path: Path) -> None:
    store = Store(tmp_path / "platform.db")
    platform = EmbeddedPlatform(store)
    with store.write() as db:
        platform.create_project(db, PROJECT)
        platform.create_asset(db, PROJECT, {"id": "asset-1"})
        label = platform.submit_label(db, PROJECT, "asset-1", {"jsonResponse": {}})["label"]
    issue = CreateIssue(asset_id="asset-1", label_id=label["id"], text="why?")
    for _ in range(3):  # the applier sent it, then crashed or timed out before marking it
        platform.apply([("run-1:0", issue), ("run-1:1", AddToReview(asset_id="asset-1"))], run_id="run-1")
    state = platform.asset(store.read(), PROJECT, "asset-1")
    assert [i["text"] for i in state["issues"]] == ["why?"] and state["status"] == "TO_REVIEW"
    store.close()


def test_only_a_pending_row_keeps_its_action_once_settled_it_is_in_the_runs_records(remote) -> None:
    dispatcher, store, platform = remote
    platform.down = 1_000
    assert dispatcher.submit(make_event(id="evt-1", project_id=PROJECT, asset_id="asset-1"))
    assert dispatcher.wait_idle(timeout=60)

    def payloads() -> dict[str, str]:
        return {r["status"]: r["action"] for r in store.read().execute("SELECT status, action FROM outbox")}

    pending = payloads()
    assert '"add_to_review"' in pending["pending"] and pending["rejected"] == ""  # refused: in run_actions alone
    platform.down = 0  # the drainer's next attempt, after its backoff, applies it
    wait_for(lambda: payloads() == {"applied": "", "rejected": ""})
    recorded = store.read().execute("SELECT status, action FROM run_actions ORDER BY seq").fetchall()
    assert [r["status"] for r in recorded] == ["applied", "rejected"]
    assert all('"asset_id"' in r["action"] for r in recorded)
