"""``plugins upload|update|build-log|activate|status`` against a real service: output on a pipe
and on a terminal, hints only where they apply, build logs of reused images, and builds that
failed are never silent (activation refused, the live version kept, failed runs with the reason)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_runtime.service_fixtures import REPO, Service, free_port, start_service, stop_service

PLUGIN = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("seen %s", asset_id)
'''


@pytest.fixture
def service(tmp_path: Path, database) -> Iterator[Service]:
    running = start_service(tmp_path / "data", "process", database)
    yield running
    stop_service(running)


@pytest.fixture
def plugin(tmp_path: Path, write_plugin) -> Path:
    return write_plugin(tmp_path, PLUGIN, files={"README.md": "# notes\n"})


def cli(service: Service, *args: str, merged: bool = False) -> subprocess.CompletedProcess:
    """The CLI as a subprocess on pipes; ``merged``: stderr into stdout, as ``2>&1 | less``."""
    return subprocess.run(
        [sys.executable, "-m", "plugin_runtime", *args, "--url", service.url, "--token", service.runtime.token],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True,
        timeout=300, cwd=REPO)


def on_terminal(service: Service, *args: str) -> str:
    """The CLI with stdout and stderr on a pseudo-terminal: what the user's screen receives."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin_runtime", *args, "--url", service.url, "--token", service.runtime.token],
        stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, cwd=REPO)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_upload_on_pipes_prints_whole_lines_in_order(service: Service, plugin: Path) -> None:
    done = cli(service, "plugins", "upload", str(plugin), "--name", "bot")
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "bot v1 deployed: the live version (subscribes to onSubmit)",
        "next, run it on a project's events: plugin-runtime plugins activate bot --project PROJECT_ID",
    ]
    assert done.stderr.splitlines() == [
        "dropped: README.md (documentation and editor or compiled files are not needed to run)",
        "building bot v1...",
    ]


def test_update_of_an_active_plugin_does_not_suggest_activating_it(service: Service, plugin: Path) -> None:
    assert cli(service, "plugins", "upload", str(plugin), "--name", "bot").returncode == 0
    assert cli(service, "plugins", "activate", "bot", "--project", "proj-a").stdout == "bot is active on proj-a\n"
    done = cli(service, "plugins", "update", str(plugin), "--name", "bot", merged=True)
    assert done.returncode == 0, done.stdout
    assert "\r" not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[-3:] == [
        "building bot v2...",
        "bot v2 deployed: the live version (subscribes to onSubmit)",
        "active on proj-a: their next events run v2",
    ]
    assert "activate" not in done.stdout


def test_update_of_an_inactive_plugin_suggests_activating_it_after_deployed(service: Service, plugin: Path) -> None:
    assert cli(service, "plugins", "upload", str(plugin), "--name", "bot").returncode == 0
    done = cli(service, "plugins", "update", str(plugin), "--name", "bot", merged=True)
    lines = done.stdout.splitlines()
    assert lines[-2:] == ["bot v2 deployed: the live version (subscribes to onSubmit)",
                          "next, run it on a project's events: plugin-runtime plugins activate bot --project PROJECT_ID"]


def test_on_a_terminal_the_progress_line_is_erased_before_the_result(service: Service, plugin: Path) -> None:
    screen = on_terminal(service, "plugins", "upload", str(plugin), "--name", "bot")
    assert "\r\033[Kbuilding bot v1... " in screen
    # Whatever the progress wrote is erased: the result starts on a clean line of its own.
    after = screen.rsplit("\r\033[K", 1)[1]
    assert after.splitlines() == [
        "bot v1 deployed: the live version (subscribes to onSubmit)",
        "next, run it on a project's events: plugin-runtime plugins activate bot --project PROJECT_ID",
    ]
    assert "building bot v1...\n" not in screen  # no whole-line progress on a terminal


def test_no_wait_says_uploaded_not_deployed(service: Service, plugin: Path) -> None:
    done = cli(service, "plugins", "upload", str(plugin), "--name", "bot", "--no-wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bot v1 ")
    assert "deployed" not in done.stdout and "building bot v1..." not in done.stderr
    service.runtime.registry.wait("bot", 1, 60)


