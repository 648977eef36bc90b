"""The client commands as a newcomer meets them, against ``plugin-runtime serve`` started in a
folder of their own: the wrong port, the wrong folder, a wrong secret or URL, ids that do not
exist, then what a plugin's runs, assets and versions look like."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from plugin_runtime import scaffold
from tests.plugin_runtime.service_fixtures import free_port


@dataclass
class Served:
    folder: Path  # where `plugin-runtime serve` runs: its data directory is folder/.plugin-runtime
    url: str
    port: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("work")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process"],
                              env={**_env(), "PLUGIN_RUNTIME_PORT": str(port)}, cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline and server.poll() is None, "the runtime did not start"
            time.sleep(0.1)
    yield Served(folder, url, port)
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_RUNTIME_")}
    return {**env, **extra}


def cli(served: Served, *args: str, cwd: Path | None = None, port: int | None = None) -> subprocess.CompletedProcess:
    """The command on pipes, as typed in ``cwd`` (default: the folder where the runtime runs)."""
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", *args],
                          env=_env(PLUGIN_RUNTIME_PORT=str(port or served.port)), cwd=cwd or served.folder,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stdout + done.stderr
    assert "\r" not in done.stdout + done.stderr
    return done


def test_the_wrong_port_names_the_runtimes_url_at_once(served: Served) -> None:
    other = free_port()
    started = time.monotonic()
    for done in (cli(served, "runs", "list", "--url", f"http://127.0.0.1:{other}"),
                 cli(served, "runs", "list", port=other)):
        assert done.returncode == 1
        assert done.stderr == (f"error: nothing answers at http://127.0.0.1:{other}; the runtime of the data "
                               f"directory .plugin-runtime serves at {served.url}: pass --url {served.url} "
                               "(or set PLUGIN_RUNTIME_URL)\n")
    # Not the 30 s a starting runtime is given: the lock says where this one serves.
    assert time.monotonic() - started < 20


def test_another_folder_says_where_the_token_and_secret_live(served: Served, tmp_path: Path) -> None:
    listed = cli(served, "plugins", "list", cwd=tmp_path)
    assert listed.returncode == 1
    assert listed.stderr == (
        "error: no admin token: no runtime data directory (.plugin-runtime) in this folder; a runtime keeps its "
        "token in the data directory of the folder where `plugin-runtime serve` runs: run this command from that "
        "folder, or pass --data-dir PATH or --token\n")
    bot = scaffold.create(tmp_path / "bot").folder
    sent = cli(served, "events", "send", str(bot / "events.jsonl"), cwd=tmp_path)
    assert sent.returncode == 2
    assert sent.stderr.startswith("error: no webhook secret: no runtime data directory (.plugin-runtime) in this "
                                  "folder; a runtime keeps its webhook-secret in the data directory")
    assert sent.stderr.endswith("or pass --data-dir PATH or --secret\n")
    # Pointed at the data directory, the same commands work from anywhere.
    data = str(served.folder / ".plugin-runtime")
    assert cli(served, "plugins", "list", "--data-dir", data, cwd=tmp_path).returncode == 0


def test_a_wrong_secret_is_named_once_with_what_to_do(served: Served, tmp_path: Path) -> None:
    bot = scaffold.create(tmp_path / "bot").folder
    done = cli(served, "events", "send", str(bot / "events.jsonl"), "--secret", "not-the-secret")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "0 event(s) acknowledged, 5 not"
    assert all(line.startswith("not acknowledged: evt-000") and ": 401: " in line for line in lines[1:6])
    assert lines[6:] == ["the runtime accepts only events signed with its webhook secret (the webhook-secret file "
                         "of its data directory): run this from the folder where `plugin-runtime serve` runs, or "
                         "pass --data-dir PATH or the right --secret"]


def test_a_pretty_printed_events_file_is_refused_before_anything_is_sent(served: Served, tmp_path: Path) -> None:
    bot = scaffold.create(tmp_path / "bot").folder
    event = json.loads((bot / "events.jsonl").read_text().splitlines()[0])
    (tmp_path / "event.json").write_text(json.dumps(event, indent=2))
    done = cli(served, "events", "send", str(tmp_path / "event.json"))
    assert done.returncode == 2
    assert re.fullmatch(r"error: .*event\.json holds one JSON object written over \d+ lines; an events file holds "
                        r"one event per line \(JSON Lines\)\. Put it on one line with: python3 -m json.tool "
                        r"--compact .*event\.json > event-lines\.jsonl\n", done.stderr)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli(served, "events", "send", str(empty)).stderr.startswith(f"error: {empty} holds no events")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" + (bot / "events.jsonl").read_text().splitlines()[0] + "\n")
    mixed = cli(served, "events", "send", str(bad))
    # A bad line is named once, by its number, and the good ones still go.
    assert mixed.stderr.splitlines()[1:] == ["not acknowledged: line 1: not valid JSON (Expecting value at column 1)"]


@pytest.mark.parametrize("url", ["127.0.0.1:8400", "http://127.0.0.1:99999", "ftp://127.0.0.1:8400"])
def test_a_url_that_is_not_one_shows_the_shape_expected(served: Served, url: str) -> None:
    for args in (["runs", "list", "--url", url], ["events", "send", "-", "--url", url]):
        done = cli(served, *args)
        assert done.returncode == 2
        assert done.stderr == (f"error: {url!r} is not the runtime's URL: give it as http://HOST:PORT, e.g. "
                               "http://127.0.0.1:8400 (--url or PLUGIN_RUNTIME_URL)\n")


def test_what_does_not_exist_says_where_to_look(served: Served) -> None:
    expected = {
        ("runs", "show", "run-nope"): "error: 404: run 'run-nope' does not exist (`plugin-runtime runs list` lists the runs)",
        ("plugins", "status", "nope"): "error: 404: plugin 'nope' does not exist (`plugin-runtime plugins list` lists "
                                       "the plugins)",
        ("assets", "list", "--project", "proj-nope"): (
            "error: 404: project 'proj-nope' does not exist (`plugin-runtime projects list` lists the projects; "
            "`plugin-runtime projects create proj-nope` creates it, and so does sending a recorded event of that "
            "project)"),
        ("labels", "submit", "--project", "proj-nope", "--asset", "a-1", "--json-response", "{}"): (
            "error: 404: asset 'a-1' does not exist in project 'proj-nope' (`plugin-runtime assets list --project "
            "proj-nope` lists its assets; `plugin-runtime assets create --project proj-nope --id a-1` creates this "
            "one)"),
    }
    for args, message in expected.items():
        done = cli(served, *args)
        assert (done.returncode, done.stderr) == (1, message + "\n"), args


def test_a_bots_runs_assets_and_versions_read_plainly(served: Served) -> None:
    scaffold.create(served.folder / "shown-bot")
    assert cli(served, "plugins", "upload", "shown-bot", "--name", "shown-bot").returncode == 0
    assert cli(served, "plugins", "activate", "shown-bot", "--project", "proj-invoices").returncode == 0
    assert cli(served, "events", "send", "shown-bot/events.jsonl", "--wait-for-runs").returncode == 0

    listed = cli(served, "plugins", "list").stdout.splitlines()
    assert re.fullmatch(r"shown-bot +1 +1 +active +proj-invoices", next(r for r in listed if r.startswith("shown-bot")))
    versions = cli(served, "plugins", "versions", "shown-bot").stdout.splitlines()
    assert re.fullmatch(r"1 +active +[0-9a-f]{12} +onSubmit +\S+ +-", versions[1])
    built = cli(served, "plugins", "build-log", "shown-bot").stdout.splitlines()
    assert built == ["shown-bot v1: no image (the runtime runs plugins as processes, --sandbox process)",
                     "nothing is built for such a runtime, so there is no build log: the version was checked and "
                     "loaded once from its files before going live"]

    runs = json.loads(cli(served, "runs", "list", "--plugin", "shown-bot", "--json").stdout)
    flagged = next(run for run in runs if run["event_id"] == "evt-0002")
    shown = dict(re.match(r"(\S+) +(.*)", line).groups()  # type: ignore[union-attr]
                 for line in cli(served, "runs", "show", flagged["id"]).stdout.splitlines()
                 if re.match(r"[a-z_]+ {2,}\S", line))
    assert shown["outcome"] == "-"
    assert re.fullmatch(r"\d+\.\d", shown["duration_ms"])
    # Its send-back caused one event, which the bot has no hook for; the run's event is its root.
    assert shown["caused"] == "1 event, 0 runs queued for them"
    assert "root" not in shown

    asset = cli(served, "assets", "show", "asset-02", "--project", "proj-invoices").stdout.splitlines()
    assert asset[-1] == ("  [OPEN, resolved by the next label label-02b] IBAN should start with FR, not 'DE89' "
                         "(label label-02)")
    other = cli(served, "assets", "show", "asset-03", "--project", "proj-invoices").stdout.splitlines()
    assert other[-1] == "  [OPEN] Currency should be EUR or USD, not 'GBP' (label label-03)"


def test_upload_without_a_name_takes_the_folders(served: Served) -> None:
    scaffold.create(served.folder / "named-bot")
    done = cli(served, "plugins", "upload", "named-bot")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "named-bot v1 deployed: the live version (subscribes to onSubmit)"
    assert cli(served, "plugins", "update", "named-bot/main.py").stdout.startswith("named-bot v2 deployed")
    unnamed = served.folder / "My Bot"
    unnamed.mkdir()
    (unnamed / "main.py").write_text((served.folder / "named-bot" / "main.py").read_text())
    refused = cli(served, "plugins", "upload", "My Bot")
    assert (refused.returncode, refused.stderr) == (2, (
        "error: pass --name NAME: the plugin's folder 'My Bot' cannot name a plugin (1 to 63 characters among a-z, "
        "0-9, '.', '_' and '-', starting with a letter or digit)\n"))


def test_the_next_step_after_upload_names_the_project_of_the_plugins_events(served: Served) -> None:
    folder = scaffold.create(served.folder / "hinted-bot").folder
    done = cli(served, "plugins", "upload", "hinted-bot")
    assert done.stdout.splitlines()[-1] == ("next, run it on the project of its events.jsonl: plugin-runtime plugins "
                                            "activate hinted-bot --project proj-invoices")
    lines = (folder / "events.jsonl").read_text().splitlines()
    other = json.loads(lines[0])
    other["project_id"] = "proj-receipts"
    (folder / "events.jsonl").write_text("\n".join([*lines, json.dumps(other)]) + "\n")
    updated = cli(served, "plugins", "update", "hinted-bot")
    assert updated.stdout.splitlines()[-1] == (
        "next, run it on a project's events: plugin-runtime plugins activate hinted-bot --project PROJECT_ID "
        "(its events.jsonl has proj-invoices, proj-receipts)")
    assert cli(served, "plugins", "activate", "hinted-bot", "--project", "proj-invoices").returncode == 0
    (folder / "events.jsonl").unlink()
    active = cli(served, "plugins", "update", "hinted-bot")
    assert active.stdout.splitlines()[-1] == "active on proj-invoices: their next events run v3"


def test_events_sent_again_say_they_are_not_processed_again_and_how_to_see_a_new_version(served: Served) -> None:
    scaffold.create(served.folder / "resent-bot")
    first = cli(served, "events", "send", "resent-bot/events.jsonl", "--wait-for-runs")
    assert first.returncode == 0
    again = cli(served, "events", "send", "resent-bot/events.jsonl")
    assert again.returncode == 0
    assert again.stderr.splitlines() == [
        "5 event(s) acknowledged (5 already received: not processed again), 0 not",
        "an event is processed once per id; what a new version does with these: plugin-runtime dry-run "
        "PLUGIN_FOLDER --events resent-bot/events.jsonl"]


def test_an_id_holding_a_url_delimiter_names_that_record_not_a_shorter_ones(served: Served) -> None:
    # 'x#y' went out as /assets/x#y: the fragment was dropped and asset x was shown instead.
    assert cli(served, "projects", "create", "proj-ids").returncode == 0
    for asset_id in ("x", "x#y", "x?y"):
        assert cli(served, "assets", "create", "--project", "proj-ids", "--id", asset_id).returncode == 0
    for asset_id in ("x#y", "x?y"):
        shown = cli(served, "assets", "show", asset_id, "--project", "proj-ids", "--json")
        assert (shown.returncode, json.loads(shown.stdout)["id"]) == (0, asset_id)
    missing = cli(served, "runs", "show", "run#1")
    assert missing.stderr.startswith("error: 404: run 'run#1' does not exist")
    # '.', '..' and '' named the folder above: runs show . got the list of runs (a traceback).
    for run_id in (".", ".."):
        done = cli(served, "runs", "show", run_id)
        assert done.stderr.startswith(f"error: 404: run '{run_id}' does not exist"), done.stderr
    empty = cli(served, "runs", "show", "")
    assert (empty.returncode, empty.stderr) == (1, "error: an empty name or id names nothing: give one\n")


def test_an_export_to_a_folder_that_does_not_exist_says_so(served: Served, tmp_path: Path) -> None:
    # It was a FileNotFoundError traceback.
    assert cli(served, "projects", "create", "proj-export").returncode == 0
    target = tmp_path / "missing" / "events.jsonl"
    done = cli(served, "events", "export", "--project", "proj-export", "-o", str(target))
    assert (done.returncode, done.stderr) == (2, f"error: cannot write {target}: No such file or directory (give -o "
                                                 "a file in a folder that exists)\n")
