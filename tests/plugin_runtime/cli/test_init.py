"""``plugin-runtime init``: a plugin folder that dry-runs, tests and uploads as it is, anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin_runtime.cli import main
from plugin_runtime.recordings import read_events
from plugin_runtime.source import load_source

FILES = ["README.md", "events.jsonl", "main.py", "requirements.txt", "test_main.py"]


def _invoke_in(folder: Path, *args: str):
    """The command run in ``folder``, as a user would from there."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(before)


def test_init_writes_the_five_files_and_says_what_next(tmp_path: Path) -> None:
    result = _invoke_in(tmp_path, "init", "invoice-bot")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "invoice-bot"
    assert sorted(p.name for p in folder.iterdir()) == FILES
    lines = result.output.splitlines()
    assert lines[0] == "created invoice-bot/"
    assert [line.split()[0] for line in lines[1:6]] == ["main.py", "requirements.txt", "events.jsonl", "test_main.py",
                                                        "README.md"]
    assert "  plugin-runtime dry-run invoice-bot --events invoice-bot/events.jsonl --format human" in lines
    assert "  pytest invoice-bot" in lines
    assert any(line.startswith("  plugin-runtime plugins upload invoice-bot --name invoice-bot") for line in lines)
    main_py = (folder / "main.py").read_text()
    assert "from plugin_sdk import PluginCore" in main_py and "kili.plugins" not in main_py
    assert main_py.startswith('"""invoice-bot: ')
    readme = (folder / "README.md").read_text()
    for command in ("plugin-runtime dry-run invoice-bot --events invoice-bot/events.jsonl --format human",
                    "pytest invoice-bot", "plugin-runtime plugins upload invoice-bot --name invoice-bot"):
        assert command in readme
    assert "{{" not in readme + main_py + (folder / "test_main.py").read_text()


def test_the_events_are_one_valid_event_per_line_passing_and_failing(tmp_path: Path) -> None:
    _invoke_in(tmp_path, "init", "bot")
    text = (tmp_path / "bot" / "events.jsonl").read_text()
    records = list(read_events(tmp_path / "bot" / "events.jsonl"))
    assert [r.error for r in records] == [None] * 5
    assert len(text.splitlines()) == 5
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["type"] for e in events] == ["onSubmit", "onSubmit", "onSubmit", "onReview", "onSubmit"]
    jobs = events[0]["context"]["project"]["jsonInterface"]["jobs"]
    # The bot reads the jobs the events' project declares.
    assert {name: job["mlTask"] for name, job in jobs.items()} == {"IBAN": "TRANSCRIPTION", "CURRENCY": "CLASSIFICATION"}
    assert all(set(e["label"]["jsonResponse"]) == {"IBAN", "CURRENCY"} for e in events)


@pytest.mark.parametrize("kili", [False, True])
def test_the_folder_dry_runs_and_its_tests_pass_outside_the_repository(tmp_path: Path, kili: bool) -> None:
    result = _invoke_in(tmp_path, "init", "invoice-bot", *(["--kili"] if kili else []))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "invoice-bot"
    if kili:
        assert "from kili.plugins import PluginCore" in (folder / "main.py").read_text()
    dry = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", "invoice-bot", "--events",
                          "invoice-bot/events.jsonl", "--format", "json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    results = [json.loads(line) for line in dry.stdout.splitlines()]
    assert [(r["status"], r["skipped"], [a["type"] for a in r["actions"]]) for r in results] == [
        ("ok", False, []),
        ("ok", False, ["create_issue", "send_back_to_queue"]),
        ("ok", False, ["create_issue", "send_back_to_queue"]),
        ("ok", True, []),
        ("ok", False, []),
    ]
    assert "warning" not in dry.stderr  # the comment-only requirements.txt asks for nothing
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "invoice-bot"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout


def test_init_never_overwrites_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "notes.txt").write_text("# mine\n")
    result = _invoke_in(tmp_path, "init", "bot")
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.output
    assert (tmp_path / "bot" / "notes.txt").read_text() == "# mine\n"
    assert sorted(p.name for p in (tmp_path / "bot").iterdir()) == ["notes.txt"]


