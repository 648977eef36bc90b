"""``plugin-runtime dry-run`` as a newcomer runs it on a folder made by ``init``: the mistakes
one makes first (no --events, a pretty-printed or empty events file, a typo in a hook's name,
a syntax error) each get one message saying what is wrong and what to do, never a traceback."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin_runtime import scaffold


@pytest.fixture
def bot(tmp_path: Path) -> Path:
    return scaffold.create(tmp_path / "bot").folder


def dry_run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The command on pipes, from ``cwd``, as a user types it. Never a traceback of the command
    itself (a failing hook's own traceback is the plugin's output, shown as its lines '    ! ...')."""
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    assert all(line.startswith("    ! ") for line in done.stdout.splitlines() if "Traceback" in line)
    assert "\r" not in done.stdout + done.stderr
    return done


def test_without_events_it_replays_the_folders_own_and_says_so(bot: Path) -> None:
    done = dry_run(bot.parent, "bot", "--format", "human")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == "events: bot/events.jsonl (--events FILE for others)"
    assert "evt-0002  onSubmit  asset-02  OK  2 action(s)" in done.stdout


def test_without_events_and_none_in_the_folder_it_says_what_to_pass(tmp_path: Path, write_plugin) -> None:
    plugin = write_plugin(tmp_path, "from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n"
                                    "    def on_submit(self, label, asset_id):\n        pass\n")
    done = dry_run(tmp_path, plugin.name)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"Error: Missing option '--events': no events.jsonl next to the plugin ({plugin.name}/events.jsonl). Give "
        "the recorded events to replay, one JSON object per line: --events FILE (`plugin-runtime events export` "
        "records a project's; `plugin-runtime init` writes an example)")


def test_a_pretty_printed_event_is_one_error_with_the_command_that_fixes_it(bot: Path) -> None:
    first = json.loads((bot / "events.jsonl").read_text().splitlines()[0])
    (bot.parent / "event.json").write_text(json.dumps(first, indent=2))
    done = dry_run(bot.parent, "bot", "--events", "event.json")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines == [f"error: event.json holds one JSON object written over "
                     f"{len(json.dumps(first, indent=2).splitlines())} lines; an events file holds one event per "
                     "line (JSON Lines). Put it on one line with: python3 -m json.tool --compact event.json > "
                     "event-lines.jsonl"]
    assert done.stdout == ""
    _run_the_fix(lines[0], bot.parent)
    fixed = dry_run(bot.parent, "bot", "--events", "event-lines.jsonl")
    assert (fixed.returncode, fixed.stderr.splitlines()[-1].split(": ")[-1]) == (0, "1 ok")


def test_a_json_array_of_events_is_one_error_with_the_command_that_fixes_it(bot: Path) -> None:
    events = [json.loads(line) for line in (bot / "events.jsonl").read_text().splitlines()]
    for name, text in {"one-line.json": json.dumps(events), "indented.json": json.dumps(events, indent=1)}.items():
        (bot.parent / name).write_text(text)
        done = dry_run(bot.parent, "bot", "--events", name)
        assert done.returncode == 2
        [line] = done.stderr.splitlines()
        assert line.startswith(f"error: {name} holds a JSON array of 5 item(s); an events file holds one event per "
                               "line (JSON Lines), not an array. Convert it with: python3 -c ")
        _run_the_fix(line, bot.parent)
        stem = name.removesuffix(".json")
        fixed = dry_run(bot.parent, "bot", "--events", f"{stem}-lines.jsonl")
        assert fixed.returncode == 0 and fixed.stderr.splitlines()[-1].endswith(": 5 ok"), fixed.stderr


def _run_the_fix(message: str, cwd: Path) -> None:
    """The shell command the message ends with, run as written."""
    command = message.split(" with: ", 1)[1]
    shlex.split(command)  # valid shell words
    subprocess.run(["bash", "-c", command], cwd=cwd, check=True, timeout=60)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_events_file_is_refused_not_a_success(bot: Path, content: str) -> None:
    (bot.parent / "empty.jsonl").write_text(content)
    done = dry_run(bot.parent, "bot", "--events", "empty.jsonl")
    assert done.returncode == 2
    assert done.stderr == ("error: empty.jsonl holds no events: an events file holds one JSON object per line "
                           "(`plugin-runtime events export` records a project's events; `plugin-runtime init` "
                           "writes an example)\n")
    piped = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", "bot", "--events", "-"], input="",
                           cwd=bot.parent, capture_output=True, text=True, timeout=120)
    assert (piped.returncode, piped.stderr.startswith("error: stdin holds no events")) == (2, True)


