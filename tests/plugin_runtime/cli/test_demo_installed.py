"""``plugin-runtime demo`` from an installed wheel, where there is no checkout around it: the
invoice bot and its events ship as package data (``plugin_runtime/demo_data/invoice_qa``), a
copy of ``example_plugins/invoice_qa`` that must stay identical to it.

How the wheel is installed, soundly and in seconds, without the network: the wheel is built
from a copy of the sources with this environment's setuptools (``--no-build-isolation``, the
dev extra pins one that reads this pyproject.toml), then installed with ``--no-deps`` into a new
virtual environment of its own (no pip in it, no system site-packages). The dependencies
(pydantic, fastapi, ...) come from this environment through a ``.pth`` line naming its
site-packages: a directory named in a ``.pth`` is only added to ``sys.path``, its own ``.pth``
files are not run, so the editable install of this checkout stays out, and the new
environment's site-packages, first on ``sys.path``, is where ``plugin_runtime`` comes from (the
test checks it). The demo then runs from a folder outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from plugin_runtime.cli.demo import EXAMPLE
from tests.plugin_runtime.service_fixtures import REPO

SOURCE = REPO / "example_plugins" / "invoice_qa"


def test_the_demo_bot_is_the_example_bot() -> None:
    shipped = sorted(path.name for path in EXAMPLE.iterdir() if path.is_file())
    assert shipped == ["events.jsonl", "main.py"]
    for name in shipped:
        assert (EXAMPLE / name).read_bytes() == (SOURCE / name).read_bytes(), (
            f"plugin_runtime/demo_data/invoice_qa/{name} differs from example_plugins/invoice_qa/{name}, "
            f"which is the source: cp example_plugins/invoice_qa/{name} plugin_runtime/demo_data/invoice_qa/")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


def _wheel(tmp_path: Path) -> Path:
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, sources / name)
    for package in ("plugin_sdk", "plugin_runtime"):
        shutil.copytree(REPO / package, sources / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp_path / "dist", sources, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("plugin_runtime-*.whl")
    return wheel


@pytest.mark.slow
def test_the_demo_runs_from_an_installed_wheel_outside_the_checkout(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: this checkout's editable install, visible through the .pth, is neither
    # looked at nor uninstalled.
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", wheel, cwd=tmp_path)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "PLUGIN_RUNTIME_")) and key != "VIRTUAL_ENV"}
    where = _run(python, "-c", "import plugin_runtime, plugin_sdk; print(plugin_runtime.__file__, plugin_sdk.__file__)",
                 cwd=tmp_path, env=env).stdout.split()
    assert all(Path(path).is_relative_to(site) for path in where), where

    done = _run(venv / "bin" / "plugin-runtime", "demo", "--sandbox", "process", cwd=tmp_path, env=env)
    assert done.stdout.splitlines()[:2] == [
        "events: 8 sent (7 onSubmit, 1 onReview), 4 caused by the bot's actions (4 onSendBackToQueue)",
        "runs: 7 (7 succeeded, 0 failed): one per event of a type the bot has a hook for (onSubmit)",
    ]
    assert f"==> uploading {site / 'plugin_runtime' / 'demo_data' / 'invoice_qa'} as invoice-qa" in done.stderr
