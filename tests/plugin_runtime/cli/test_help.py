"""``plugin-runtime --help``: where a newcomer starts, each command summed up on one line."""

from __future__ import annotations

from click.testing import CliRunner

from plugin_runtime.cli import main


def test_the_overview_starts_a_newcomer_with_init_and_sums_up_every_command() -> None:
    shown = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    assert "  plugin-runtime init my-bot " in shown and "  plugin-runtime dry-run my-bot " in shown
    commands = shown.split("Commands:\n", 1)[1].splitlines()
    assert len(commands) == len(main.commands)  # one line each: nothing wrapped
    for line in commands:
        name, summary = line.split(maxsplit=1)
        assert name in main.commands
        assert summary.endswith(".") and not summary.endswith("..."), line  # never cut short


def test_upload_and_update_options_all_say_what_they_do() -> None:
    for command in ("upload", "update"):
        shown = " ".join(CliRunner().invoke(main, ["plugins", command, "--help"]).output.split())
        assert "--name TEXT The plugin" in shown or "--name TEXT Plugin name" in shown
        assert "Default: the plugin folder's name." in shown
        assert "--no-wait Return once uploaded" in shown
