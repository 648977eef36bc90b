"""A real runtime service on 127.0.0.1 for tests: HTTP, SQLite or PostgreSQL, and the chosen sandbox."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn

from plugin_runtime.api import create_app
from plugin_runtime.config import Settings
from plugin_runtime.registry import Registry
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.server import Runtime
from plugin_runtime.source import load_source
from plugin_runtime.webhooks import headers

REPO = Path(__file__).resolve().parents[2]
INVOICE = REPO / "example_plugins" / "invoice_qa"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Service:
    runtime: Runtime
    server: uvicorn.Server
    url: str
    data_dir: Path

    @property
    def admin(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.runtime.token}"
        return session

    def post_event(self, event: dict[str, Any] | bytes, secret: str | None = None, **extra_headers: str) -> requests.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        try:
            event_id = json.loads(body).get("id", "x")
        except (ValueError, AttributeError, RecursionError):
            event_id = "x"
        message_id = str(event_id) if re.fullmatch(r"[A-Za-z0-9._:-]{1,200}", str(event_id)) else "msg-fuzz"
        signed = headers(secret or self.runtime.webhook_secrets[0], message_id, body)
        return requests.post(f"{self.url}/v1/events", data=body, headers={**signed, **extra_headers}, timeout=30)

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "plugin_runtime", *args, "--url", self.url, "--token", self.runtime.token],
            capture_output=True, text=True, timeout=600, check=check, cwd=REPO,
        )

    def settle(self, timeout: float = 60) -> None:
        """Wait until every run is finished."""
        deadline = time.monotonic() + timeout
        while self.runtime.pending_runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.runtime.pending_runs() == 0, "runs still pending"

    def deploy(self, name: str, code: str, project: str = "proj-1", wait: bool = True) -> dict[str, Any]:
        """Upload ``code`` as the ``main.py`` of plugin ``name`` and activate it on ``project``;
        with ``wait``, return the version once it is built and active."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("main.py", code)
        response = self.admin.post(f"{self.url}/v1/plugins/{name}/versions", params={"create": "true"},
                                   data=buffer.getvalue(), timeout=60)
        assert response.status_code == 202, response.text
        assert self.admin.put(f"{self.url}/v1/plugins/{name}/projects/{project}", timeout=30).status_code == 200
        if not wait:
            return response.json()
        version = self.runtime.registry.wait(name, response.json()["version"], 60)
        assert version["status"] == "active", version
        return version

    def count(self, table: str) -> int:
        return self.runtime.store.read().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def start_service(data_dir: Path, sandbox: str, database: Any = None, **overrides: Any) -> Service:
    """``database``: None (SQLite in ``data_dir``) or a PostgreSQL server (the ``database``
    fixture), on which the service gets a fresh database."""
    if database is not None:
        overrides["database_url"] = database.database()
    settings = Settings(data_dir=data_dir, port=free_port(), sandbox=sandbox, token="test-token",
                        webhook_secret="test-secret whsec_b2xkLXNlY3JldC0xMjM0NQ==", **overrides)
    runtime = Runtime(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=settings.port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    return Service(runtime, server, settings.client_url, data_dir)


def stop_service(service: Service) -> None:
    service.server.should_exit = True
    time.sleep(0.1)
    service.runtime.close()


def active_plugin(store: Any, read: Callable[..., Any], folder: Path, project: str) -> tuple[Registry, SandboxManager]:
    """A registry on ``store`` with the plugin in ``folder`` uploaded as ``checker``, built
    for the process sandbox and active on ``project``, and that sandbox manager."""
    registry: Registry | None = None
    sandboxes = SandboxManager("process", lambda n, v: registry.version(n, v),  # type: ignore[union-attr]
                               lambda n, v: registry.archive(n, v), read)  # type: ignore[union-attr]
    registry = Registry(store, sandboxes.build)
    registry.upload("checker", load_source(folder), create=True)
    assert registry.wait("checker", 1, 60)["status"] == "active"
    registry.activate("checker", project)
    return registry, sandboxes