def test_init_fills_an_empty_folder_and_refuses_a_file_or_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _invoke_in(tmp_path, "init", "empty").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == FILES
    (tmp_path / "afile").write_text("x")
    refused = _invoke_in(tmp_path, "init", "afile")
    assert (refused.exit_code, "is not a folder" in refused.output) == (2, True)
    for bad in ("Bad", "a/B", "-x", "my bot"):
        result = _invoke_in(tmp_path, "init", "--", bad) if bad.startswith("-") else _invoke_in(tmp_path, "init", bad)
        assert result.exit_code == 2, bad
        assert "cannot name a plugin" in result.output
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(("given", "suggested"), [("my bot", "my-bot"), ("My_Bot", "my_bot"), ("-x", "x"),
                                                  ("Invoice QA!", "invoice-qa")])
def test_a_bad_name_gets_a_name_to_use_instead(tmp_path: Path, given: str, suggested: str) -> None:
    result = _invoke_in(tmp_path, "init", "--", given)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {given!r} cannot name a plugin: try {suggested!r}. A plugin's name is ")
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
    assert _invoke_in(tmp_path, "init", suggested).exit_code == 0  # the suggestion is a valid name


def test_init_twice_says_the_plugin_is_there_and_keeps_it(tmp_path: Path) -> None:
    assert _invoke_in(tmp_path, "init", "bot").exit_code == 0
    (tmp_path / "bot" / "main.py").write_text("# my edits\n")
    again = _invoke_in(tmp_path, "init", "bot")
    assert again.exit_code == 2
    assert again.output == ("error: bot already holds a plugin (its main.py): work in it as it is, "
                            "or choose another name for a new one (init never overwrites files)\n")
    assert (tmp_path / "bot" / "main.py").read_text() == "# my edits\n"


def test_init_takes_a_path_and_names_the_plugin_after_its_last_part(tmp_path: Path) -> None:
    result = _invoke_in(tmp_path, "init", "plugins/invoice-bot")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "plugins" / "invoice-bot"
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert (folder / "main.py").read_text().startswith('"""invoice-bot: ')
    lines = result.output.splitlines()
    assert lines[0] == "created plugins/invoice-bot/"
    assert lines[-3:] == [
        "  plugin-runtime dry-run plugins/invoice-bot --events plugins/invoice-bot/events.jsonl --format human",
        "  pytest plugins/invoice-bot",
        "  plugin-runtime plugins upload plugins/invoice-bot --name invoice-bot   # with `plugin-runtime serve` running in this folder",
    ]
    # The printed commands work as printed, from where init ran.
    dry = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", "plugins/invoice-bot", "--events",
                          "plugins/invoice-bot/events.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr


def test_init_dot_fills_the_current_empty_folder_named_after_it(tmp_path: Path) -> None:
    folder = tmp_path / "qa-bot"
    folder.mkdir()
    result = _invoke_in(folder, "init", ".")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert (folder / "main.py").read_text().startswith('"""qa-bot: ')
    assert result.output.splitlines()[0] == "created qa-bot in ./"
    assert result.output.splitlines()[-3:] == [
        "  plugin-runtime dry-run . --events events.jsonl --format human",
        "  pytest",
        "  plugin-runtime plugins upload . --name qa-bot   # with `plugin-runtime serve` running in this folder",
    ]
    assert _invoke_in(folder, "init", ".").exit_code == 2  # now it holds a plugin


def test_the_generated_readme_commands_are_whole_lines_to_copy(tmp_path: Path) -> None:
    """Each command of the plugin's README is a line of its own (its comment above it), so a
    long name cannot push the comments out of line or into the command."""
    _invoke_in(tmp_path, "init", "a-rather-long-plugin-name")
    readme = (tmp_path / "a-rather-long-plugin-name" / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    commands = [line for line in block if not line.startswith("#")]
    assert commands == [
        "plugin-runtime dry-run a-rather-long-plugin-name --events a-rather-long-plugin-name/events.jsonl --format human",
        "pytest a-rather-long-plugin-name",
        "plugin-runtime plugins upload a-rather-long-plugin-name --name a-rather-long-plugin-name",
    ]
    assert "plugins activate a-rather-long-plugin-name --project proj-invoices" in readme


def test_a_runtime_data_directory_in_the_folder_is_never_part_of_the_plugin(tmp_path: Path) -> None:
    _invoke_in(tmp_path, "init", "bot")
    secrets = tmp_path / "bot" / ".plugin-runtime"
    secrets.mkdir()
    (secrets / "token").write_text("admin-token\n")
    source = load_source(tmp_path / "bot")
    assert sorted(source.files) == ["events.jsonl", "main.py", "requirements.txt"]
