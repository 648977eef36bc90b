"""``events record --from kili``: a live Kili project's labels as recorded events, read with
the real ``kili`` package from a FAKE Kili GraphQL API on 127.0.0.1 (Kili's cloud cannot run
here), then dry-run as an author would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plugin_runtime.platforms.kili.client import open_client
from plugin_runtime.platforms.kili.records import record_events
from plugin_sdk.models import Event
from plugin_sdk.testing import dry_run
from tests.plugin_sdk.kili_published import DOCUMENT_RECIPE


def record(fake, *options: str, output: str = "-", key: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plugin_runtime", "events", "record", "--from", "kili",
                           "--project", "kili-proj", "--api-endpoint", fake.endpoint,
                           "--api-key", key or fake.api_key, "-o", output, *options],
                          capture_output=True, text=True, timeout=300)


def test_labels_become_events_with_the_asset_as_it_was_and_the_project(fake_kili, tmp_path: Path) -> None:
    kili = open_client(fake_kili.api_key, fake_kili.endpoint, tmp_path / "cache")
    events = list(record_events(kili, "kili-proj"))
    assert [(e["id"], e["type"], e["asset_id"]) for e in events] == [
        ("kili-kili-label-1", "onSubmit", "kili-asset-1"), ("kili-kili-label-2", "onSubmit", "kili-asset-2"),
        ("kili-kili-label-3", "onReview", "kili-asset-1")]
    first, second, review = events
    assert first["label"]["authorId"] == "user-1" and first["occurred_at"] == "2026-03-01T10:00:00.000Z"
    # The asset as it was: its labels up to this one, its issues until then.
    assert [l["id"] for l in first["context"]["asset"]["labels"]] == ["kili-label-1"]
    assert [l["id"] for l in review["context"]["asset"]["labels"]] == ["kili-label-1", "kili-label-3"]
    assert first["context"]["asset"]["jsonMetadata"] == {"vendor": "ACME"}
    assert second["context"]["asset"]["issues"] == []  # opened after the label arrived
    assert second["context"]["asset"]["currentStep"] == {"name": "Labeling", "status": "DONE"}
    assert first["context"]["project"]["jsonInterface"]["jobs"]["JOB_0"]["mlTask"] == "OBJECT_DETECTION"
    for event in events:
        Event.model_validate(event)


def test_the_issues_of_an_asset_are_in_the_context_of_later_events(fake_kili, tmp_path: Path) -> None:
    fake_kili.add_label("kili-asset-2", "kili-label-4", {}, created_at="2026-03-04T10:00:00.000Z")
    kili = open_client(fake_kili.api_key, fake_kili.endpoint, tmp_path / "cache")
    [*_, later] = record_events(kili, "kili-proj")
    assert later["id"] == "kili-kili-label-4"
    assert [(i["text"], i["status"], i["type"]) for i in later["context"]["asset"]["issues"]] == [
        ("IBAN number should start with FR", "OPEN", "ISSUE")]


def test_a_workflow_v1_project_records_the_asset_status(fake_kili, tmp_path: Path) -> None:
    fake_kili.projects["kili-proj"]["workflowVersion"] = "V1"
    kili = open_client(fake_kili.api_key, fake_kili.endpoint, tmp_path / "cache")
    first = next(iter(record_events(kili, "kili-proj")))
    assert first["context"]["asset"]["status"] == "REVIEWED" and "currentStep" not in first["context"]["asset"]


def test_since_limit_and_as(fake_kili, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    kili = open_client(fake_kili.api_key, fake_kili.endpoint, tmp_path / "cache")
    since = datetime(2026, 3, 2, tzinfo=timezone.utc)
    events = list(record_events(kili, "kili-proj", since=since, limit=1, as_project="proj-invoices"))
    assert [(e["id"], e["project_id"], e["context"]["project"]["id"]) for e in events] == [
        ("kili-kili-label-2", "proj-invoices", "proj-invoices")]


def test_the_command_writes_a_file_a_dry_run_replays(fake_kili, tmp_path: Path) -> None:
    events = tmp_path / "recorded.jsonl"
    done = record(fake_kili, output=str(events))
    assert done.returncode == 0, done.stderr
    assert "3 event(s) recorded from Kili project kili-proj (1 onReview, 2 onSubmit)" in done.stderr
    recorded = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert recorded == ["onSubmit", "onSubmit", "onReview"]
    plugin = tmp_path / "document"
    plugin.mkdir()
    (plugin / "main.py").write_text(DOCUMENT_RECIPE)
    results = dry_run(plugin, events)
    # Kili's recipe divides by the number of annotations: these labels have none, as the
    # recipe would fail on Kili too. The replay shows that, event by event.
    assert [r["status"] for r in results] == ["error", "error", "ok"]
    assert "ZeroDivisionError" in results[0]["error"] and results[2]["skipped"]


def test_a_refused_key_or_an_unknown_project_says_what_to_do(fake_kili, tmp_path: Path) -> None:
    refused = record(fake_kili, output=str(tmp_path / "x.jsonl"), key="wrong-key")
    assert refused.returncode == 2 and "Kili refused the API key" in refused.stderr
    assert not (tmp_path / "x.jsonl").exists()
    unknown = subprocess.run([sys.executable, "-m", "plugin_runtime", "events", "record", "--from", "kili",
                              "--project", "nope", "--api-endpoint", fake_kili.endpoint, "--api-key",
                              fake_kili.api_key, "-o", "-"], capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 2
    assert "Kili project 'nope' does not exist or this API key cannot see it" in unknown.stderr


def test_an_output_that_cannot_be_written_is_said_before_kili_is_read(fake_kili, tmp_path: Path) -> None:
    # A missing folder was a traceback, after the whole project had been read.
    folder = tmp_path / "no-such-folder"
    missing = record(fake_kili, output=str(folder / "x.jsonl"))
    assert (missing.returncode, missing.stderr) == (2, f"error: cannot write {folder / 'x.jsonl'}: there is no folder "
                                                       f"{folder} (create it, or give -o another path)\n")
