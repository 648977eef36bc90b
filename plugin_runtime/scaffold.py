"""``plugin-runtime init``: a new plugin folder, ready to dry-run, test and upload.

The files come from ``templates/plugin`` (each ``NAME.tmpl`` becomes ``NAME``), with the
plugin's name and its ``PluginCore`` import filled in. The folder works anywhere: its test and
its README use paths relative to the folder, nothing of this repository.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from plugin_runtime.errors import ScaffoldError
from plugin_runtime.registry import NAME

SDK_IMPORT = "from plugin_sdk import PluginCore"
# The runtime's shim resolves it to plugin_sdk unless requirements.txt lists the real kili.
KILI_IMPORT = "from kili.plugins import PluginCore  # as on Kili; runs here without the kili package"

#: What each file is for, in the order ``init`` lists them.
FILES = {
    "main.py": "the bot: checks IBAN and currency on each submitted label",
    "requirements.txt": "the Python packages it needs (none yet)",
    "events.jsonl": "5 recorded events to dry-run it on, one JSON object per line",
    "test_main.py": "its tests (pytest, plugin_sdk.testing)",
    "README.md": "these files and the commands to dry-run, test and upload it",
}


@dataclass
class Scaffold:
    folder: Path
    name: str
    files: list[str]


def plugin_name(target: str | Path) -> str:
    """The plugin's name: the folder's own name (``init .`` names it after the current folder)."""
    return Path(os.path.abspath(target)).name


def create(target: str | Path, kili: bool = False) -> Scaffold:
    """Write the plugin folder ``target`` (a name, or a path whose last part is the name);
    never overwrites anything."""
    if not str(target).strip():
        raise ScaffoldError("give the plugin a name: plugin-runtime init NAME (e.g. invoice-bot)")
    folder = Path(target)
    name = plugin_name(folder)
    _check_name(name, str(target))
    if folder.exists() and not folder.is_dir():
        raise ScaffoldError(f"{folder} already exists and is not a folder: choose another name")
    if folder.is_dir() and (folder / "main.py").exists():
        raise ScaffoldError(f"{folder} already holds a plugin (its main.py): work in it as it is, or choose "
                            "another name for a new one (init never overwrites files)")
    if folder.is_dir() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} already exists and is not empty: choose another name, or move it away "
                            "(init never overwrites files)")
    values = {"{{name}}": name, "{{import}}": KILI_IMPORT if kili else SDK_IMPORT}
    templates = resources.files("plugin_runtime") / "templates" / "plugin"
    written = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file in FILES:
            text = (templates / f"{file}.tmpl").read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace(key, value)
            written = folder / file
            # "x": a file that appeared meanwhile is an error, not overwritten.
            with open(written, "x", encoding="utf-8") as handle:
                handle.write(text)
    except OSError as error:
        raise ScaffoldError(f"cannot write {written}: {error.strerror or error}") from error
    return Scaffold(folder, name, list(FILES))


def _check_name(name: str, given: str) -> None:
    if NAME.fullmatch(name):
        return
    where = "" if name == given else f" (the last part of {given!r})"
    suggestion = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:63]
    instead = f": try {suggestion!r}" if suggestion and NAME.fullmatch(suggestion) else ""
    raise ScaffoldError(
        f"{name!r}{where} cannot name a plugin{instead}. A plugin's name is 1 to 63 characters among "
        "a-z, 0-9, '.', '_' and '-', starting with a letter or digit; it is the folder's name and the "
        "name to upload it as")
