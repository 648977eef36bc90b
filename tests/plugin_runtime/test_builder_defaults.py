"""Kili's default packages: one shared layer under every plugin image, a plugin's pins winning.

The layer of Kili's real set (numpy, pandas, scikit-learn, opencv-python-headless, Pillow,
requests: about 550 MB) is built once per machine and found again by its labels, so only the
first run of this module pays for it; the suite's other tests build without default packages
(``tests/conftest.py``). How a plugin's requirements go over the layer is tested on a small set
of packages made here and served from a find-links folder, as an admin would configure an
index, with versions chosen to conflict.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_runtime import default_packages
from plugin_runtime.base_image import DEFAULT_BASE_IMAGE
from plugin_runtime.builder import Builder
from plugin_runtime.config import Settings
from plugin_runtime.default_packages import FOLDER, KILI_DEFAULTS
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.docker import DockerSandbox
from plugin_runtime.source import load_source
from plugin_sdk.testing import make_event
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service
from tests.plugin_runtime.test_builder import write_wheel

KILI_SET = " ".join(KILI_DEFAULTS)
#: The first build of Kili's layer downloads ~200 MB of wheels and byte-compiles them.
FIRST_BUILD_S = 1800


# The setting and the dry-run's process sandbox (no Docker) ------------------------------------


def test_the_setting_is_kilis_set_by_default_none_turns_it_off_and_urls_are_refused(monkeypatch) -> None:
    monkeypatch.delenv("PLUGIN_RUNTIME_DEFAULT_PACKAGES", raising=False)
    assert Settings().default_requirements() == list(KILI_DEFAULTS)
    assert Settings(default_packages="  none ").default_requirements() == []
    assert Settings(default_packages="").default_requirements() == []
    assert Settings(default_packages="numpy>=2,<3  pandas").default_requirements() == ["numpy>=2,<3", "pandas"]
    monkeypatch.setenv("PLUGIN_RUNTIME_DEFAULT_PACKAGES", "numpy https://example.org/evil.whl")
    with pytest.raises(ValueError, match=r"item 2: 'https://example.org/evil.whl' is a URL") as refused:
        Settings()
    assert "PLUGIN_RUNTIME_DEFAULT_PACKAGES with spaces" in str(refused.value)
    with pytest.raises(ValueError, match=r"option '--index-url' is not allowed"):
        Settings(default_packages="--index-url=http://example.org numpy")
    assert default_packages.digest(["pandas", "numpy"]) == default_packages.digest(["numpy", "pandas", "numpy"])
    assert default_packages.import_names("opencv-python-headless") == ("cv2",)
    assert default_packages.import_names("Pillow>=10") == ("PIL",)
    assert default_packages.import_names("scikit-learn") == ("sklearn",)


KILI_TUTORIAL = '''
from kili.plugins import PluginCore
import numpy as np


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("mean %s", np.mean([1, 2, 3]))
'''


def test_the_process_dry_run_warns_once_about_default_packages_it_imports_and_lacks(
        tmp_path: Path, write_plugin, write_events) -> None:
    # requests is in this environment (a dependency of the runtime); the other two are not.
    missing = f"prt-missing-{uuid.uuid4().hex[:6]}"
    module = missing.replace("-", "_")
    folder = write_plugin(tmp_path, f"import requests\nimport {module}.sub\nfrom prt_absent_too import x\n" + KILI_TUTORIAL,
                          files={"helpers.py": "import os\n"})
    events = write_events(tmp_path / "events.jsonl", make_event("onSubmit", asset_id="a1"))

    def dry_run(setting: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", str(folder), "--events", str(events)],
                              capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "PLUGIN_RUNTIME_DEFAULT_PACKAGES": setting})
        return [line for line in done.stderr.splitlines() if "default package" in line]

    [warning] = dry_run(f"requests {missing} prt-absent-too helpers prt-unused")
    assert warning == (f"warning: {missing}, prt-absent-too: default package(s) of the runtime (every plugin has "
                       "them in the Docker sandbox) missing from this environment, which --sandbox process imports "
                       f"from: `pip install {missing} prt-absent-too` here, or dry-run with --sandbox docker")
    assert dry_run("none") == []
    assert dry_run("requests prt-unused") == []


# Layering, on a small set made here (Docker) ----------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory, docker_client) -> Iterator[tuple[Path, str]]:
    """A find-links folder with ``core`` 0.5, 1.0 and 2.0 and ``frame`` 1.0 (needs core>=1)
    and 2.0 (needs core>=2), like numpy and pandas; and the suffix of their names. The
    default layer of these (this run's names: nobody else's) is removed afterwards."""
    folder = tmp_path_factory.mktemp("defaults-index")
    suffix = uuid.uuid4().hex[:8]
    core, frame = f"prt-core-{suffix}", f"prt-frame-{suffix}"
    for version in ("0.5", "1.0", "2.0"):
        write_wheel(str(folder), core, version, {f"{core.replace('-', '_')}/__init__.py": f"VERSION = {version!r}\n"})
    for version, needs in (("1.0", ">=1"), ("2.0", ">=2")):
        write_wheel(str(folder), frame, version, {f"{frame.replace('-', '_')}/__init__.py": f"VERSION = {version!r}\n"},
                    requires=[f"{core}{needs}"])
    yield folder, suffix
    for layer in docker_client.images.list(filters={"label": f"org.plugin-runtime.defaults={default_packages.digest([core, frame])}"}):
        for tag in layer.tags:
            docker_client.images.remove(tag)


@pytest.fixture
def small(docker_client, index, monkeypatch) -> Iterator[dict[str, Any]]:
    """A builder whose default packages are ``core`` and ``frame`` from ``index``; images it
    made are removed afterwards (the layer too: its names are this run's)."""
    folder, suffix = index
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    core, frame = f"prt-core-{suffix}", f"prt-frame-{suffix}"
    messages: list[str] = []
    tags: list[str] = []
    builder = Builder(docker_client, DEFAULT_BASE_IMAGE, progress=messages.append, default_packages=[core, frame])
    yield {"builder": builder, "core": core, "frame": frame, "messages": messages, "tags": tags}
    for tag in tags:
        if docker_client.images.list(name=tag):
            docker_client.images.remove(tag)


def plugin(tmp_path: Path, suffix: str, requirements: str | None) -> Any:
    """A plugin importing ``core`` and ``frame`` (when it can) and logging where each came from."""
    folder = tmp_path / f"plugin-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "main.py").write_text(textwrap.dedent(f"""
        import os
        from plugin_sdk import PluginCore
        try:
            import prt_core_{suffix} as core
        except ImportError:
            core = None
        try:
            import prt_frame_{suffix} as frame
        except ImportError:
            frame = None


        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                print(core and core.VERSION, core and core.__file__)
                print(frame and frame.VERSION, frame and frame.__file__)
                print(os.path.isdir({FOLDER!r}))
    """))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return load_source(folder)


def run_once(client, image: str) -> list[str]:
    box = DockerSandbox(client, image, Limits(timeout_s=60))
    try:
        result = box.run(make_event("onSubmit", asset_id="a1"))
    finally:
        box.close()
    assert result.status == "ok", result.error
    return [log.message for log in result.logs]


def build(small: dict[str, Any], source) -> Any:
    small["tags"].append(f"plugin-runtime-test:defaults-{uuid.uuid4().hex[:12]}")
    result = small["builder"].build(source, small["tags"][-1])
    small["tags"].append(result.deps_image)
    return result


@pytest.mark.docker
def test_a_plugin_without_requirements_imports_the_default_layer_built_once(small, index, tmp_path) -> None:
    suffix = index[1]
    first = build(small, plugin(tmp_path, suffix, None))
    tag = re.search(r"plugin-runtime-defaults:[0-9a-f]{20}", "\n".join(first.log)).group()
    assert f"{small['core']}==2.0" in first.freeze and f"{small['frame']}==2.0" in first.freeze
    assert run_once(small["builder"].client, first.image) == [
        f"2.0 {FOLDER}/prt_core_{suffix}/__init__.py", f"2.0 {FOLDER}/prt_frame_{suffix}/__init__.py", "True"]
    # Another plugin, and another builder (another server), find the layer by its labels.
    again = Builder(small["builder"].client, DEFAULT_BASE_IMAGE, progress=small["messages"].append,
                    default_packages=[small["frame"], small["core"]])
    small["messages"].clear()
    second = again.build(plugin(tmp_path, suffix, "\n"), f"plugin-runtime-test:defaults-{uuid.uuid4().hex[:12]}")
    small["tags"].append(second.image)
    assert f"default packages: {tag} (" in "\n".join(second.log)
    assert not [m for m in small["messages"] if "default packages layer" in m]
    small["tags"].append(second.deps_image)
    layer_id = small["builder"].client.images.get(tag).id
    for built in (first, second):
        assert layer_id in [entry["Id"] for entry in small["builder"].client.images.get(built.deps_image).history()]


@pytest.mark.docker
def test_a_requirement_the_layer_holds_is_not_installed_twice(small, index, tmp_path) -> None:
    suffix = index[1]
    result = build(small, plugin(tmp_path, suffix, f"{small['core']}\n"))
    # Resolved within the layer's versions: core 2.0 is the layer's copy.
    assert run_once(small["builder"].client, result.image)[0] == f"2.0 {FOLDER}/prt_core_{suffix}/__init__.py"
    labels = small["builder"].client.images.get(result.deps_image).labels
    assert f"{small['core']}==2.0" in json.loads(labels["org.plugin-runtime.freeze"])


@pytest.mark.docker
def test_a_pin_against_the_layer_wins_with_the_defaults_resolved_to_go_with_it(small, index, tmp_path) -> None:
    suffix = index[1]
    result = build(small, plugin(tmp_path, suffix, f"{small['core']}==1.0\n"))
    # core 1.0 as pinned, and frame 1.0 (2.0 needs core>=2): both in the plugin's own layer,
    # on the base image (a frame 2.0 below a core 1.0 would break).
    site = "/opt/plugin-runtime/site"
    assert run_once(small["builder"].client, result.image) == [
        f"1.0 {site}/prt_core_{suffix}/__init__.py", f"1.0 {site}/prt_frame_{suffix}/__init__.py", "False"]
    assert f"{small['frame']}==1.0" in result.freeze and not result.warnings
    assert "resolving the default packages together with them instead (the plugin's pins win)" in "\n".join(result.log)


@pytest.mark.docker
def test_a_pin_no_default_version_goes_with_leaves_them_out_with_a_warning(small, index, tmp_path) -> None:
    suffix = index[1]
    result = build(small, plugin(tmp_path, suffix, f"{small['core']}==0.5\n"))
    assert run_once(small["builder"].client, result.image) == [
        f"0.5 /opt/plugin-runtime/site/prt_core_{suffix}/__init__.py", "None None", "False"]
    [warning] = result.warnings
    assert warning.startswith(f"the runtime's default packages ({small['core']} {small['frame']}) cannot be installed "
                              "with this plugin's requirements")
    assert f"warning: {warning}" in small["messages"]


@pytest.mark.docker
def test_a_changed_default_set_rebuilds_an_image_of_the_same_files(small, index, tmp_path, docker_client) -> None:
    suffix = index[1]
    source = plugin(tmp_path, suffix, None)
    tag = f"plugin-runtime-test:defaults-{uuid.uuid4().hex[:12]}"
    small["tags"].append(tag)
    with_defaults = small["builder"].build(source, tag)
    small["tags"].append(with_defaults.deps_image)
    assert small["builder"].build(source, tag).image_id == with_defaults.image_id  # same files, same set: reused
    without = Builder(docker_client, DEFAULT_BASE_IMAGE).build(source, tag)
    small["tags"].append(without.deps_image)
    assert without.image_id != with_defaults.image_id
    assert run_once(docker_client, without.image) == ["None None", "None None", "False"]


# Kili's real set, through the service (Docker) --------------------------------------------------


@pytest.fixture(scope="module")
def kili_layer(docker_client) -> default_packages.DefaultLayer:
    """Kili's default layer on the base image: built on the machine's first run (minutes),
    found by its labels on every later one; shared by this module's tests."""
    builder = Builder(docker_client, DEFAULT_BASE_IMAGE, progress=lambda m: print(f"[defaults] {m}", flush=True),
                      default_packages=list(KILI_DEFAULTS))
    log: list[str] = []
    with tempfile.TemporaryDirectory() as work:
        layer = builder.default_layer(Path(work), log)
    assert layer is not None
    return layer


KILI_PLUGIN = '''
from kili.plugins import PluginCore
import cv2
import numpy as np
import pandas as pd
import PIL
import requests
import sklearn


class PluginHandler(PluginCore):
    """Flags a label whose boxes are too small, with numpy and pandas, as Kili's recipes do."""

    def on_submit(self, label, asset_id):
        boxes = pd.DataFrame(label["jsonResponse"]["JOB"]["annotations"])
        areas = np.array([b["width"] * b["height"] for b in boxes["box"]])
        self.logger.info("numpy %s pandas %s sklearn %s cv2 %s PIL %s requests %s", np.__version__, pd.__version__,
                         sklearn.__version__, cv2.__version__, PIL.__version__, requests.__version__)
        if (areas < 0.01).any():
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]],
                                    text_array=[f"{int((areas < 0.01).sum())} box(es) too small"])
'''


@pytest.fixture
def kili_service(tmp_path: Path, kili_layer) -> Iterator[Service]:
    running = start_service(tmp_path / "data", "docker", default_packages=KILI_SET)
    yield running
    stop_service(running)


@pytest.mark.docker
def test_a_kili_plugin_importing_numpy_and_pandas_runs_unchanged_without_requirements(
        kili_service: Service, kili_layer, tmp_path: Path, write_plugin, docker_client) -> None:
    name = f"kili-numpy-{uuid.uuid4().hex[:6]}"
    folder = write_plugin(tmp_path, KILI_PLUGIN)
    assert not (folder / "requirements.txt").exists()
    upload = kili_service.cli("plugins", "upload", str(folder), "--name", name)
    assert upload.returncode == 0, upload.stderr
    assert kili_service.cli("plugins", "activate", name, "--project", "proj-1").returncode == 0
    try:
        version = kili_service.runtime.registry.version(name, 1, with_log=True)
        assert f"default packages: {kili_layer.tag}" in version["build_log"]
        assert {line.split("==")[0].lower() for line in version["freeze"]} >= {
            "numpy", "pandas", "scikit-learn", "opencv-python-headless", "pillow", "requests", "pydantic"}
        box = {"x": 0, "y": 0}
        event = make_event("onSubmit", asset_id="asset-1", project_id="proj-1", json_response={"JOB": {"annotations": [
            {"box": {**box, "width": 0.5, "height": 0.5}}, {"box": {**box, "width": 0.05, "height": 0.05}}]}})
        assert kili_service.post_event(event).status_code == 202
        kili_service.settle(timeout=120)
        [run] = kili_service.admin.get(f"{kili_service.url}/v1/runs", timeout=30).json()
        shown = kili_service.admin.get(f"{kili_service.url}/v1/runs/{run['id']}", timeout=30).json()
        assert run["status"] == "succeeded", shown
        [action] = shown["actions"]
        assert (action["status"], action["action"]["type"], action["action"]["text"]) == (
            "applied", "create_issue", "1 box(es) too small")
        versions = dict(line.split("==") for line in kili_layer.freeze)
        logged = [log["message"] for log in shown["logs"]]
        assert any(m.startswith(f"numpy {versions['numpy']} pandas {versions['pandas']} ") for m in logged), logged
        # The layer is the one below the plugin's dependencies, not copied into them.
        deps = docker_client.images.get(docker_client.images.get(version["image"]).labels["org.plugin-runtime.deps"])
        layer = docker_client.images.get(kili_layer.tag)
        assert layer.id in [entry["Id"] for entry in deps.history()]
        assert deps.attrs["Size"] - layer.attrs["Size"] < 30 * 2**20
    finally:
        kili_service.cli("plugins", "delete", name)
