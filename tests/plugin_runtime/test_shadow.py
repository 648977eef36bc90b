"""Shadows through a real service (HTTP, SQLite, process sandbox) and the real CLI: a candidate
runs beside the live version on a project's events, its actions are stored and never applied,
it causes no event, it never holds up a live run, its report says what it did otherwise, and
promote makes it live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime.api import models
from tests.plugin_runtime.api.test_models import undocumented
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service

LIVE = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
'''
#: Stricter: sends bad work back and marks it; fails on asset-3, hangs on asset-4 (a 1 s limit),
#: waits on asset-gate* until the test creates GATE; sends reviewed assets to review.
CANDIDATE = '''
import os, time
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.count_assets(project_id=self.project_id)  # a read, answered as for a live run
        if asset_id == "asset-3":
            raise ValueError("cannot read asset-3")
        if asset_id == "asset-4":
            time.sleep(30)
        while asset_id.startswith("asset-gate") and not os.path.exists(GATE):
            time.sleep(0.02)
        if not label["jsonResponse"].get("OK"):
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
            self.kili.send_back_to_queue(asset_ids=[asset_id])
            self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"shadow": True}])

    def on_review(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''


def submit(number: int | str, ok: bool, project: str) -> dict[str, Any]:
    return {"id": f"{project}-evt-{number}", "type": "onSubmit", "project_id": project, "asset_id": f"asset-{number}",
            "label": {"id": f"{project}-label-{number}", "labelType": "DEFAULT", "jsonResponse": {"OK": ok}}}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database: Any) -> Iterator[Service]:
    running = start_service(tmp_path_factory.mktemp("shadow"), "process", database)
    yield running
    stop_service(running)


def candidate_folder(tmp_path: Path, gate: Path) -> Path:
    folder = tmp_path / "candidate"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text(CANDIDATE.replace("GATE", repr(str(gate))))
    return folder


def with_candidate(service: Service, tmp_path: Path, name: str, project: str, timeout_s: float = 1) -> None:
    """``name`` v1 (LIVE) active on ``project``, v2 (CANDIDATE, ``timeout_s`` per event)
    uploaded with --candidate and shadowed there, through the CLI."""
    service.deploy(name, LIVE, project=project)
    folder = candidate_folder(tmp_path, tmp_path / "gate")
    uploaded = service.cli("plugins", "update", str(folder), "--name", name, "--candidate", "--limit",
                           f"timeout_s={timeout_s}")
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.splitlines()[-1] == (
        f"{name} v2 built as a candidate: the live version stays live. Next, see what it would do on a project's "
        f"events: plugin-runtime plugins shadow {name} --version 2 --project ID")
    shadowed = service.cli("plugins", "shadow", name, "--version", "2", "--project", project)
    assert shadowed.returncode == 0, shadowed.stderr
    assert shadowed.stdout.splitlines()[0] == (
        f"{name} v2 shadows the live version on {project} from its next event: its actions are stored, never applied")


def reports(service: Service, name: str, **params: Any) -> list[dict[str, Any]]:
    response = service.admin.get(f"{service.url}/v1/shadows", params={"plugin": name, **params}, timeout=30)
    assert response.status_code == 200, response.text
    assert undocumented(models.ShadowReports, response.json()) == []  # /openapi.json describes every key
    return response.json()["shadows"]


def settled(service: Service, name: str, seen: int, timeout: float = 120) -> dict[str, Any]:
    """The plugin's one shadow report, once it saw ``seen`` events and none waits."""
    service.settle()
    deadline = time.monotonic() + timeout
    while True:
        [report] = reports(service, name)
        if report["events"]["seen"] == seen and report["events"]["waiting"] == 0:
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.05)


def shadow_run_ids(service: Service) -> set[str]:
    return {row[0] for row in service.runtime.store.read().execute("SELECT id FROM shadow_runs")}