def test_a_folder_or_a_missing_file_as_events(bot: Path) -> None:
    (bot.parent / "recordings").mkdir()
    folder = dry_run(bot.parent, "bot", "--events", "recordings")
    assert (folder.returncode, folder.stderr) == (2, "error: cannot read events from recordings: Is a directory\n")
    missing = dry_run(bot.parent, "bot", "--events", "nowhere.jsonl")
    assert (missing.returncode, missing.stderr) == (
        2, "error: cannot read events from nowhere.jsonl: No such file or directory\n")


def test_a_misspelt_hook_is_named_with_the_hook_it_should_be(bot: Path) -> None:
    main = bot / "main.py"
    main.write_text(main.read_text().replace("def on_submit(", "def on_sumbit("))
    alone = dry_run(bot.parent, "bot")
    assert alone.returncode == 2
    assert alone.stderr.splitlines()[-1].endswith(": on_sumbit is not a hook: did you mean on_submit?")
    # Next to a real hook, it is a warning: the plugin runs, without the misspelt one.
    main.write_text(main.read_text().replace("def on_sumbit(", "def on_submit(")
                    + "\n    def onReview(self, label, asset_id):\n        pass\n")
    beside = dry_run(bot.parent, "bot")
    assert beside.returncode == 0
    assert any(line.startswith("warning: main.py:") and line.endswith(
        ": onReview is not a hook and is never called: did you mean on_review?") for line in beside.stderr.splitlines())


def test_a_helper_named_like_a_defined_hook_is_not_flagged(bot: Path) -> None:
    main = bot / "main.py"
    main.write_text(main.read_text() + "\n    def on_submit_v2(self, label, asset_id):\n        pass\n")
    done = dry_run(bot.parent, "bot")
    assert done.returncode == 0 and "warning" not in done.stderr


def test_a_syntax_error_names_the_line_without_a_traceback(bot: Path) -> None:
    main = bot / "main.py"
    main.write_text(main.read_text().replace('problems(label["jsonResponse"])', 'problems(label["jsonResponse"]'))
    done = dry_run(bot.parent, "bot")
    assert done.returncode == 2
    assert "SyntaxError: '(' was never closed" in done.stderr and "fix the syntax at that line" in done.stderr
    assert done.stdout == ""


def test_the_help_says_where_events_come_from_by_default() -> None:
    from plugin_runtime.cli import main

    shown = CliRunner().invoke(main, ["dry-run", "--help"]).output
    assert "Default: the plugin folder's events.jsonl." in " ".join(shown.split())


def test_a_first_line_that_is_an_object_but_not_an_event_is_named_by_line(bot: Path) -> None:
    events = (bot / "events.jsonl").read_text()
    (bot.parent / "first-bad.jsonl").write_text('{"id": "evt-x", "project_id": "proj-invoices"}\n' + events)
    done = dry_run(bot.parent, "bot", "--events", "first-bad.jsonl")
    assert done.returncode == 1  # the other events still ran
    assert done.stderr.splitlines()[0] == "error: first-bad.jsonl:1: event 'evt-x': type: Field required"
    assert done.stderr.splitlines()[-1].endswith(": 1 error, 5 ok")


def test_a_byte_order_mark_before_the_first_event_is_ignored(bot: Path) -> None:
    (bot.parent / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + (bot / "events.jsonl").read_bytes())
    done = dry_run(bot.parent, "bot", "--events", "bom.jsonl")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].endswith(": 5 ok")


def test_a_folder_without_main_py_says_how_to_start_one(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = dry_run(tmp_path, "empty", "--events", "-")
    assert (done.returncode, done.stderr) == (2, (
        "error: the plugin was refused:\n- empty: no main.py (a plugin's main.py defines its PluginHandler; "
        "`plugin-runtime init NAME` writes a working one)\n"))


def test_a_misspelt_kili_method_names_the_one_meant(tmp_path: Path) -> None:
    folder = scaffold.create(tmp_path / "kili-bot", kili=True).folder
    (folder / "main.py").write_text(
        "from kili.plugins import PluginCore\n\n\nclass PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n"
        "        self.kili.send_back_to_queu(asset_ids=[asset_id])\n")
    done = dry_run(tmp_path, "kili-bot", "--format", "human")
    assert done.returncode == 1
    assert ("UnsupportedMethodError: kili.send_back_to_queu is not available to a plugin: did you mean "
            "kili.send_back_to_queue? Available: create_issues, ") in done.stdout
