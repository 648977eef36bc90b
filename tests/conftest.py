"""Fixtures shared by the whole suite: plugins written to real folders, the CLI as a real
subprocess."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INVOICE_QA = REPO / "example_plugins" / "invoice_qa"

# Kili's default packages are a ~550 MB layer built once per machine: the tests that need them
# ask for them (tests/plugin_runtime/test_builder_defaults.py); the rest, services and CLI
# subprocesses alike, build without them unless the environment says otherwise.
os.environ.setdefault("PLUGIN_RUNTIME_DEFAULT_PACKAGES", "none")

_folders = itertools.count(1)


def _write_plugin(
    tmp_path: Path, code: str, requirements: str | None = None, files: dict[str, str] | None = None
) -> Path:
    """Write ``code`` (dedented) as ``main.py`` of a fresh folder under ``tmp_path``, with an
    optional ``requirements.txt`` and other ``files`` (relative name -> text)."""
    folder = tmp_path / f"plugin-{next(_folders)}"
    folder.mkdir()
    (folder / "main.py").write_text(textwrap.dedent(code), encoding="utf-8")
    if requirements is not None:
        (folder / "requirements.txt").write_text(textwrap.dedent(requirements), encoding="utf-8")
    for name, text in (files or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


@pytest.fixture
def write_plugin() -> Callable[..., Path]:
    """``write_plugin(tmp_path, code, requirements=None)``: the plugin folder, written."""
    return _write_plugin


@pytest.fixture
def write_events() -> Callable[..., Path]:
    """``write_events(path, *events)``: a ``.jsonl`` file, one event (dict) or raw line (str)
    per line."""

    def write(path: Path, *events: dict | str) -> Path:
        lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(*args, input=None)``: ``python -m plugin_runtime ARGS`` as a real process."""

    def run(*args: str, input: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "plugin_runtime", *map(str, args)],
            capture_output=True, text=True, input=input, cwd=cwd, timeout=300,
        )

    return run