def test_a_failed_build_points_to_its_log(service: Service, write_plugin, tmp_path: Path) -> None:
    broken = write_plugin(tmp_path, "from plugin_sdk import PluginCore\nimport no_such_module_here\n"
                                    "class PluginHandler(PluginCore):\n    def on_submit(self, label, asset_id):\n        pass\n")
    done = cli(service, "plugins", "upload", str(broken), "--name", "broken")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "broken v1 failed to deploy:" in done.stderr and "no_such_module_here" in done.stderr
    assert done.stderr.splitlines()[-1] == "the whole build log: plugin-runtime plugins build-log broken --version 1"


def test_build_log_without_images_says_why_it_is_empty(service: Service, plugin: Path) -> None:
    assert cli(service, "plugins", "upload", str(plugin), "--name", "bot").returncode == 0
    done = cli(service, "plugins", "build-log", "bot")
    assert done.stdout.splitlines()[0] == "bot v1: no image (the runtime runs plugins as processes, --sandbox process)"


def test_a_command_waits_for_a_runtime_that_is_still_starting(tmp_path: Path, plugin: Path) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_RUNTIME_")}
    env.update(PLUGIN_RUNTIME_PORT=port, PLUGIN_RUNTIME_DATA_DIR=str(tmp_path / "data"))
    server = subprocess.Popen([sys.executable, "-m", "plugin_runtime", "serve", "--sandbox", "process"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        # Started at once, as after `serve &`: no token file exists yet, no one listens yet.
        done = subprocess.run([sys.executable, "-m", "plugin_runtime", "plugins", "upload", str(plugin), "--name", "bot"],
                              env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "bot v1 deployed: the live version (subscribes to onSubmit)"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_without_a_runtime_the_command_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_RUNTIME_")}
    env.update(PLUGIN_RUNTIME_PORT=str(free_port()), PLUGIN_RUNTIME_DATA_DIR=str(tmp_path / "none"))
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "plugins", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "cannot reach the runtime" in done.stderr and "is `plugin-runtime serve` running?" in done.stderr


@pytest.mark.docker
def test_build_log_of_a_reused_image_names_it_and_shows_the_original_log(tmp_path: Path, plugin: Path) -> None:
    name = f"h5-reuse-{uuid.uuid4().hex[:8]}"
    first = start_service(tmp_path / "first", "docker")
    try:
        assert cli(first, "plugins", "upload", str(plugin), "--name", name).returncode == 0
        original = cli(first, "plugins", "build-log", name).stdout.splitlines()
    finally:
        stop_service(first)
    # A second runtime (another data directory) finds the image of the same files.
    second = start_service(tmp_path / "second", "docker")
    try:
        assert cli(second, "plugins", "upload", str(plugin), "--name", name).returncode == 0
        shown = cli(second, "plugins", "build-log", name).stdout.splitlines()
        image = f"plugin-runtime-plugin:{name}-v1"
        assert original[0].startswith(f"{name} v1: image {image}, ready at ")
        assert shown[0].startswith(f"{name} v1: image {image}, ready at ")
        assert shown[1].startswith(f"reused image {image} (sha256:") and " built at " in shown[1]
        assert shown[1].endswith("from the same files; the log of that build:")
        # The first build's log, up to the code layer (whose own Docker steps follow it there).
        code_layer = max(i for i, line in enumerate(original) if line.startswith("Step 1/") and "FROM plugin-runtime-deps:" in line)
        assert [line[4:] for line in shown[2:]] == original[1:code_layer] + [
            f"(the plugin's code was then added on top of {original[code_layer].split('FROM ')[1]})"]
    finally:
        cli(second, "plugins", "delete", name)
        stop_service(second)


BROKEN = '''
from plugin_sdk import PluginCore
import no_such_module_here


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        pass
'''


def submitted(event_id: str, project: str = "proj-a") -> dict:
    return {"id": event_id, "type": "onSubmit", "project_id": project, "asset_id": "asset-1",
            "label": {"id": f"label-{event_id}", "jsonResponse": {}}}


def test_activating_a_plugin_whose_only_build_failed_is_refused_with_the_build_error(
        service: Service, write_plugin, tmp_path: Path) -> None:
    assert cli(service, "plugins", "upload", str(write_plugin(tmp_path, BROKEN)), "--name", "broken").returncode == 1
    done = cli(service, "plugins", "activate", "broken", "--project", "proj-a")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: 409: broken has no version that can run: v1 failed to build:")
    assert "no_such_module_here" in done.stderr
    assert "plugin-runtime plugins update PATH --name broken" in done.stderr
    status = cli(service, "plugins", "status", "broken").stdout.splitlines()
    assert status[0] == "broken: live version -, projects: none"
    assert status[1].startswith("v1 failed to build: the plugin failed to load: ") and "no_such_module_here" in status[1]
    assert status[2] == ("broken has no version that can run: it cannot be activated until a version builds "
                         "(the whole error: plugin-runtime plugins build-log broken)")
    # Nothing was activated: an event of the project runs nothing and is not lost either.
    assert service.post_event(submitted("evt-1")).status_code == 202
    service.settle()
    assert service.cli("runs", "list", "--json", check=True).stdout.strip() == "[]"


def test_a_failed_update_leaves_the_live_version_running_and_status_says_which(
        service: Service, plugin: Path, write_plugin, tmp_path: Path) -> None:
    assert cli(service, "plugins", "upload", str(plugin), "--name", "bot").returncode == 0
    assert cli(service, "plugins", "activate", "bot", "--project", "proj-a").returncode == 0
    done = cli(service, "plugins", "update", str(write_plugin(tmp_path, BROKEN)), "--name", "bot")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "v1 is still live and keeps running on proj-a"
    status = cli(service, "plugins", "status", "bot").stdout.splitlines()
    assert status[0] == "bot: live version 1, projects: proj-a"
    assert status[1].startswith("v2 failed to build: the plugin failed to load: ") and "no_such_module_here" in status[1]
    assert status[2] == "v1 is still live and keeps running on proj-a (the whole error: plugin-runtime plugins build-log bot)"
    assert service.post_event(submitted("evt-1")).status_code == 202
    service.settle()
    [run] = json.loads(service.cli("runs", "list", "--json", check=True).stdout)
    assert (run["plugin"], run["version"], run["status"]) == ("bot", 1, "succeeded")


def test_an_event_for_an_active_plugin_that_cannot_run_gets_a_failed_run_with_the_reason(
        service: Service, write_plugin, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    # Its build (loading it once) waits for the gate, so that it is activated while deploying.
    slow = write_plugin(tmp_path, "import os, time\n"
                                  "deadline = time.monotonic() + 60\n"
                                  f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
                                  "    time.sleep(0.02)\n" + BROKEN)
    assert cli(service, "plugins", "upload", str(slow), "--name", "late", "--no-wait").returncode == 0
    done = cli(service, "plugins", "activate", "late", "--project", "proj-a")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "late is active on proj-a (v1 is still building: its events wait for it)\n"
    gate.touch()
    assert service.runtime.registry.wait("late", 1, 60)["status"] == "failed"
    status = cli(service, "plugins", "status", "late").stdout.splitlines()
    assert status[2] == ("late has no version that can run: events of proj-a get failed runs with this error "
                         "(plugin-runtime runs list --status failed) until a version builds "
                         "(the whole error: plugin-runtime plugins build-log late)")
    assert service.post_event(submitted("evt-1")).status_code == 202
    service.settle()
    [run] = json.loads(service.cli("runs", "list", "--status", "failed", "--json", check=True).stdout)
    assert (run["plugin"], run["version"], run["event_id"], run["outcome"]) == ("late", 1, "evt-1", "build_failed")
    shown = service.cli("runs", "show", run["id"], check=True).stdout
    assert "the build failed: the plugin failed to load" in shown and "no_such_module_here" in shown
