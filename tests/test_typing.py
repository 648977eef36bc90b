"""mypy on both packages, as configured in pyproject.toml (``[tool.mypy]``): they ship
``py.typed``, so their annotations are a promise to the code that imports them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_error_in_the_sdk_and_the_runtime() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "plugin_sdk", "plugin_runtime"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, f"mypy found errors:\n{done.stdout}{done.stderr}"
    assert "Success: no issues found" in done.stdout