def test_a_shadow_never_applies_nor_causes_events_and_its_report_says_what_differs(service, tmp_path) -> None:
    name, project = "shadowbot", "proj-shadow"
    with_candidate(service, tmp_path, name, project)
    versions = {v["version"]: v for v in service.admin.get(f"{service.url}/v1/plugins/{name}/versions").json()}
    assert (versions[1]["status"], versions[2]["status"], versions[2]["candidate"]) == ("active", "inactive", True)
    sent = [submit(1, True, project), submit(2, False, project), submit(3, False, project), submit(4, False, project),
            {**submit(5, True, project), "type": "onReview"}]
    for event in sent:
        assert service.post_event(event).status_code == 202
    report = settled(service, name, seen=5)
    db = service.runtime.store.read()
    shadows = shadow_run_ids(service)
    assert len(shadows) == 5
    # Nothing of the candidate reached the platform: only the live version's issues, no
    # send-back, no metadata, no review; no event but those sent; no outbox row of its runs.
    assert db.execute("SELECT COUNT(*) FROM events WHERE project_id = ?", (project,)).fetchone()[0] == len(sent)
    issues = db.execute("SELECT asset_id, run_id FROM issues WHERE project_id = ?", (project,)).fetchall()
    assert sorted(row[0] for row in issues) == ["asset-2", "asset-3", "asset-4"]
    live_runs = {row[0]: row[1] for row in db.execute("SELECT id, version FROM runs WHERE project_id = ?", (project,))}
    assert set(live_runs.values()) == {1} and {row[1] for row in issues} <= set(live_runs)
    assets = {a["id"]: a for a in service.admin.get(f"{service.url}/v1/projects/{project}/assets").json()}
    assert all(asset["status"] not in ("ONGOING", "TO_REVIEW") and "shadow" not in asset["jsonMetadata"]
               for asset in assets.values())
    marks = ",".join("?" * len(shadows))
    for sql in (f"SELECT COUNT(*) FROM outbox WHERE run_id IN ({marks})",
                f"SELECT COUNT(*) FROM run_actions WHERE run_id IN ({marks})",
                f"SELECT COUNT(*) FROM applied_actions WHERE substr(key, 1, instr(key, ':') - 1) IN ({marks})",
                f"SELECT COUNT(*) FROM events WHERE cause_run IN ({marks})"):
        assert db.execute(sql, tuple(shadows)).fetchone()[0] == 0, sql
    assert service.runtime.pending_runs() == 0
    # The report: evt-1 the same (nothing); the others differ, with what each side did.
    assert report["events"] == {"seen": 5, "compared": 5, "differing": 4, "waiting": 0, "not_run": 0}
    assert report["candidate"]["errors"] == 1 and report["candidate"]["timeouts"] == 1
    assert (report["candidate"]["ok"], report["candidate"]["failed"]) == (3, {"error": 1, "timeout": 1})
    assert report["live"]["latency_ms"]["count"] == 4 and report["candidate"]["latency_ms"]["count"] == 5
    assert (report["live_version"], report["version"], report["ended_at"]) == (1, 2, None)
    by_event = {item["event_id"]: item for item in report["differences"]}
    assert set(by_event) == {f"{project}-evt-{n}" for n in (2, 3, 4, 5)}
    bad = by_event[f"{project}-evt-2"]
    assert bad["only_live"] == [] and [a["type"] for a in bad["only_candidate"]] == ["send_back_to_queue",
                                                                                      "update_asset"]
    assert bad["live"]["actions"] == [{"type": "create_issue", "asset_id": "asset-2", "label_id": f"{project}-label-2",
                                       "text": "bad", "object_mid": None}]
    assert by_event[f"{project}-evt-3"]["candidate"]["status"] == "error"
    assert "cannot read asset-3" in by_event[f"{project}-evt-3"]["candidate"]["error"]
    assert by_event[f"{project}-evt-4"]["candidate"]["status"] == "timeout"
    review = by_event[f"{project}-evt-5"]  # the live version has no review hook: no run, nothing done
    assert (review["live"]["run_id"], review["only_candidate"]) == (None, [{"type": "add_to_review",
                                                                           "asset_id": "asset-5"}])
    assert {f["outcome"] for f in report["failures"]} == {"error", "timeout"}
    error = next(f for f in report["failures"] if f["outcome"] == "error")
    assert error["logs"][-1]["source"] == "runtime" and "cannot read asset-3" in error["logs"][-1]["message"]
    # The CLI shows the same report, readable.
    shown = service.cli("plugins", "shadow-report", name)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{name} v2 beside live v1 on {project}, since ") and lines[0].endswith("(running)")
    assert lines[1:3] == ["  events: 5 seen, 5 compared, 4 differ, 0 waiting, 0 not run",
                          "  candidate: 3 ok, 0 without a hook, 1 error, 1 timeout"]
    assert f"    {project}-evt-2  live: ok, 1 action(s)  candidate: ok, 3 action(s)" in lines
    assert "      + send_back_to_queue asset-2" in lines
    assert any(line.startswith(f"    {project}-evt-3  error: ") and "ValueError: cannot read asset-3" in line
               for line in lines)
    as_json = service.cli("plugins", "shadow-report", name, "--project", project, "--json")
    assert json.loads(as_json.stdout)[0]["events"] == report["events"]

    # Promote: v2 is live, the shadow ends (its report stays), the next event runs v2 for real.
    promoted = service.cli("plugins", "promote", name, "--version", "2")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.splitlines()[0] == f"{name} v2 is live"
    assert service.admin.get(f"{service.url}/v1/plugins/{name}").json()["current_version"] == 2
    [ended] = reports(service, name)
    assert (ended["ended_at"] is not None, ended["end_reason"]) == (True, "v2 promoted to live")
    assert service.post_event(submit(6, False, project)).status_code == 202
    service.settle()
    run = db.execute("SELECT version, status FROM runs WHERE event_id = ?", (f"{project}-evt-6",)).fetchone()
    assert tuple(run) == (2, "succeeded")
    assert shadow_run_ids(service) == shadows  # no shadow run for it
    asset = service.admin.get(f"{service.url}/v1/projects/{project}/assets/asset-6").json()
    assert asset["status"] == "ONGOING" and asset["jsonMetadata"] == {"shadow": True}


