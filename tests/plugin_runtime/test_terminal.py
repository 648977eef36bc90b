"""Escape sequences from a plugin never reach the admin's terminal: every human view shows them
as visible escapes, and the JSON views keep them exactly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from plugin_runtime.terminal import escape
from plugin_sdk.testing import make_event, make_label
from tests.plugin_runtime.service_fixtures import REPO, Service, start_service, stop_service

#: Erase the line and rewrite it green "OK", set the window title, backspace, DEL, a one-byte
#: C1 CSI, a bidi override, a bell and a form feed.
EVIL = "\x1b[2K\r\x1b[32mOK\x1b[0m\x0c all checks passed\x1b]0;pwned\x07\x08\x7f\x9b31m\u202egnp.exe"
#: What a terminal must never receive raw (newline and tab are harmless).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

PLUGIN = f"""
from plugin_sdk import PluginCore

EVIL = {EVIL!r}


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("log " + EVIL + "\\nevt-forged asset-1 [info] forged line")
        print("print " + EVIL)
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["issue " + EVIL])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{{"note": "meta " + EVIL}}])
        if label["jsonResponse"].get("FAIL"):
            raise RuntimeError("error " + EVIL)
"""


def raw_controls(data: bytes) -> list[str]:
    return RAW_CONTROL.findall(data.decode("utf-8"))


def test_escape_shows_every_terminal_control_and_keeps_text() -> None:
    assert escape(EVIL) == ("\\x1b[2K\\r\\x1b[32mOK\\x1b[0m\\x0c all checks passed\\x1b]0;pwned\\x07\\x08\\x7f"
                            "\\x9b31m\\u202egnp.exe")
    assert escape("a\u2066b\u2069\x85c\x00") == "a\\u2066b\\u2069\\x85c\\x00"
    assert escape("line 1\n\tline 2") == "line 1\\n\\tline 2"  # a one-line view stays one line
    assert escape("line 1\n\tline 2\r", multiline=True) == "line 1\n\tline 2\\r"
    assert escape("lone \ud800 surrogate") == "lone \\ud800 surrogate"  # printable, no UnicodeEncodeError
    text = "Prüfung: 请检查 IBAN ✓ \\x1b stays as typed, emoji 🙂, Arabic مرحبا"
    assert escape(text, multiline=True) == escape(text) == text



def _cli(service: Service, *args: str) -> subprocess.CompletedProcess:
    """The CLI as an admin runs it, output kept as bytes (what the terminal would receive)."""
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", *args, "--url", service.url, "--token",
                           service.runtime.token], capture_output=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()
    return done


@pytest.fixture(scope="module")
def evil_service(tmp_path_factory: pytest.TempPathFactory, database):
    service = start_service(tmp_path_factory.mktemp("escapes"), "process", database)
    service.deploy("evil", PLUGIN, "proj-evil")
    for event_id, response in (("evt-ok", {}), ("evt-fail", {"FAIL": True})):
        event = {"id": event_id, "type": "onSubmit", "project_id": "proj-evil", "asset_id": "asset-1",
                 "label": {"id": f"label-{event_id}", "labelType": "DEFAULT", "jsonResponse": response}}
        assert service.post_event(event).status_code == 202
    service.settle()
    yield service
    stop_service(service)


def _run_ids(service: Service) -> dict[str, str]:
    rows = json.loads(_cli(service, "runs", "list", "--plugin", "evil", "--json").stdout)
    return {row["event_id"]: row["id"] for row in rows}


#: Each human view, and what of the plugin's text it shows (escaped), if any.
VIEWS = {
    "plugins-logs": (["plugins", "logs", "evil"], "[info] log \\x1b[2K\\r\\x1b[32mOK"),
    "runs-list": (["runs", "list", "--plugin", "evil"], None),
    "runs-show": (["runs", "show", "{evt-ok}"], "[info] print \\x1b[2K\\r\\x1b[32mOK"),
    "runs-show-failed": (["runs", "show", "{evt-fail}"], "RuntimeError: error \\x1b[2K\\r"),
    "assets-show": (["assets", "show", "asset-1", "--project", "proj-evil"], "issue \\x1b[2K\\r\\x1b[32mOK"),
    "assets-list": (["assets", "list", "--project", "proj-evil"], '"meta \\u001b[2K\\r'),
}


@pytest.mark.parametrize("name", VIEWS)
def test_human_views_of_the_service_escape_plugin_text(evil_service: Service, name: str) -> None:
    view, expected = VIEWS[name]
    runs = _run_ids(evil_service)
    done = _cli(evil_service, *[runs[part[1:-1]] if part.startswith("{") else part for part in view])
    assert not raw_controls(done.stdout) and not raw_controls(done.stderr), done.stdout.decode()
    shown = done.stdout.decode()
    if expected:
        assert expected in shown, shown  # the plugin's text is there, visibly escaped, not dropped
    if name == "plugins-logs":
        # A newline in a message cannot forge a line that passes for another run's.
        assert "\nevt-forged" not in shown and "\n    evt-forged asset-1 [info] forged line" in shown


def test_json_views_of_the_service_keep_plugin_text_exactly(evil_service: Service) -> None:
    runs = _run_ids(evil_service)
    logs = [json.loads(line) for line in _cli(evil_service, "plugins", "logs", "evil", "--json").stdout.splitlines()]
    assert "log " + EVIL + "\nevt-forged asset-1 [info] forged line" in [line["message"] for line in logs]
    assert "print " + EVIL in [line["message"] for line in logs]
    failed = json.loads(_cli(evil_service, "runs", "show", runs["evt-fail"], "--json").stdout)
    assert "RuntimeError: error " + EVIL in failed["error"]
    asset = json.loads(_cli(evil_service, "assets", "show", "asset-1", "--project", "proj-evil", "--json").stdout)
    assert {issue["text"] for issue in asset["issues"]} == {"issue " + EVIL}
    assert asset["json_metadata"] == {"note": "meta " + EVIL}


def test_dry_run_human_view_escapes_and_json_keeps_plugin_text(tmp_path: Path, write_plugin, write_events) -> None:
    plugin = write_plugin(tmp_path, PLUGIN)
    events = write_events(
        tmp_path / "events.jsonl",
        make_event(id="evt-ok", asset_id="asset-1", label=make_label({}, id="label-ok")),
        make_event(id="evt-fail", asset_id="asset-1", label=make_label({"FAIL": True}, id="label-fail")),
    )
    command = [sys.executable, "-m", "plugin_runtime", "dry-run", str(plugin), "--events", str(events)]
    human = subprocess.run([*command, "--format", "human"], capture_output=True, timeout=300, cwd=REPO)
    assert human.returncode == 1  # one event fails, by design
    assert not raw_controls(human.stdout) and not raw_controls(human.stderr), human.stdout.decode()
    shown = human.stdout.decode()
    assert "[info] log \\x1b[2K\\r\\x1b[32mOK" in shown and "RuntimeError: error \\x1b[2K" in shown
    assert "\n      evt-forged asset-1 [info] forged line" in shown  # continuation, indented
    as_json = subprocess.run([*command, "--format", "json"], capture_output=True, timeout=300, cwd=REPO)
    ok, failed = (json.loads(line) for line in as_json.stdout.splitlines())
    assert [log["message"] for log in ok["logs"]] == ["log " + EVIL + "\nevt-forged asset-1 [info] forged line",
                                                      "print " + EVIL]
    assert [a["text"] for a in ok["actions"] if a["type"] == "create_issue"] == ["issue " + EVIL]
    assert "RuntimeError: error " + EVIL in failed["error"]


def test_errors_quoting_plugin_file_names_are_escaped(evil_service: Service, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("main.py", PLUGIN)
        zipped.writestr("../\x1b]0;pwned\x07\u202eyp.evil", "x = 1\n")
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "plugins", "upload", str(archive), "--name", "evil2",
                           "--url", evil_service.url, "--token", evil_service.runtime.token],
                          capture_output=True, timeout=300, cwd=REPO)
    assert done.returncode != 0
    assert not raw_controls(done.stdout) and not raw_controls(done.stderr), done.stderr.decode()
    assert "climbs out" in done.stderr.decode() and "pwned" in done.stderr.decode()
