"""The dashboard's templates and static files ship in the wheel: an installed runtime serves the
same pages as this checkout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from plugin_runtime.api.ui.render import STATIC, TEMPLATES
from tests.plugin_runtime.cli.test_demo_installed import _wheel


@pytest.mark.slow
def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(tmp_path)).namelist())
    for folder in (TEMPLATES, STATIC):
        files = [path for path in folder.iterdir() if path.is_file()]
        assert files
        for path in files:
            assert f"plugin_runtime/api/ui/{folder.name}/{path.name}" in names, path
