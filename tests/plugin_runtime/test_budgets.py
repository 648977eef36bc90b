"""Event budgets, caused events against the queue, merged actions and bounded reads, through
the real service (HTTP, SQLite, process sandbox) with small limits so each bound is reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin_runtime.budget import EventBudget, RootUsage, over_budget, queue_full
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

#: Sends its event's asset back ten times (identical: merged into one) and ``fan`` other assets
#: of the project back once each (distinct: a real fan-out), on every event it sees.
STORM = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.storm(asset_id)

    def on_send_back_to_queue(self, asset_id):
        self.storm(asset_id)

    def storm(self, asset_id):
        for _ in range(10):
            self.kili.send_back_to_queue(asset_ids=[asset_id])
        others = [f"{self.project_id}-asset-{i}" for i in range(FAN)]
        if others:
            self.kili.send_back_to_queue(asset_ids=others)
'''

BENIGN = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_review(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''



def make_project(service: Service, project: str, assets: int) -> None:
    assert service.admin.post(f"{service.url}/v1/projects", json={"id": project}, timeout=30).status_code == 201
    for number in range(assets):
        response = service.admin.post(f"{service.url}/v1/projects/{project}/assets",
                                      json={"id": f"{project}-asset-{number}"}, timeout=30)
        assert response.status_code == 201, response.text


def post(service: Service, event_id: str, project: str, asset: str, kind: str = "onSubmit") -> None:
    event = {"id": event_id, "type": kind, "project_id": project, "asset_id": asset,
             "label": {"id": f"label-{event_id}", "labelType": "REVIEW" if kind == "onReview" else "DEFAULT",
                       "jsonResponse": {}}}
    response = service.post_event(event)
    assert response.status_code == 202, response.text


def run_rows(service: Service, where: str, *params: object) -> list[dict]:
    rows = service.runtime.store.read().execute(f"SELECT * FROM runs WHERE {where}", params).fetchall()
    return [dict(row) for row in rows]


def show(service: Service, run_id: str) -> dict:
    response = service.admin.get(f"{service.url}/v1/runs/{run_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def assert_benign_still_runs(service: Service, project: str, event_id: str, plugin: str = "benign") -> None:
    post(service, event_id, project, f"{project}-asset-0", "onReview")
    service.settle()
    [run] = run_rows(service, "event_id = ? AND plugin = ?", event_id, plugin)
    assert run["status"] == "succeeded", run


# The decisions, pure ---------------------------------------------------------------------

def test_the_budget_admits_whole_events_until_either_limit_then_stays_spent() -> None:
    budget = EventBudget(max_runs=10, max_events=3)
    assert over_budget(RootUsage(caused_runs=8, caused_events=1), budget, 2) is None
    assert "MAX_CAUSED_RUNS" in over_budget(RootUsage(caused_runs=9, caused_events=1), budget, 2)
    assert "MAX_CAUSED_EVENTS" in over_budget(RootUsage(caused_runs=0, caused_events=3), budget, 0)
    spent = RootUsage(caused_runs=0, caused_events=0, exceeded="earlier reason")
    assert over_budget(spent, budget, 0) == "earlier reason"
    assert queue_full(1, 1, 2, "project 'p'", "S") is None
    assert "project 'p' had 2 pending runs (limit 2, S)" in queue_full(2, 1, 2, "project 'p'", "S")
    assert queue_full(5, 0, 2, "project 'p'", "S") is None  # no run to queue, nothing to skip


# Through the service ---------------------------------------------------------------------

@pytest.fixture()
def small(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database, max_caused_runs=6, max_caused_events=1000,
                            max_queue_per_project=1000, max_reads_per_event=50)
    yield running
    stop_service(running)


def test_identical_actions_of_a_run_apply_once_and_the_chain_stays_linear(small: Service) -> None:
    make_project(small, "proj-merge", 1)
    for name in ("echo-a", "echo-b"):
        small.deploy(name, STORM.replace("FAN", "0"), "proj-merge")
    post(small, "evt-merge", "proj-merge", "proj-merge-asset-0")
    small.settle()
    runs = run_rows(small, "root_id = 'evt-merge'")
    # One send-back per run, not ten: two runs per level (the other plugin's), down to the
    # depth limit, instead of 2 + 20 + 200 + 2000.
    assert len(runs) == 2 + 2 + 2 + 2 and all(r["status"] == "succeeded" for r in runs)
    root = small.runtime.store.read().execute("SELECT * FROM events WHERE id = 'evt-merge'").fetchone()
    assert root["caused_runs"] == 6 and root["budget_exceeded"] is None
    for run in runs:
        detail = show(small, run["id"])
        assert [(a["action"]["type"], a["status"]) for a in detail["actions"]] == [("send_back_to_queue", "applied")]
        assert any("9 identical action(s) merged" in line["message"] for line in detail["logs"])


def test_a_spent_budget_stops_the_chain_and_is_reported(small: Service) -> None:
    make_project(small, "proj-fan", 4)
    for name in ("fan-a", "fan-b"):
        small.deploy(name, STORM.replace("FAN", "4"), "proj-fan")
    small.deploy("benign", BENIGN, "proj-fan")
    post(small, "evt-fan", "proj-fan", "proj-fan-asset-0")
    small.settle()
    caused = run_rows(small, "root_id = 'evt-fan' AND event_id != 'evt-fan'")
    # Each run causes 4 events of one run each (the other plugin's): 6 fit, then none.
    assert len(caused) == 6
    root = small.runtime.store.read().execute("SELECT * FROM events WHERE id = 'evt-fan'").fetchone()
    assert root["caused_runs"] == 6 and root["caused_events"] == 6 and root["dropped_events"] > 0
    assert "PLUGIN_RUNTIME_MAX_CAUSED_RUNS" in root["budget_exceeded"]
    stoppers = [r for r in run_rows(small, "root_id = 'evt-fan'")
                if json.loads(r["metrics"]).get("caused", {}).get("dropped_events")]
    assert stoppers
    detail = show(small, stoppers[0]["id"])
    assert detail["root"]["budget_exceeded"] == root["budget_exceeded"]
    assert any("event budget of root event 'evt-fan' spent" in line["message"] for line in detail["logs"])
    human = small.cli("runs", "show", stoppers[0]["id"])
    assert human.returncode == 0 and "budget exceeded" in human.stdout and "dropped (budget)" in human.stdout
    listed = small.cli("runs", "list", "--root", "evt-fan")
    assert "budget exceeded by the chain of event evt-fan: its caused runs reached 6" in listed.stdout
    assert len(json.loads(small.cli("runs", "list", "--root", "evt-fan", "--json").stdout)) == 2 + 6
    assert_benign_still_runs(small, "proj-fan", "evt-after-fan")


def test_caused_events_count_against_the_project_queue(tmp_path: Path, database) -> None:
    service = start_service(tmp_path / "data", "process", database, max_queue_per_project=2)
    try:
        make_project(service, "proj-queue", 5)
        service.deploy("fan", STORM.replace("FAN", "5").replace("def on_send_back_to_queue", "def _unused"),
               "proj-queue")
        service.deploy("listener", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                    "    def on_send_back_to_queue(self, asset_id):\n        self.logger.info('heard %s', asset_id)\n",
               "proj-queue")
        post(service, "evt-queue", "proj-queue", "proj-queue-asset-0")
        service.settle()
        listened = run_rows(service, "plugin = 'listener' ORDER BY event_seq")
        # The fan's own run is pending while it finishes: one place left of 2, then the queue is full.
        assert [r["status"] for r in listened] == ["succeeded"] + ["skipped"] * 4
        skipped = listened[1]
        assert skipped["outcome"] == "queue_full" and "PLUGIN_RUNTIME_MAX_QUEUE_PER_PROJECT" in skipped["error"]
        events = service.runtime.store.read().execute("SELECT COUNT(*) FROM events WHERE root_id = 'evt-queue'").fetchone()[0]
        assert events == 1 + 5  # every caused event is recorded, none lost
        [fan] = run_rows(service, "plugin = 'fan'")
        assert any("4 run(s) of events this run caused were skipped" in line["message"]
                   for line in show(service, fan["id"])["logs"])
        listed = json.loads(service.cli("runs", "list", "--status", "skipped", "--json").stdout)
        assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in listened[1:])
        assert service.cli("runs", "retry", skipped["id"]).returncode == 0
        service.settle()
        assert show(service, skipped["id"])["status"] == "succeeded"
    finally:
        stop_service(service)


READER = '''
from plugin_sdk import PluginCore, ReadLimitExceeded

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        page = self.kili.labels(project_id=self.project_id, first=1, skip=1, fields=["id"])
        counted = self.kili.count_labels(project_id=self.project_id)
        assets = self.kili.count_assets(project_id=self.project_id, status_in=["LABELED"])
        self.logger.info("page %s of %s labels, %s labeled", [l["id"] for l in page], counted, assets)
        try:
            while True:
                self.kili.assets(project_id=self.project_id, asset_id=asset_id)
        except ReadLimitExceeded as refused:
            self.logger.info("refused: %s", refused)
'''


def test_live_reads_page_and_count_in_the_platform_and_stop_at_their_limit(small: Service) -> None:
    make_project(small, "proj-reads", 3)
    small.deploy("reader", READER, "proj-reads")
    small.deploy("benign", BENIGN, "proj-reads")
    for number in range(3):
        post(small, f"evt-read-{number}", "proj-reads", f"proj-reads-asset-{number}")
    small.settle()
    [run] = run_rows(small, "event_id = 'evt-read-2' AND plugin = 'reader'")
    detail = show(small, run["id"])
    assert detail["status"] == "succeeded"  # the plugin caught the typed error
    messages = [line["message"] for line in detail["logs"]]
    assert messages[0] == "page ['label-evt-read-1'] of 3 labels, 3 labeled"
    assert "this event's reads reached the limit of 50 calls (PLUGIN_RUNTIME_MAX_READS_PER_EVENT)" in messages[1]
    assert "1 read(s) refused" in messages[2]
    assert detail["metrics"]["reads"]["calls"] == 50 and detail["metrics"]["reads"]["refused"] == 1
    human = small.cli("runs", "show", run["id"])
    assert "reads        50 calls" in human.stdout
    assert_benign_still_runs(small, "proj-reads", "evt-after-reads")


def test_reads_stop_at_the_time_budget(tmp_path: Path, database) -> None:
    service = start_service(tmp_path / "data", "process", database, max_read_seconds_per_event=0.05,
                            max_reads_per_event=1_000_000)
    try:
        make_project(service, "proj-slow", 1)
        service.deploy("looper", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                  "    def on_submit(self, label, asset_id):\n        while True:\n"
                                  "            self.kili.labels(project_id=self.project_id)\n", "proj-slow")
        post(service, "evt-slow", "proj-slow", "proj-slow-asset-0")
        service.settle()
        [run] = run_rows(service, "event_id = 'evt-slow'")
        assert run["status"] == "failed" and "ReadLimitExceeded" in run["error"]
        assert "PLUGIN_RUNTIME_MAX_READ_SECONDS_PER_EVENT" in run["error"]
        reads = json.loads(run["metrics"])["reads"]
        assert reads["seconds"] >= 0.05 and reads["refused"] == 1
    finally:
        stop_service(service)


def test_the_dry_run_merges_identical_actions_as_the_service_does(tmp_path: Path, write_plugin, write_events,
                                                                  run_cli) -> None:
    plugin = write_plugin(tmp_path, STORM.replace("FAN", "0"))
    events = write_events(tmp_path / "events.jsonl", {
        "id": "evt-1", "type": "onSubmit", "project_id": "p", "asset_id": "a",
        "label": {"id": "l", "jsonResponse": {}}})
    result = run_cli("dry-run", plugin, "--events", events, "--format", "json")
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["status"] == "ok" and line["actions"] == [{"type": "send_back_to_queue", "asset_id": "a"}]
    assert line["logs"][-1]["message"] == "9 identical action(s) merged: each distinct action applies once"
