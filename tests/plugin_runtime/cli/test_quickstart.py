"""The README's quickstart, run as written: its ``sh`` block, line by line in one shell, from
the checkout into a fresh home folder outside it, against the runtime it starts itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.plugin_runtime.service_fixtures import REPO, free_port

HEADING = "## Quickstart for plugin authors"


def quickstart_commands() -> list[str]:
    """The command lines of the first ``sh`` block under the quickstart heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING):]
    block = re.search(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert block is not None, "no ```sh block under the quickstart heading"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_as_written(commands: list[str], home: Path) -> tuple[dict[int, str], dict[int, str], int]:
    """Run the commands in one bash (so `export`, `cd` and `&` carry over), stopping at the first
    failure; returns each command's stdout and stderr, by index, and the shell's exit code."""
    script = "set -e\n" + "".join(
        f"printf '\\n@@@ {i}\\n'; printf '\\n@@@ {i}\\n' >&2\n{line}\n" for i, line in enumerate(commands))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_RUNTIME_")}
    real_home = os.environ.get("HOME", "/root")
    # A home of its own for ~/plugins; pip keeps reading the user's configuration and cache.
    env.update(HOME=str(home), PLUGIN_RUNTIME_PORT=str(free_port()),
               XDG_CONFIG_HOME=os.environ.get("XDG_CONFIG_HOME", f"{real_home}/.config"),
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", f"{real_home}/.cache"))
    process = subprocess.Popen(["bash", "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=900)
    finally:
        try:  # whatever the block left running in the background (the runtime, if it failed before `kill`)
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return _split(out), _split(err), process.returncode


def _split(text: str) -> dict[int, str]:
    parts = re.split(r"\n@@@ (\d+)\n", "\n" + text)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_the_readme_quickstart_works_as_written(tmp_path: Path) -> None:
    commands = quickstart_commands()
    steps = {name: next((i for i, c in enumerate(commands) if re.search(pattern, c)), None) for name, pattern in {
        "install": r"^\./scripts/bootstrap\.sh && export PATH=", "init": r"^plugin-runtime init ",
        "dry-run": r"^plugin-runtime dry-run ", "test": r"^pytest ", "serve": r"^plugin-runtime serve .*&",
        "upload": r"^plugin-runtime plugins upload ", "activate": r"^plugin-runtime plugins activate ",
        "send": r"^plugin-runtime events send ", "runs": r"^plugin-runtime runs list", "stop": r"^kill ",
    }.items()}
    assert None not in steps.values(), steps
    assert list(steps.values()) == sorted(steps.values()), "the steps are out of order"
    home = tmp_path / "home"
    home.mkdir()
    out, err, code = run_as_written(commands, home)
    assert code == 0, f"stopped at: {commands[max(out)]}\nstdout: {out[max(out)]}\nstderr: {err[max(err)]}"
    assert sorted(out) == list(range(len(commands)))  # every command ran

    work = home / "plugins"
    folder = work / "invoice-bot"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith((".", "__"))) == [
        "README.md", "events.jsonl", "main.py", "requirements.txt", "test_main.py"]
    assert not (REPO / "invoice-bot").exists() and not (REPO / "runtime.log").exists()

    assert out[steps["init"]].startswith("created invoice-bot/\n")
    dry = out[steps["dry-run"]]
    assert "evt-0002  onSubmit  asset-02  OK  2 action(s)" in dry
    assert "create_issue asset-02 label_id=\"label-02\" text=\"IBAN should start with FR, not 'DE89'\"" in dry
    assert "evt-0004  onReview  asset-01  OK  (no hook for this event)" in dry
    assert re.search(r"dry-run: 5 events in [\d.]+ s: 5 ok", dry + err[steps["dry-run"]])
    assert re.search(r"\b4 passed\b", out[steps["test"]])
    assert out[steps["upload"]].splitlines() == [
        "invoice-bot v1 deployed: the live version (subscribes to onSubmit)",
        "next, run it on the project of its events.jsonl: plugin-runtime plugins activate invoice-bot "
        "--project proj-invoices"]
    assert out[steps["activate"]].strip() == "invoice-bot is active on proj-invoices"
    assert "5 event(s) acknowledged, 0 not" in err[steps["send"]]
    runs = [line.split() for line in out[steps["runs"]].splitlines()[1:]]
    # One run per submitted label (4); the review has no hook, so no run.
    assert sorted((row[1], row[3], row[5]) for row in runs) == [
        (f"evt-000{i}", "invoice-bot", "succeeded") for i in (1, 2, 3, 5)]
    assert "plugin-runtime serving on" in (work / "runtime.log").read_text()
    assert all("\r" not in text for text in [*out.values(), *err.values()])
