"""The runtime's own log (``runtime.log`` in the data directory, and stderr): one line per run
when it ends, builds, deploys, retries, dead letters and refused webhooks, with their ids, and
never a token, a secret or what an event holds.

A real service (HTTP, SQLite, process sandboxes) and a real ``plugin-runtime serve``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError

from plugin_runtime import logs
from plugin_runtime.config import Settings
from plugin_runtime.statuses import RunStatus
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import REPO, Service, free_port, start_service, stop_service
from tests.plugin_runtime.test_dispatcher import PROJECT, lane, runs, submit_all  # noqa: F401 - lane: a fixture

PLUGIN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("saw %s", label["jsonResponse"])
        if label["jsonResponse"].get("fail"):
            raise ValueError(f"refusing {label['jsonResponse']}")
        self.kili.add_to_review(asset_ids=[asset_id])
'''
#: What an event holds: it reaches the plugin and its run's logs, never the runtime's log.
PAYLOAD = "iban-FR76-3000-6000-secret-note"
#: The service's credentials (service_fixtures.start_service).
CREDENTIALS = ("test-token", "test-secret", "whsec_b2xkLXNlY3JldC0xMjM0NQ==", "b2xkLXNlY3JldC0xMjM0NQ")


@pytest.fixture
def logged_service(tmp_path: Path, database) -> Iterator[Service]:
    service = start_service(tmp_path / "data", "process", database)
    detach = logs.configure(service.data_dir, "INFO")
    try:
        yield service
    finally:
        stop_service(service)
        detach()


def test_a_service_logs_each_run_build_deploy_and_refused_webhook_with_ids_only(logged_service: Service) -> None:
    service = logged_service
    service.deploy("logbot", PLUGIN, project="proj-1")
    for number, fail in enumerate((False, True), 1):
        event = make_event(id=f"evt-log-{number}", project_id="proj-1", asset_id=f"asset-{number}",
                           json_response={"note": PAYLOAD, "fail": fail})
        assert service.post_event(event).status_code == 202
    forged = make_event(id="evt-forged", project_id="proj-1", asset_id="asset-9", json_response={"note": PAYLOAD})
    assert service.post_event(forged, secret="not-the-secret").status_code == 401
    service.settle()

    text = (service.data_dir / "runtime.log").read_text(encoding="utf-8")
    done = {run["event_id"]: run for run in service.admin.get(f"{service.url}/v1/runs", timeout=30).json()}
    assert {event: run["status"] for event, run in done.items()} == {"evt-log-1": "succeeded", "evt-log-2": "failed"}
    for event_id, outcome in (("evt-log-1", "-"), ("evt-log-2", "error")):
        run = done[event_id]
        assert (f"run ended: run={run['id']} event={event_id} plugin=logbot@1 project=proj-1 "
                f"status={run['status']} outcome={outcome} duration_ms=") in text, text
    for line in ("build started: logbot@1", "build finished: logbot@1", "deploy: logbot@1 is live",
                 "deploy: logbot activated on project proj-1", "webhook refused: id=evt-forged status=401"):
        assert line in text, text
    assert " WARNING plugin_runtime.runs: run ended: " in text  # the failed run stands out
    for secret in (*CREDENTIALS, PAYLOAD, "refusing"):
        assert secret not in text, f"{secret!r} is in runtime.log:\n{text}"


def test_retries_and_dead_letters_are_logged(lane, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    detach = logs.configure(tmp_path / "log", "INFO")
    try:
        dispatcher, store, _ = lane({"evt-a": "raise"}, max_attempts=2)
        submit_all(dispatcher, "evt-a", "evt-b")
    finally:
        detach()
    text = (tmp_path / "log" / "runtime.log").read_text(encoding="utf-8")
    dead = store.read().execute("SELECT id FROM runs WHERE event_id = 'evt-a'").fetchone()[0]
    assert runs(store)["evt-a"][:2] == ("dead", "infrastructure")
    assert f"run {dead} attempt 1 of 2 failed, retrying in " in text, text
    assert f"run {dead} dead letter after 2 attempt(s) (runs retry redelivers it): the runtime failed" in text
    assert (f" ERROR plugin_runtime.runs: run ended: run={dead} event=evt-a plugin=checker@1 project={PROJECT} "
            "status=dead outcome=infrastructure") in text
    assert "event=evt-b plugin=checker@1" in text and "status=succeeded" in text


def test_an_id_holding_a_newline_cannot_forge_a_line(tmp_path: Path) -> None:
    detach = logs.configure(tmp_path, "INFO")
    try:
        logs.run_ended("run-1", "evt-1\n2026-01-01 INFO plugin_runtime.runs: run ended: forged", "bot", 1, "proj-1",
                       RunStatus.SUCCEEDED, None, 1.0)
    finally:
        detach()
    lines = (tmp_path / "runtime.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert "event=evt-1\\n2026-01-01 INFO" in lines[0]


def test_the_level_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLUGIN_RUNTIME_LOG_LEVEL", "warning")
    level = Settings().log_level
    assert level == "WARNING"
    detach = logs.configure(tmp_path, level)
    try:
        logs.run_ended("run-ok", "evt-1", "bot", 1, "proj-1", RunStatus.SUCCEEDED, None, 1.0)
        logs.run_ended("run-failed", "evt-2", "bot", 1, "proj-1", RunStatus.FAILED, "timeout", 1.0)
    finally:
        detach()
    text = (tmp_path / "runtime.log").read_text(encoding="utf-8")
    assert "run=run-failed" in text and "run=run-ok" not in text
    monkeypatch.setenv("PLUGIN_RUNTIME_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()


def test_json_lines_carry_the_ids_as_fields_and_cannot_be_forged(tmp_path: Path) -> None:
    detach = logs.configure(tmp_path, "INFO", fmt="json")
    try:
        logs.run_ended("run-1", "evt-1\n{\"level\": \"INFO\"}", "bot", 3, "proj-1", RunStatus.FAILED, "timeout", 12.5, 2)
        try:
            raise RuntimeError("the runtime's own failure")
        except RuntimeError:
            logging.getLogger("plugin_runtime.dispatcher").exception("run %s failed unexpectedly", "run-2",
                                                                     extra=logs.ids(run="run-2", plugin="bot"))
    finally:
        detach()
    lines = (tmp_path / "runtime.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    ended, failure = (json.loads(line) for line in lines)
    assert ended["level"] == "WARNING" and ended["logger"] == "plugin_runtime.runs" and ended["time"].endswith("Z")
    assert {key: ended[key] for key in logs.IDS} == {"run_id": "run-1", "event_id": 'evt-1\n{"level": "INFO"}',
                                                     "plugin": "bot", "version": 3, "project_id": "proj-1"}
    assert ended["message"].startswith("run ended: run=run-1 event=evt-1\n")
    assert failure["run_id"] == "run-2" and "event_id" not in failure
    assert "Traceback" in failure["exception"] and "the runtime's own failure" in failure["exception"]


def test_retries_dead_letters_and_builds_carry_their_ids_in_json(lane, tmp_path: Path) -> None:  # noqa: F811
    detach = logs.configure(tmp_path / "log", "INFO", fmt="json")
    try:
        dispatcher, store, _ = lane({"evt-a": "raise"}, max_attempts=2)
        submit_all(dispatcher, "evt-a")
    finally:
        detach()
    lines = [json.loads(line) for line in (tmp_path / "log" / "runtime.log").read_text(encoding="utf-8").splitlines()]
    dead = store.read().execute("SELECT id FROM runs WHERE event_id = 'evt-a'").fetchone()[0]
    about_run = [line for line in lines if line.get("run_id") == dead]
    starts = (f"run {dead} attempt 1 of 2 failed, retrying in ", f"run {dead} dead letter after 2 attempt(s)",
              f"run ended: run={dead} ")
    assert len(about_run) == 3 and all(line["message"].startswith(start) for line, start in zip(about_run, starts))
    assert all(line["event_id"] == "evt-a" and line["plugin"] == "checker" and line["version"] == 1
               and line["project_id"] == PROJECT for line in about_run)


def test_the_format_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_RUNTIME_LOG_FORMAT", "JSON")
    assert Settings().log_format == "json"
    monkeypatch.setenv("PLUGIN_RUNTIME_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_logs_to_stderr_and_to_runtime_log_in_its_data_directory(tmp_path: Path, log_format: str) -> None:
    data, port = tmp_path / "data", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PLUGIN_RUNTIME_")}
    env["PLUGIN_RUNTIME_LOG_FORMAT"] = log_format
    server = subprocess.Popen(
        [sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process", "--port", str(port),
         "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                requests.get(f"{url}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        refused = requests.post(f"{url}/v1/events", data=b'{"id": "evt-unsigned"}', timeout=30,
                                headers={"webhook-id": "evt-unsigned", "webhook-timestamp": str(int(time.time())),
                                         "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"})
        assert refused.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    text = (data / "runtime.log").read_text(encoding="utf-8")
    assert "webhook refused: id=evt-unsigned status=401" in text
    if log_format == "json":
        assert all(json.loads(line)["logger"].startswith("plugin_runtime") for line in text.splitlines())
    assert "webhook refused: id=evt-unsigned status=401" in stderr
    for secret in ((data / "token").read_text().strip(), (data / "webhook-secret").read_text().strip()):
        assert secret not in text and secret not in stderr