def test_a_hanging_candidate_never_holds_up_live_runs_nor_their_backpressure(service, tmp_path) -> None:
    name, project = "slowbot", "proj-slow"
    with_candidate(service, tmp_path, name, project, timeout_s=120)
    assert service.post_event(submit("gate", False, project)).status_code == 202
    wait_running(service, f"{project}-evt-gate")
    db = service.runtime.store.read()
    # Its run waits on the gate; the live version runs every event meanwhile.
    for number in range(10, 16):
        assert service.post_event(submit(number, number % 2 == 0, project)).status_code == 202
    service.settle()
    live = db.execute("SELECT status FROM runs WHERE project_id = ?", (project,)).fetchall()
    assert [row[0] for row in live] == ["succeeded"] * 7
    assert service.admin.get(f"{service.url}/healthz").json()["pending_runs"] == 0
    [report] = reports(service, name)
    assert report["events"]["waiting"] == 7  # the held one, and the six behind it
    (tmp_path / "gate").touch()
    report = settled(service, name, seen=7)
    assert report["events"]["compared"] == 7 and report["candidate"]["ok"] == 7


def test_a_candidate_too_far_behind_skips_events_instead_of_holding_anything(service, tmp_path,
                                                                             monkeypatch) -> None:
    name, project = "behindbot", "proj-behind"
    with_candidate(service, tmp_path, name, project, timeout_s=120)
    monkeypatch.setattr(service.runtime.shadows, "max_backlog", 2)
    assert service.post_event(submit("gate-2", False, project)).status_code == 202  # asset ids are global
    wait_running(service, f"{project}-evt-gate-2")  # held at the gate
    for number in (61, 62, 63):
        assert service.post_event(submit(number, True, project)).status_code == 202
    service.settle()
    [report] = reports(service, name)
    assert (report["events"]["waiting"], report["events"]["not_run"]) == (4, 0)  # held, and not looked at yet
    (tmp_path / "gate").touch()
    report = settled(service, name, seen=4)
    # Once the gate opens, three events wait, one more than the limit set above: the oldest is
    # not run, the candidate goes on with the recent ones.
    assert report["events"] == {"seen": 4, "compared": 3, "differing": 1, "waiting": 0, "not_run": 1}
    skipped = service.runtime.store.read().execute(
        "SELECT event_id, outcome, error FROM shadow_runs WHERE status = 'skipped' AND event_id LIKE ?",
        (f"{project}-%",)).fetchall()
    assert [tuple(row) for row in skipped] == [
        (f"{project}-evt-61", "queue_full", "the candidate fell behind the live traffic (over 2 events): not run")]


