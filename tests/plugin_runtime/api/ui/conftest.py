"""A real service (process sandbox, SQLite, HTTP on 127.0.0.1) holding something of every kind
the dashboard shows: a plugin whose runs succeed, one that fails with hostile text in its logs
and error, a dead letter; and a logged-in dashboard session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox import process
from plugin_sdk.testing import make_event
from tests.plugin_runtime.api.workload import wait_for
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

PROJECT = "proj-console"
#: Plugin text is hostile: scripts in a log line and in an error must show as text.
SCRIPT_IN_LOG = "<script>document.title='pwned by a log line'</script>"
SCRIPT_IN_ERROR = "<script>document.title='pwned by an error'</script><img src=x onerror=\"document.title='img'\">"
BOT = f'''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.warning({SCRIPT_IN_LOG!r})
        if label["jsonResponse"].get("FAIL"):
            raise RuntimeError({SCRIPT_IN_ERROR!r})
        self.kili.add_to_review(asset_ids=[asset_id])
'''


@dataclass
class Console:
    service: Service
    succeeded: str
    failed: str
    dead: str

    def login(self) -> requests.Session:
        """A browser-like session: logged in, sending this server as its Origin."""
        session = requests.Session()
        session.headers["Origin"] = self.service.url
        answer = session.post(f"{self.service.url}/ui/login", data={"token": self.service.runtime.token},
                              allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text
        return session


def submit(service: Service, event_id: str, **response: object) -> None:
    event = make_event(id=event_id, project_id=PROJECT, asset_id=f"asset-{event_id}", json_response=dict(response))
    answer = service.post_event(event)
    assert answer.status_code == 202, answer.text


def run_of(service: Service, event_id: str) -> dict:
    [run] = [r for r in service.admin.get(f"{service.url}/v1/runs", params={"limit": 1000}, timeout=30).json()
             if r["event_id"] == event_id]
    return run


def dead_letter(service: Service, event_id: str) -> str:
    """A run dead after its retries: the sandbox cannot start (an engine that is down, as
    test_service_flows stages it), then starts again for the retry."""
    real = process._Process.__init__

    def engine_down(self, *args, **kwargs):
        raise SandboxUnavailable("no Docker engine answers (staged by the test)")

    # The worker must be started again: the warm one would serve the event.
    service.runtime.sandboxes.close()
    process._Process.__init__ = engine_down  # type: ignore[method-assign]
    try:
        submit(service, event_id)
        wait_for(lambda: run_of(service, event_id)["status"] == "dead", 60)
    finally:
        process._Process.__init__ = real  # type: ignore[method-assign]
    return run_of(service, event_id)["id"]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, database) -> Iterator[Console]:
    """The dashboard's service, on each store (SQLite, PostgreSQL)."""
    yield from open_console(tmp_path_factory, database)


def open_console(tmp_path_factory: pytest.TempPathFactory, database: object) -> Iterator[Console]:
    service = start_service(tmp_path_factory.mktemp("console"), "process", database, max_attempts=2,
                            retry_base_s=0.01)
    try:
        service.deploy("console-bot", BOT, project=PROJECT)
        submit(service, "evt-ok")
        submit(service, "evt-fail", FAIL=True)
        service.settle()
        dead = dead_letter(service, "evt-dead")
        yield Console(service, run_of(service, "evt-ok")["id"], run_of(service, "evt-fail")["id"], dead)
    finally:
        stop_service(service)
