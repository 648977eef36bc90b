"""``plugin-runtime dry-run`` through the real command line, as authors run it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from plugin_sdk.testing import make_event, make_label

from tests.conftest import REPO

KEYS = ["event_id", "status", "actions", "logs", "error", "duration_ms"]

BOT = """
    from plugin_sdk import PluginCore


    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            iban = label["jsonResponse"].get("IBAN", {}).get("text", "")
            if iban == "crash":
                raise RuntimeError("cannot read " + asset_id)
            if iban == "hang":
                while True:
                    pass
            if not iban.startswith("FR"):
                self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                        text_array=["IBAN number should start with FR"])
                self.kili.send_back_to_queue(asset_ids=[asset_id])
            self.logger.info("checked %s", asset_id)
"""


def submit(event_id: str, iban: str, asset_id: str = "asset-1") -> dict:
    return make_event(id=event_id, asset_id=asset_id, label=make_label({"IBAN": {"text": iban}}, id=f"l-{event_id}"))


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def bot(tmp_path, write_plugin) -> Path:
    return write_plugin(tmp_path, BOT)


def test_one_json_line_per_event_and_exit_0_when_all_are_ok(tmp_path, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR76"), submit("e-2", "DE89", "asset-2"),
                          make_event("onReview", id="e-3"))
    done = run_cli("dry-run", bot, "--events", events)
    assert done.returncode == 0, done.stderr
    results = lines(done.stdout)
    assert [list(r)[:6] for r in results] == [KEYS] * 3
    assert [(r["event_id"], r["status"], r["error"], r["skipped"]) for r in results] == [
        ("e-1", "ok", None, False), ("e-2", "ok", None, False), ("e-3", "ok", None, True)]
    assert results[1]["actions"] == [
        {"type": "create_issue", "asset_id": "asset-2", "label_id": "l-e-2",
         "text": "IBAN number should start with FR", "object_mid": None},
        {"type": "send_back_to_queue", "asset_id": "asset-2"}]
    assert results[0]["logs"] == [{"level": "INFO", "message": "checked asset-1", "source": "logger"}]
    assert all(isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0 for r in results)
    assert re.fullmatch(r"dry-run: 3 events in [\d.]+ s: 3 ok\n", done.stderr)


def test_exit_1_when_one_event_fails_and_the_others_still_run(tmp_path, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR76"), submit("e-2", "crash"), submit("e-3", "DE"))
    done = run_cli("dry-run", bot, "--events", events)
    assert done.returncode == 1
    results = lines(done.stdout)
    assert [(r["event_id"], r["status"]) for r in results] == [("e-1", "ok"), ("e-2", "error"), ("e-3", "ok")]
    assert results[1]["actions"] == []
    assert 'File "main.py", line 9, in on_submit' in results[1]["error"]
    assert results[1]["error"].endswith("RuntimeError: cannot read asset-1")
    assert [a["type"] for a in results[2]["actions"]] == ["create_issue", "send_back_to_queue"]
    assert "3 events" in done.stderr and "1 error, 2 ok" in done.stderr


def test_a_hook_over_the_timeout_is_a_timeout(tmp_path, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "hang"), submit("e-2", "FR"))
    done = run_cli("dry-run", bot, "--events", events, "--timeout", "1")
    assert done.returncode == 1
    assert [(r["status"], r["error"]) for r in lines(done.stdout)] == [
        ("timeout", "the hook did not return within 1 s"), ("ok", None)]


@pytest.mark.parametrize(("code", "message"), [
    ("from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore)\n    pass\n",
     "error: the plugin was refused:\n- main.py:2:32: SyntaxError: expected ':'"),
    ("from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n    pass\n",
     "error: the plugin was refused:\n- main.py:2: PluginHandler has no hook"),
    ("x = 1\n", "error: the plugin was refused:\n- main.py: no PluginHandler class"),
])
def test_exit_2_for_an_invalid_plugin_with_the_message_on_stderr(tmp_path, write_plugin, write_events, run_cli,
                                                                code: str, message: str) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR"))
    done = run_cli("dry-run", write_plugin(tmp_path, code), "--events", events)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(message)


def test_exit_2_for_bad_requirements_or_a_missing_events_file(tmp_path, write_plugin, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR"))
    plugin = write_plugin(tmp_path, BOT, requirements="--index-url https://evil.example/simple\n")
    done = run_cli("dry-run", plugin, "--events", events)
    assert (done.returncode, done.stdout) == (2, "")
    assert "requirements.txt:1: option '--index-url' is not allowed" in done.stderr
    done = run_cli("dry-run", bot, "--events", tmp_path / "nowhere.jsonl")
    assert done.returncode == 2
    assert "error: cannot read events from" in done.stderr and "nowhere.jsonl" in done.stderr


def test_a_malformed_line_gets_an_error_naming_file_and_line(tmp_path, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR"), '{"id": "e-2", "type": "onSubmit"',
                          "", {"id": "e-4", "type": "onSubmit", "project_id": "p"}, submit("e-5", "FR"))
    done = run_cli("dry-run", "main.py", "--events", events, cwd=bot)
    assert done.returncode == 1
    results = lines(done.stdout)
    assert [(r["event_id"], r["status"]) for r in results] == [
        ("e-1", "ok"), (None, "error"), ("e-4", "error"), ("e-5", "ok")]
    assert results[1]["error"].startswith(f"{events}:2: not valid JSON")
    assert results[2]["error"] == f"{events}:4: event 'e-4': a onSubmit event needs asset_id"
    assert f"error: {events}:2: not valid JSON" in done.stderr


def test_events_can_come_from_stdin(bot, run_cli) -> None:
    stdin = "\n".join(json.dumps(submit(f"e-{i}", "FR", f"a-{i}")) for i in range(4)) + "\n"
    done = run_cli("dry-run", bot, "--events", "-", input=stdin)
    assert done.returncode == 0, done.stderr
    assert [r["event_id"] for r in lines(done.stdout)] == ["e-0", "e-1", "e-2", "e-3"]


def test_human_format(tmp_path, bot, write_events, run_cli) -> None:
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "DE89", "asset-7"), submit("e-2", "crash"),
                          make_event("onSendBackToQueue", id="e-3", asset_id="asset-8"))
    done = run_cli("dry-run", bot, "--events", events, "--format", "human")
    assert done.returncode == 1
    out = done.stdout
    assert re.search(r"^e-1  onSubmit  asset-7  OK  2 action\(s\)  [\d.]+ ms$", out, re.M)
    assert '    -> create_issue asset-7 label_id="l-e-1" text="IBAN number should start with FR"\n' in out
    assert "    -> send_back_to_queue asset-7\n" in out
    assert "    [info] checked asset-7\n" in out
    assert re.search(r"^e-2  onSubmit  asset-1  ERROR  0 action\(s\)", out, re.M)
    assert "    ! RuntimeError: cannot read asset-1\n" in out
    assert "e-3  onSendBackToQueue  asset-8  OK  (no hook for this event)\n" in out
    assert re.search(r"\n\ndry-run: 3 events in [\d.]+ s: 1 error, 2 ok\n$", out)
    assert not out.lstrip().startswith("{")


def test_a_kili_style_plugin_runs_unchanged(tmp_path, write_plugin, write_events, run_cli) -> None:
    plugin = write_plugin(tmp_path, """
        from typing import Dict

        from kili.plugins import PluginCore


        class PluginHandler(PluginCore):
            def __init__(self, kili, project_id):
                super().__init__(kili, project_id)
                self.count = 0

            def on_submit(self, label: Dict, asset_id: str) -> None:
                self.count += 1
                self.kili.update_properties_in_assets(asset_ids=[asset_id],
                                                      json_metadatas=['{"checks": %d}' % self.count])
                self.logger.info("Checked %s", asset_id)
    """)
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR", "a-1"), submit("e-2", "FR", "a-2"))
    done = run_cli("dry-run", plugin, "--events", events)
    assert done.returncode == 0, done.stderr + done.stdout
    assert [(r["actions"], [log["message"] for log in r["logs"]]) for r in lines(done.stdout)] == [
        ([{"type": "update_asset", "asset_id": "a-1", "json_metadata": {"checks": 1}}], ["Checked a-1"]),
        ([{"type": "update_asset", "asset_id": "a-2", "json_metadata": {"checks": 2}}], ["Checked a-2"]),
    ]


def test_a_differently_named_handler_warns_on_stderr_through_the_console_script(tmp_path, write_plugin, write_events) -> None:
    script = REPO / ".venv" / "bin" / "plugin-runtime"
    if not script.exists():
        pytest.skip("the console script is installed by scripts/bootstrap.sh")
    plugin = write_plugin(tmp_path, BOT.replace("PluginHandler", "IbanBot"))
    events = write_events(tmp_path / "events.jsonl", submit("e-1", "FR"))
    done = subprocess.run([script, "dry-run", plugin / "main.py", "--events", events, "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: main.py:5: the handler class is IbanBot, not PluginHandler")
    assert [r["status"] for r in lines(done.stdout)] == ["ok"]
