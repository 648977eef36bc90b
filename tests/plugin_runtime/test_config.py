"""Settings are read in one place: ``plugin_runtime/config.py`` is the only module of the runtime
that reads the environment, but for the two environments built for children on purpose, from
an allow-list (a plugin process's, pip's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from plugin_runtime.config import EngineSettings, Settings, cache_dir
from plugin_runtime.errors import SettingsError

PACKAGE = Path(__file__).resolve().parents[2] / "plugin_runtime"
#: Modules allowed to read the environment, and why.
READERS = {
    "config.py": "the settings",
    "sandbox/process.py": "a plugin process's environment, from an allow-list (plugin_env)",
    "resolver.py": "pip's minimal environment, from an allow-list (pip_environment)",
}


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines using ``os.environ``, ``os.environb``, ``os.getenv`` or importing them."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "getenvb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in ("environ", "environb", "getenv", "getenvb") for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_only_config_reads_the_environment() -> None:
    readers = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = _reads_environment(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            readers[path.relative_to(PACKAGE).as_posix()] = lines
    strays = {name: lines for name, lines in readers.items() if name not in READERS}
    assert not strays, f"read settings in plugin_runtime/config.py, not here (module: lines): {strays}"
    assert "config.py" in readers


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLUGIN_RUNTIME_BASE_IMAGE", "python:3.12-slim")
    monkeypatch.setenv("PLUGIN_RUNTIME_LOG_LEVEL", "debug")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = Settings()
    assert (settings.base_image, settings.log_level) == ("python:3.12-slim", "DEBUG")
    assert EngineSettings().docker_host == "tcp://127.0.0.1:2375"
    assert cache_dir() == tmp_path / "plugin-runtime"


def test_an_empty_secret_file_stops_the_runtime_saying_what_to_do(tmp_path: Path) -> None:
    # An empty token file left the runtime without a token, and "Bearer None" was the admin's.
    settings = Settings(data_dir=tmp_path)
    settings.secret_file("token").write_text("\n")
    settings.secret_file("webhook-secret").write_text("")
    with pytest.raises(SettingsError, match=r"token is empty: write the secret in it, or delete the file"):
        settings.resolved_token()
    with pytest.raises(SettingsError, match=r"webhook-secret is empty"):
        settings.webhook_secrets()
    # A client reading the server's files finds no token there, as when there is no file.
    assert settings.resolved_token(create=False) is None
    assert settings.webhook_secrets(create=False) == []