def wait_running(service: Service, event_id: str) -> None:
    """Until the event's shadow run is running (the lane plans it from the event log first)."""
    db = service.runtime.store.read()
    deadline = time.monotonic() + 60
    while tuple(db.execute("SELECT status FROM shadow_runs WHERE event_id = ?", (event_id,)).fetchone() or ()) != (
            "running",):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_stop_ends_a_shadow_and_its_events_get_no_more_shadow_runs(service, tmp_path) -> None:
    name, project = "stopbot", "proj-stop"
    with_candidate(service, tmp_path, name, project)
    assert service.post_event(submit(31, False, project)).status_code == 202  # asset ids are global
    settled(service, name, seen=1)
    stopped = service.cli("plugins", "shadow", name, "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (f"{name} v2 no longer shadows on {project} (its report: plugin-runtime plugins "
                              f"shadow-report {name})\n")
    before = shadow_run_ids(service)
    assert service.post_event(submit(32, False, project)).status_code == 202
    service.settle()
    assert shadow_run_ids(service) == before
    [report] = reports(service, name)
    assert (report["end_reason"], report["events"]["seen"]) == ("stopped", 1)
    again = service.cli("plugins", "shadow", name, "--stop")
    assert again.stdout == f"{name} has no shadow running\n"
    # Shadowing where the plugin is not active: said, as the report then compares with nothing.
    elsewhere = service.cli("plugins", "shadow", name, "--version", "2", "--project", "proj-elsewhere")
    assert elsewhere.returncode == 0 and elsewhere.stderr.startswith(
        f"note: {name} is not active on proj-elsewhere: no live run there to compare with")


def test_deleting_the_plugin_ends_its_shadows(service, tmp_path) -> None:
    name, project = "gonebot", "proj-gone"
    with_candidate(service, tmp_path, name, project)
    assert service.admin.delete(f"{service.url}/v1/plugins/{name}", timeout=30).status_code == 200
    ended = service.runtime.store.shadows.latest(service.runtime.store.read(), name, project)
    assert [(row["version"], row["end_reason"]) for row in ended] == [(2, "the plugin was deleted")]
    assert service.post_event(submit(51, False, project)).status_code == 202
    service.settle()
    assert not service.runtime.store.read().execute("SELECT COUNT(*) FROM shadow_runs WHERE event_id = ?",
                                                    (f"{project}-evt-51",)).fetchone()[0]


def test_refusals_say_what_to_do(service, tmp_path) -> None:
    url, admin = service.url, service.admin
    service.deploy("refusebot", LIVE, project="proj-refuse")
    live = admin.put(f"{url}/v1/plugins/refusebot/shadows/proj-refuse", json={"version": 1})
    assert live.status_code == 409
    assert live.json()["detail"] == ("refusebot v1 is the live version: shadow a newer one (plugins update PATH "
                                     "--name refusebot --candidate uploads one without making it live)")
    missing = admin.put(f"{url}/v1/plugins/refusebot/shadows/proj-refuse", json={"version": 9})
    assert (missing.status_code, missing.json()["detail"]) == (404, "plugin 'refusebot' has no version 9")
    nobody = service.cli("plugins", "shadow", "nobody", "--version", "2", "--project", "p")
    assert nobody.returncode == 1 and "404: plugin 'nobody' does not exist" in nobody.stderr
    broken = admin.post(f"{url}/v1/plugins/refusebot/versions", params={"candidate": "true"},
                        data=_zip("from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n"
                                  "    def on_submit(self, label, asset_id):\n        pass\nimport no_such_module\n"))
    assert broken.status_code == 202, broken.text
    assert service.runtime.registry.wait("refusebot", 2, 60)["status"] == "failed"
    failed = admin.post(f"{url}/v1/plugins/refusebot/promote", json={"version": 2})
    assert failed.status_code == 409 and failed.json()["detail"].startswith("refusebot v2 failed to build: ")
    assert admin.get(f"{url}/v1/plugins/refusebot").json()["current_version"] == 1
    first = admin.post(f"{url}/v1/plugins/newbot/versions", params={"create": "true", "candidate": "true"},
                       data=_zip(LIVE))
    assert (first.status_code, first.json()["detail"]) == (409, ("newbot has no live version for a candidate to be "
                                                                 "compared with: upload it without --candidate first"))
    usage = service.cli("plugins", "shadow", "refusebot", "--project", "proj-refuse")
    assert usage.returncode == 2 and "plugins shadow NAME --version N --project ID" in usage.stderr


def _zip(code: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    return buffer.getvalue()


def test_a_shadow_run_a_stopped_server_left_running_runs_again_when_it_restarts(tmp_path) -> None:
    """SQLite: the server is its store's only process, so what it left running is its own."""
    first = start_service(tmp_path / "data", "process")
    try:
        with_candidate(first, tmp_path, "restartbot", "proj-restart")
        assert first.post_event(submit(41, False, "proj-restart")).status_code == 202
        settled(first, "restartbot", seen=1)
        with first.runtime.store.write() as db:  # as if the server had stopped in the middle of the run
            db.execute("UPDATE shadow_runs SET status = 'running', actions = '[]', differs = NULL")
    finally:
        stop_service(first)
    second = start_service(tmp_path / "data", "process")
    try:
        report = settled(second, "restartbot", seen=1)
        assert report["events"] == {"seen": 1, "compared": 1, "differing": 1, "waiting": 0, "not_run": 0}
        [difference] = report["differences"]
        assert [a["type"] for a in difference["only_candidate"]] == ["send_back_to_queue", "update_asset"]
    finally:
        stop_service(second)
