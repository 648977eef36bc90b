"""``plugin-runtime diff A B --events FILE`` through the real CLI: one JSON line per event saying
what each version did and what only one of them did, the summary on stderr, exit 0 / 1 / 2,
uploaded versions read from a running service, and the Docker sandbox."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin_runtime.cli import main
from tests.plugin_runtime.service_fixtures import INVOICE, Service, start_service, stop_service

REPO = Path(__file__).resolve().parents[3]

#: Opens an issue on a label whose "OK" is false; reviews nothing.
ISSUES = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
'''
#: The same, and also sends the asset back; fails on asset-3; has a review hook.
STRICTER = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if asset_id == "asset-3":
            raise ValueError("cannot read asset-3")
        if not label["jsonResponse"].get("OK"):
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
            self.kili.send_back_to_queue(asset_ids=[asset_id])

    def on_review(self, label, asset_id):
        self.kili.add_to_review(asset_ids=[asset_id])
'''
#: The first plugin's actions, in the other order.
REORDERED = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
'''
IN_ORDER = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["bad"])
        self.kili.send_back_to_queue(asset_ids=[asset_id])
'''


def submit(number: int, ok: bool, project: str = "proj-diff") -> dict:
    return {"id": f"evt-{number}", "type": "onSubmit", "project_id": project, "asset_id": f"asset-{number}",
            "label": {"id": f"label-{number}", "labelType": "DEFAULT", "jsonResponse": {"OK": ok}}}


def review(number: int) -> dict:
    return {**submit(number, True), "type": "onReview"}


def diff(*args: str | Path, cwd: Path = REPO) -> tuple[int, list[dict], str]:
    """The real command on pipes: exit code, its JSON lines, its stderr (never a traceback)."""
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "diff", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.fixture
def events(tmp_path: Path, write_events) -> Path:
    return write_events(tmp_path / "events.jsonl", submit(1, True), submit(2, False), submit(3, False), review(4))


def test_each_event_says_what_each_version_did_and_what_only_one_did(tmp_path, write_plugin, events) -> None:
    a, b = write_plugin(tmp_path, ISSUES), write_plugin(tmp_path, STRICTER)
    code, lines, err = diff(a, b, "--events", events)
    assert code == 1, err
    assert [line["event_id"] for line in lines] == ["evt-1", "evt-2", "evt-3", "evt-4"]
    assert [line["same"] for line in lines] == [True, False, False, False]
    issue = {"type": "create_issue", "asset_id": "asset-2", "label_id": "label-2", "text": "bad", "object_mid": None}
    send_back = {"type": "send_back_to_queue", "asset_id": "asset-2"}
    assert lines[0] == {"event_id": "evt-1", "same": True, "a": {"status": "ok", "actions": [], "error": None},
                        "b": {"status": "ok", "actions": [], "error": None}, "only_a": [], "only_b": [],
                        "reordered": False}
    assert lines[1]["a"]["actions"] == [issue] and lines[1]["b"]["actions"] == [issue, send_back]
    assert (lines[1]["only_a"], lines[1]["only_b"]) == ([], [send_back])
    # b failed on asset-3: a's issue is what only a did, and b's error is on its line.
    assert (lines[2]["a"]["status"], lines[2]["b"]["status"]) == ("ok", "error")
    assert "cannot read asset-3" in lines[2]["b"]["error"]
    assert lines[2]["only_a"] == [{**issue, "asset_id": "asset-3", "label_id": "label-3"}] and lines[2]["only_b"] == []
    # a has no review hook: it does nothing, b sends to review.
    assert lines[3]["only_b"] == [{"type": "add_to_review", "asset_id": "asset-4"}]
    assert err.splitlines()[0].startswith("diff: 4 events compared in ")
    assert err.splitlines()[0].endswith(", 3 differ")
    assert err.splitlines()[1:] == [
        "  add_to_review       only in a: 0  only in b: 1",
        "  create_issue        only in a: 1  only in b: 0",
        "  send_back_to_queue  only in a: 0  only in b: 1",
        "  status  a ok, b error: 1 event(s)",
    ]


def test_the_same_plugin_twice_differs_nowhere_and_exits_0(tmp_path, events) -> None:
    code, lines, err = diff(INVOICE, INVOICE / "main.py", "--events", INVOICE / "events.jsonl")
    assert code == 0, err
    recorded = (INVOICE / "events.jsonl").read_text().splitlines()
    assert [line["event_id"] for line in lines] == [json.loads(event)["id"] for event in recorded]
    assert all(line["same"] and line["a"] == line["b"] for line in lines)
    assert any(line["a"]["actions"] for line in lines)  # the recorded events make the bot act
    assert err.splitlines()[0].endswith(", 0 differ")


def test_the_same_actions_in_another_order_differ_without_only_a_or_only_b(tmp_path, write_plugin, events) -> None:
    a, b = write_plugin(tmp_path, IN_ORDER), write_plugin(tmp_path, REORDERED)
    code, lines, err = diff(a, b, "--events", events)
    assert code == 1
    for line in lines[:3]:
        assert (line["same"], line["only_a"], line["only_b"], line["reordered"]) == (False, [], [], True)
        assert [x["type"] for x in line["a"]["actions"]] == ["create_issue", "send_back_to_queue"]
        assert line["b"]["actions"] == line["a"]["actions"][::-1]
    assert "  same actions in another order: 3 event(s)" in err.splitlines()


def test_refused_inputs_exit_2_with_what_to_do(tmp_path, write_plugin, write_events, events) -> None:
    plugin = write_plugin(tmp_path, ISSUES)
    array = tmp_path / "array.json"
    array.write_text(json.dumps([submit(1, True)]))
    code, lines, err = diff(plugin, plugin, "--events", array)
    assert (code, lines) == (2, [])
    assert err.startswith(f"error: {array} holds a JSON array of 1 item(s)")
    code, lines, err = diff(plugin, tmp_path / "nowhere", "--events", events)
    assert (code, lines) == (2, [])
    assert err == (f"error: the plugin was refused:\n- {tmp_path / 'nowhere'}: no such file or folder, and not an "
                   "uploaded plugin's version: give a plugin's path (a main.py, a folder or a .zip) or "
                   "NAME@VERSION / NAME@live\n")
    broken = write_plugin(tmp_path, "from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore)\n")
    code, _, err = diff(plugin, broken, "--events", events)
    assert code == 2 and "main.py" in err and "syntax" in err.lower()
    # One bad line among good ones is said on stderr; the others are compared.
    mixed = write_events(tmp_path / "mixed.jsonl", submit(1, True), "{not json", submit(2, False))
    code, lines, err = diff(plugin, plugin, "--events", mixed)
    assert code == 0 and [line["event_id"] for line in lines] == ["evt-1", "evt-2"]
    assert f"error: {mixed}:2: not valid JSON" in err
    assert "diff: 2 events compared" in err and "1 event line(s) refused, not compared" in err
    # Every line refused: nothing was compared, which is not "no event differs".
    refused = write_events(tmp_path / "refused.jsonl", "{not json", '{"x": 1}')
    code, lines, err = diff(plugin, plugin, "--events", refused)
    assert (code, lines) == (2, [])
    assert "diff: 0 events compared" in err and "2 event line(s) refused, not compared" in err


def test_the_human_view_is_readable_and_coloured_only_on_a_terminal(tmp_path, write_plugin, events) -> None:
    a, b = write_plugin(tmp_path, ISSUES), write_plugin(tmp_path, STRICTER)
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "diff", str(a), str(b), "--events", str(events),
                           "--format", "human"], capture_output=True, text=True, timeout=300, check=False)
    code, out = done.returncode, done.stdout
    assert code == 1
    assert "\x1b" not in out  # a pipe gets no colour, even in the human view
    lines = out.splitlines()
    assert lines[:3] == [f"a: {a}", f"b: {b}", ""]
    assert lines[3] == "evt-1  onSubmit  asset-1  same  (ok, 0 action(s))"
    assert lines[4:6] == ["evt-2  onSubmit  asset-2  DIFFERS  a: ok, 1 action(s)  b: ok, 2 action(s)",
                          "    + send_back_to_queue asset-2"]
    assert lines[6] == "evt-3  onSubmit  asset-3  DIFFERS  a: ok, 1 action(s)  b: ERROR"
    assert lines[7] == '    - create_issue asset-3 label_id="label-3" text="bad"'
    assert lines[8].startswith("    b failed") and "ValueError: cannot read asset-3" in out
    assert "evt-4  onReview  asset-4  DIFFERS  a: no hook  b: ok, 1 action(s)" in lines
    # On a terminal (click's colour switch, as a tty sets it) the same lines carry colours.
    coloured = CliRunner().invoke(main, ["diff", str(a), str(b), "--events", str(events), "--format", "human"],
                                  color=True)
    assert coloured.exit_code == 1
    assert "\x1b[32m    + send_back_to_queue asset-2\x1b[0m" in coloured.output
    assert "\x1b[31m    - create_issue asset-3" in coloured.output


def test_plugin_text_cannot_drive_the_terminal(tmp_path, write_plugin, events) -> None:
    hostile = ISSUES.replace('text_array=["bad"]', 'text_array=["\\x1b[2J\\rOK \\u202e"]')
    a, b = write_plugin(tmp_path, ISSUES), write_plugin(tmp_path, hostile)
    done = CliRunner().invoke(main, ["diff", str(a), str(b), "--events", str(events), "--format", "human"])
    assert '    + create_issue asset-2 label_id="label-2" text="\\u001b[2J\\rOK \\u202e"' in done.output
    assert "\x1b" not in done.output and "\r" not in done.output and "\u202e" not in done.output


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(tmp_path_factory.mktemp("diff-service"), "process")
    yield running
    stop_service(running)


def test_uploaded_versions_and_an_events_export_as_input(service: Service, tmp_path, write_plugin) -> None:
    """NAME@VERSION and NAME@live are read through the API; what `events export` wrote is input."""
    service.deploy("diffbot", ISSUES, project="proj-diff")
    update = service.admin.post(f"{service.url}/v1/plugins/diffbot/versions", data=_zip(STRICTER), timeout=60)
    assert update.status_code == 202, update.text
    assert service.runtime.registry.wait("diffbot", 2, 60)["status"] == "active"  # the live version
    for event in (submit(1, True), submit(2, False)):
        assert service.post_event(event).status_code == 202
    service.settle()
    recorded = tmp_path / "recorded.jsonl"
    exported = service.cli("events", "export", "--project", "proj-diff", "-o", str(recorded))
    assert exported.returncode == 0, exported.stderr
    client = ("--url", service.url, "--token", service.runtime.token)
    code, lines, err = diff("diffbot@1", "diffbot@2", "--events", recorded, *client)
    assert code == 1, err
    by_id = {line["event_id"]: line for line in lines}
    assert (by_id["evt-1"]["same"], by_id["evt-2"]["same"]) == (True, False)
    assert by_id["evt-2"]["only_b"] == [{"type": "send_back_to_queue", "asset_id": "asset-2"}]
    # The export holds the send-back v2 caused, too: neither version has a hook for it.
    caused = [line for line in lines if line["event_id"].startswith("run-")]
    assert caused and all(line["same"] for line in caused)
    # live is version 2: the same as a copy of its files on disk.
    code, lines, err = diff("diffbot@live", write_plugin(tmp_path, STRICTER), "--events", recorded, *client)
    assert code == 0, err
    local = write_plugin(tmp_path, ISSUES)
    code, _, err = diff("diffbot@7", local, "--events", recorded, *client)
    assert code == 2 and err == "error: cannot read an uploaded plugin: 404: plugin 'diffbot' has no version 7\n"
    code, _, err = diff("nobody@live", local, "--events", recorded, *client)
    assert code == 2 and err == "error: cannot read an uploaded plugin: 404: plugin 'nobody' does not exist\n"
    code, _, err = diff("diffbot@live", local, "--events", recorded, "--url", service.url, "--token", "wrong")
    assert code == 2 and err.startswith("error: cannot read an uploaded plugin: 401: ")


def _zip(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", code)
    return buffer.getvalue()


@pytest.mark.docker
def test_the_docker_sandbox_gives_the_same_lines(docker_client, tmp_path, write_plugin, events) -> None:
    a, b = write_plugin(tmp_path, ISSUES), write_plugin(tmp_path, STRICTER)
    code, process_lines, err = diff(a, b, "--events", events)
    assert code == 1, err
    code, docker_lines, err = diff(a, b, "--events", events, "--sandbox", "docker")
    assert code == 1, err
    for line in process_lines + docker_lines:  # tracebacks name the plugin's own folder
        for side in ("a", "b"):
            line[side]["error"] = line[side]["error"] and line[side]["error"].splitlines()[-1]
    assert docker_lines == process_lines
