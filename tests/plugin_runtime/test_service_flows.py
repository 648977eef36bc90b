"""Service behaviours over HTTP (process sandbox, so they run fast): deploy waits, platform
label submission, causes and chains, retries, export to dry-run, migrations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_runtime.store import MIGRATIONS, Store
from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service


@pytest.fixture()
def service(tmp_path: Path, database):
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)



def submit(service: Service, event_id: str, asset: str = "asset-1", project: str = "proj-1", **response) -> None:
    event = {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": asset,
             "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response}}
    assert service.post_event(event).status_code == 202


def runs(service: Service, plugin: str | None = None) -> list[dict]:
    params = {"plugin": plugin} if plugin else {}
    return service.admin.get(f"{service.url}/v1/runs", params={**params, "limit": 1000}, timeout=30).json()


def test_events_for_a_version_still_deploying_wait_for_it(service: Service) -> None:
    slow = ("import time\ntime.sleep(1.5)\nfrom plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n        self.kili.add_to_review(asset_ids=[asset_id])\n")
    version = service.deploy("slow", slow, wait=False)
    assert version["status"] == "deploying"
    submit(service, "evt-early")
    service.runtime.registry.wait("slow", 1, 60)
    service.settle()
    [run] = runs(service, "slow")
    assert run["status"] == "succeeded" and run["event_id"] == "evt-early"
    asset = service.admin.get(f"{service.url}/v1/projects/proj-1/assets/asset-1", timeout=30).json()
    assert asset["status"] == "TO_REVIEW"


def test_platform_submissions_emit_onsubmit_and_onreview(service: Service) -> None:
    code = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n        self.logger.info('submit %s', label['labelType'])\n"
            "    def on_review(self, label, asset_id):\n        self.logger.info('review %s', label['labelType'])\n")
    service.deploy("watcher", code)
    cli = lambda *args: service.cli(*args, check=True)  # noqa: E731
    cli("projects", "create", "proj-1")
    cli("assets", "create", "--project", "proj-1", "--id", "asset-1", "--external-id", "a.pdf")
    cli("labels", "submit", "--project", "proj-1", "--asset", "asset-1", "--json-response", '{"J": {"text": "x"}}')
    service.settle()
    cli("labels", "submit", "--project", "proj-1", "--asset", "asset-1", "--json-response", "{}", "--type", "REVIEW")
    service.settle()
    asset = json.loads(service.cli("assets", "show", "asset-1", "--project", "proj-1", "--json").stdout)
    assert asset["status"] == "REVIEWED" and [l["labelType"] for l in asset["labels"]] == ["DEFAULT", "REVIEW"]
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "watcher"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == ["submit DEFAULT", "review REVIEW"]
    exported = service.cli("events", "export", "--project", "proj-1", check=True).stdout.splitlines()
    assert [json.loads(line)["type"] for line in exported] == ["onSubmit", "onReview"]
    assert json.loads(exported[0])["context"]["asset"]["externalId"] == "a.pdf"


APPENDER = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n"
            "        self.kili.append_labels(asset_id_array=[asset_id], json_response_array=[{{'BY': '{name}'}}])\n")


def test_events_caused_by_a_plugin_never_retrigger_it_and_chains_stop(service: Service) -> None:
    service.deploy("ping", APPENDER.format(name="ping"))
    service.deploy("pong", APPENDER.format(name="pong"))
    submit(service, "evt-start")
    service.settle()
    all_runs = runs(service)
    # Each appended DEFAULT label emits an onSubmit for the *other* plugin only, until depth 3.
    assert len(all_runs) == 2 + 2 + 2 + 2
    events = service.runtime.store.read().execute("SELECT id, depth, cause_plugin FROM events ORDER BY seq").fetchall()
    assert max(row["depth"] for row in events) == 4
    for row in events[1:]:
        caused = [r for r in all_runs if r["event_id"] == row["id"]]
        assert all(r["plugin"] != row["cause_plugin"] for r in caused)


def test_a_failed_run_can_be_retried(service: Service) -> None:
    code = ("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n        raise ValueError('bad label')\n")
    service.deploy("failing", code)
    submit(service, "evt-fail")
    service.settle()
    [run] = runs(service, "failing")
    assert run["status"] == "failed" and run["outcome"] == "error" and "bad label" in run["error"]
    listed = json.loads(service.cli("runs", "list", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in listed] == [run["id"]]
    assert service.cli("runs", "retry", run["id"]).returncode == 0
    service.settle()
    again = json.loads(service.cli("runs", "show", run["id"], "--json").stdout)
    assert again["attempts"] == 2 and again["status"] == "failed"
    refused = service.cli("runs", "retry", "run-unknown")
    assert refused.returncode == 1 and "does not exist" in refused.stderr


def test_exported_events_dry_run_to_the_same_actions(service: Service, tmp_path: Path) -> None:
    invoice = REPO / "example_plugins" / "invoice_qa"
    service.cli("plugins", "upload", str(invoice), "--name", "invoice-qa", check=True)
    service.cli("plugins", "activate", "invoice-qa", "--project", "proj-invoices", check=True)
    sent = service.cli("events", "send", str(invoice / "events.jsonl"), "--secret", "test-secret")
    assert sent.returncode == 0, sent.stderr
    service.settle()
    exported = tmp_path / "exported.jsonl"
    service.cli("events", "export", "--project", "proj-invoices", "--output", str(exported), check=True)
    dry = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(invoice), "--events", str(exported)],
                         capture_output=True, text=True, timeout=120)
    results = {json.loads(line)["event_id"]: json.loads(line) for line in dry.stdout.splitlines()}
    applied = {r["event_id"]: json.loads(service.cli("runs", "show", r["id"], "--json").stdout)
               for r in runs(service, "invoice-qa")}
    assert applied
    for event_id, run in applied.items():
        assert [a["action"]["type"] for a in run["actions"]] == [a["type"] for a in results[event_id]["actions"]]


def test_events_send_goes_on_past_failures_and_names_them(service: Service, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    good = {"id": "evt-good", "type": "onSubmit", "project_id": "p", "asset_id": "a", "label": {"id": "l", "jsonResponse": {}}}
    events.write_text("not json\n" + json.dumps(good) + "\n" + json.dumps({**good, "id": "evt-bad", "type": "nope"}) + "\n")
    result = service.cli("events", "send", str(events), "--secret", "test-secret")
    assert result.returncode == 1
    assert "1 event(s) acknowledged, 2 not" in result.stderr
    assert "not acknowledged: evt-bad" in result.stderr and "line 1" in result.stderr
    wrong = service.cli("events", "send", str(events), "--secret", "wrong")
    assert wrong.returncode == 1 and "401" in wrong.stderr


def test_migrations_bring_an_old_database_up_to_date(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.close()
    reopened = Store(tmp_path / "db.sqlite")
    version = reopened.read().execute("SELECT version FROM schema_version").fetchone()[0]
    assert version == len(MIGRATIONS)
    indexes = {r[0] for r in reopened.read().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "runs_project_status" in indexes


def test_per_plugin_limits_within_the_admin_maxima(service: Service, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                      "    def on_submit(self, label, asset_id):\n        import time; time.sleep(3)\n")
    too_much = service.cli("plugins", "upload", str(tmp_path), "--name", "greedy", "--limit", "memory_mb=999999")
    assert too_much.returncode == 1 and "over the maximum the admin allows" in too_much.stderr
    ok = service.cli("plugins", "upload", str(tmp_path), "--name", "quick", "--limit", "timeout_s=1")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(service.cli("plugins", "versions", "quick", "--json").stdout)[0]["limits"] == {"timeout_s": 1.0}
    service.cli("plugins", "activate", "quick", "--project", "proj-1", check=True)
    submit(service, "evt-slow")
    service.settle()
    [run] = runs(service, "quick")
    assert run["status"] == "failed" and run["outcome"] == "timeout"


def test_a_noisy_project_gets_429_and_the_others_still_get_in(tmp_path: Path, database) -> None:
    busy = start_service(tmp_path / "busy", "process", database, max_queue_per_project=3, max_queue=100)
    try:
        slow = ("import time\nfrom plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                "    def on_submit(self, label, asset_id):\n        time.sleep(0.5)\n")
        busy.deploy("slow", slow, project="noisy")
        busy.runtime.registry.activate("slow", "quiet")
        statuses = []
        for i in range(8):
            event = {"id": f"noisy-{i}", "type": "onSubmit", "project_id": "noisy", "asset_id": "a",
                     "label": {"id": f"l-{i}", "jsonResponse": {}}}
            response = busy.post_event(event)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] and "too many pending runs" in response.json()["detail"]
        assert 429 in statuses and statuses[:3] == [202, 202, 202]
        quiet = {"id": "quiet-1", "type": "onSubmit", "project_id": "quiet", "asset_id": "q",
                 "label": {"id": "lq", "jsonResponse": {}}}
        assert busy.post_event(quiet).status_code == 202
        refused = [f"noisy-{i}" for i, status in enumerate(statuses) if status == 429]
        stored = {row[0] for row in busy.runtime.store.read().execute("SELECT id FROM events")}
        assert not stored & set(refused)  # a 429 stores nothing: the sender retries later
        busy.settle(60)
    finally:
        stop_service(busy)


def test_infrastructure_failures_are_retried_then_dead_lettered_and_redeliverable(tmp_path: Path, monkeypatch, database) -> None:
    from plugin_runtime.errors import SandboxUnavailable
    from plugin_runtime.sandbox import process

    flaky = start_service(tmp_path / "flaky", "process", database, max_attempts=3, retry_base_s=0.01)
    try:
        flaky.deploy("steady", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                                "    def on_submit(self, label, asset_id):\n        self.kili.add_to_review(asset_ids=[asset_id])\n")
        real_init = process._Process.__init__
        starts = []

        def engine_down(self, *args, **kwargs):
            # Stands in for an engine that is down: the one failure this machine cannot stage
            # without disturbing the other tests' Docker engine.
            starts.append(1)
            raise SandboxUnavailable("no Docker engine answers (simulated)")

        monkeypatch.setattr(process._Process, "__init__", engine_down)
        submit(flaky, "evt-infra")
        flaky.settle(30)
        [run] = runs(flaky, "steady")
        assert run["status"] == "dead" and run["outcome"] == "infrastructure" and run["attempts"] == 3
        assert "simulated" in run["error"] and len(starts) == 3
        dead = json.loads(flaky.cli("runs", "list", "--status", "dead", "--json").stdout)
        assert [r["id"] for r in dead] == [run["id"]]
        monkeypatch.setattr(process._Process, "__init__", real_init)
        assert flaky.cli("runs", "retry", run["id"]).returncode == 0
        flaky.settle(30)
        [again] = runs(flaky, "steady")
        assert again["status"] == "succeeded"
        asset = flaky.admin.get(f"{flaky.url}/v1/projects/proj-1/assets/asset-1", timeout=30).json()
        assert asset["status"] == "TO_REVIEW"
    finally:
        stop_service(flaky)


def test_a_plugin_can_read_its_project_when_it_is_created_in_the_service(service: Service) -> None:
    service.cli("projects", "create", "proj-1", "--json-interface", '{"jobs": {"COLOR": {"mlTask": "CLASSIFICATION"}}}',
                check=True)
    code = ("from kili.plugins import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def __init__(self, kili, project_id):\n        super().__init__(kili, project_id)\n"
            "        [project] = kili.projects(project_id=project_id, fields=['jsonInterface'])\n"
            "        self.jobs = sorted(project['jsonInterface']['jobs'])\n"
            "    def on_submit(self, label, asset_id):\n        self.logger.info('jobs %s', self.jobs)\n")
    service.deploy("reads-early", code)
    submit(service, "evt-early-read")
    service.settle()
    [run] = runs(service, "reads-early")
    assert run["status"] == "succeeded", run
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "reads-early"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == ["jobs ['COLOR']"]


def test_a_plugin_reads_open_issues_live_to_avoid_duplicates(service: Service) -> None:
    code = ("from kili.plugins import PluginCore\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n"
            "        open_issues = self.kili.count_issues(project_id=self.project_id, asset_id=asset_id, status='OPEN')\n"
            "        texts = [i['comments'][0]['text'] for i in self.kili.issues(project_id=self.project_id,\n"
            "                 asset_id=asset_id, fields=['comments.text'])]\n"
            "        if 'Check the label' not in texts:\n"
            "            self.kili.create_issues(project_id=self.project_id, label_id_array=[label['id']],\n"
            "                                    text_array=['Check the label'])\n"
            "        self.logger.info('open issues before: %d', open_issues)\n")
    service.deploy("once", code)
    for number in range(3):
        submit(service, f"evt-issue-{number}")
        service.settle()
    asset = service.admin.get(f"{service.url}/v1/projects/proj-1/assets/asset-1", timeout=30).json()
    assert [i["text"] for i in asset["issues"]] == ["Check the label"]
    logs = service.admin.get(f"{service.url}/v1/logs", params={"plugin": "once"}, timeout=30).json()["lines"]
    assert [line["message"] for line in logs] == ["open issues before: 0", "open issues before: 1", "open issues before: 1"]
    exported = service.cli("events", "export", "--project", "proj-1", check=True).stdout.splitlines()
    assert json.loads(exported[-1])["context"]["asset"]["issues"][0]["text"] == "Check the label"
