"""``/metrics``: the runtime's counters move as events, runs, actions, builds and refused webhooks
happen; its gauges read the queue, the warm sandboxes and the dead letters when scraped; a
token closes it when one is set; the Grafana dashboard asks only for metrics it exposes."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from plugin_runtime.api.metrics import gauges
from plugin_runtime.metrics import Gauges, exposition
from plugin_runtime.sandbox.manager import SandboxManager
from plugin_runtime.store import Store
from plugin_runtime.store.codec import stamp
from plugin_runtime.store.connections import Connection
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service

BOT = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if label["jsonResponse"].get("fail"):
            raise ValueError("asked to fail")
        self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.add_to_review(asset_ids=["asset-of-nobody"])
'''
PROJECT = "proj-metrics"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the text format."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database) -> Iterator[Service]:
    """One service per store for the module: each test reads what its own requests moved."""
    running = start_service(tmp_path_factory.mktemp("metrics"), "process", database)
    yield running
    stop_service(running)


def scrape(service: Service, **headers: str) -> requests.Response:
    return requests.get(f"{service.url}/metrics", headers=headers, timeout=30)


def test_counters_follow_events_runs_actions_builds_and_refused_webhooks(service: Service) -> None:
    before = samples(scrape(service).text)
    service.deploy("metered", BOT, project=PROJECT)
    for number, fail in enumerate((False, False, True)):
        event = make_event(id=f"evt-m-{number}", project_id=PROJECT, asset_id=f"asset-m-{number}",
                           json_response={"fail": fail})
        assert service.post_event(event).status_code == 202
    forged = make_event(id="evt-forged", project_id=PROJECT, asset_id="asset-x", json_response={})
    assert service.post_event(forged, secret="not-the-secret").status_code == 401
    service.settle()
    answer = scrape(service)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
    after = samples(answer.text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Two events of the webhook, and the send-backs' events the embedded platform emitted.
    assert moved("plugin_runtime_events_received_total", source="webhook", project=PROJECT) == 3
    assert moved("plugin_runtime_events_received_total", source="platform", project=PROJECT) == 2
    assert moved("plugin_runtime_runs_ended_total", plugin="metered", status="succeeded", outcome="none") == 2
    assert moved("plugin_runtime_runs_ended_total", plugin="metered", status="failed", outcome="error") == 1
    assert moved("plugin_runtime_run_duration_seconds_count", plugin="metered") == 3
    assert moved("plugin_runtime_actions_total", type="send_back_to_queue", status="applied") == 2
    assert moved("plugin_runtime_actions_total", type="add_to_review", status="rejected") == 2
    assert moved("plugin_runtime_builds_total", result="succeeded") == 1
    assert moved("plugin_runtime_build_duration_seconds_count", result="succeeded") == 1
    assert moved("plugin_runtime_webhook_signature_failures_total") == 1
    assert moved("plugin_runtime_webhooks_refused_total", status="401") == 1
    assert moved("plugin_runtime_sandboxes_started_total") >= 2  # the upload's check, then the project's worker
    assert value(after, "plugin_runtime_queue_depth") == 0
    assert value(after, "plugin_runtime_oldest_pending_run_age_seconds") == 0
    assert value(after, "plugin_runtime_sandboxes_warm") >= 1
    assert value(after, "plugin_runtime_dead_letters") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_connected_platforms_webhook_with_a_wrong_secret_counts_as_a_signature_failure(service: Service) -> None:
    store = service.runtime.store
    # Port 9 (discard): nothing answers there, and nothing here needs Label Studio to.
    connection = Connection("proj-ls", "label-studio", {"url": "http://127.0.0.1:9", "project": 1, "bot_user_id": 1},
                            "the-connection-secret", {"token": "t"}, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    with store.write() as db:
        store.connections.put(db, connection)
    service.runtime.platforms.refresh()
    before = samples(scrape(service).text)
    refused = requests.post(f"{service.url}/v1/connections/proj-ls/webhook", data=b"{}", timeout=30,
                            headers={"X-Plugin-Runtime-Secret": "not-the-secret"})
    assert refused.status_code == 401
    after = samples(scrape(service).text)
    for name, labels in (("plugin_runtime_webhook_signature_failures_total", {}),
                         ("plugin_runtime_webhooks_refused_total", {"status": "401"})):
        assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_the_gauges_read_the_queue_when_scraped(tmp_path: Path) -> None:
    store = Store(tmp_path / "runtime.db")
    try:
        with store.write() as db:
            for number, project in enumerate(("proj-a", "proj-a", "proj-b")):
                seq = store.events.insert(db, {"id": f"evt-{number}", "type": "onSubmit", "project_id": project},
                                          "webhook", None, None, 0, f"evt-{number}", stamp_ago(600 - number))
                store.runs.insert(db, f"run-{number}", f"evt-{number}", seq, "bot", 1, project, None,
                                  stamp_ago(600 - number))
            store.runs.end_bare(db, "run-2", "dead", "infrastructure", "engine down", stamp_ago(0))
        runtime = types.SimpleNamespace(store=store, sandboxes=SandboxManager("process", None, None, None))
        scraped = samples(exposition(gauges(runtime))().decode())  # type: ignore[arg-type]
    finally:
        store.close()
    assert value(scraped, "plugin_runtime_queue_depth") == 2
    assert value(scraped, "plugin_runtime_project_queue_depth", project="proj-a") == 2
    assert value(scraped, "plugin_runtime_dead_letters") == 1
    assert 590 < value(scraped, "plugin_runtime_oldest_pending_run_age_seconds") < 3600
    assert value(scraped, "plugin_runtime_sandboxes_warm") == 0


def stamp_ago(seconds: float) -> str:
    import datetime

    return stamp(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds))


def test_a_metrics_token_closes_metrics_to_anyone_without_it_or_the_admin_token(tmp_path: Path) -> None:
    service = start_service(tmp_path / "data", "process", metrics_token="scraper-token")
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scraper-token"}):
            refused = scrape(service, **headers)
            assert refused.status_code == 401 and "PLUGIN_RUNTIME_METRICS_TOKEN" in refused.json()["detail"]
            assert "plugin_runtime_" not in refused.text
        for token in ("scraper-token", service.runtime.token):
            assert "plugin_runtime_queue_depth" in scrape(service, Authorization=f"Bearer {token}").text
    finally:
        stop_service(service)


def test_metrics_are_open_without_a_metrics_token(service: Service) -> None:
    assert scrape(service).status_code == 200


def test_the_grafana_dashboard_asks_only_for_metrics_the_runtime_exposes() -> None:
    dashboard = json.loads((REPO / "grafana" / "plugin-runtime.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 12
    exposed = set()
    text = exposition(Gauges(dict, float, int, int))().decode()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        exposed |= {name, f"{name}_total"} if kind == "counter" else {name}
        if kind == "histogram":
            exposed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    asked = {name for expr in exprs for name in re.findall(r"\bplugin_runtime_[a-z_]+", expr)}
    assert asked and asked <= exposed, asked - exposed
    for wanted in ("events_received", "runs_ended", "run_duration_seconds", "queue_depth", "oldest_pending",
                   "sandboxes_warm", "sandboxes_started", "sandboxes_replaced", "builds", "build_duration",
                   "actions", "webhook_signature_failures"):
        assert any(wanted in name for name in asked), wanted
