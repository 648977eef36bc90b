"""A plugin folder that is a package: ``main.py`` imports the plugin's own files relatively
(Kili's own test fixture) or absolutely, as on Kili's hosted runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk._loader import PluginLoadError
from plugin_sdk.testing import load_plugin
from tests.plugin_sdk.kili_published import FOLDER_FIXTURE_HELPERS, FOLDER_FIXTURE_MAIN, FOLDER_FIXTURE_REQUIREMENTS


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_kilis_plugin_folder_fixture_imports_its_sub_folder_relatively(tmp_path: Path) -> None:
    folder = write(tmp_path / "plugin_folder", {"main.py": FOLDER_FIXTURE_MAIN,
                                                "sub_folder/helpers.py": FOLDER_FIXTURE_HELPERS,
                                                "requirements.txt": FOLDER_FIXTURE_REQUIREMENTS})
    result = load_plugin(folder).submit({})
    assert (result.status, result.error, result.actions) == ("ok", None, [])


CHECKS = '''
def problems(response):
    return [] if response.get("IBAN", {}).get("text", "").startswith("FR") else ["IBAN should start with FR"]
'''
RULES = '''
from .checks import problems  # relative, inside a sub-package
from . import limits

def issues(response):
    return problems(response)[: limits.MAX_ISSUES]
'''


@pytest.mark.parametrize("imports", [
    "from .rules.engine import issues",        # relative from main.py
    "from rules.engine import issues",         # absolute: the folder is on sys.path
    "import rules.engine as engine\nissues = engine.issues",
])
def test_relative_and_absolute_imports_of_the_plugins_files(tmp_path: Path, imports: str) -> None:
    main = f'''
from plugin_sdk import PluginCore
{imports}

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        found = issues(label["jsonResponse"])
        if found:
            self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=found)
'''
    folder = write(tmp_path / "bot", {"main.py": main, "rules/__init__.py": "", "rules/engine.py": RULES,
                                      "rules/checks.py": CHECKS, "rules/limits.py": "MAX_ISSUES = 5\n"})
    result = load_plugin(folder).submit({"IBAN": {"text": "DE89"}})
    assert result.status == "ok", result.error
    assert [a.text for a in result.actions] == ["IBAN should start with FR"]


def test_two_plugins_with_files_of_the_same_name_load_side_by_side(tmp_path: Path) -> None:
    def bot(name: str, text: str) -> Path:
        return write(tmp_path / name, {"main.py": (
            "from plugin_sdk import PluginCore\nfrom .sub.words import WORD\n\nclass PluginHandler(PluginCore):\n"
            "    def on_submit(self, label, asset_id):\n        self.logger.info(WORD)\n"),
            "sub/words.py": f"WORD = {text!r}\n"})
    first, second = load_plugin(bot("one", "first")), load_plugin(bot("two", "second"))
    assert [log.message for log in first.submit({}).logs] == ["first"]
    assert [log.message for log in second.submit({}).logs] == ["second"]


def test_absolute_imports_find_each_plugins_own_files(tmp_path: Path) -> None:
    def bot(name: str, text: str) -> Path:
        return write(tmp_path / name, {"main.py": (
            "from plugin_sdk import PluginCore\nimport helpers\nfrom texts.words import WORD\n\n"
            "class PluginHandler(PluginCore):\n    def on_submit(self, label, asset_id):\n"
            "        self.logger.info('%s %s', helpers.NAME, WORD)\n"),
            "helpers.py": f"NAME = {name!r}\n", "texts/words.py": f"WORD = {text!r}\n"})
    first = load_plugin(bot("one", "first"))
    second = load_plugin(bot("two", "second"))
    assert [log.message for log in second.submit({}).logs] == ["two second"]
    assert [log.message for log in first.submit({}).logs] == ["one first"]  # imported at load: kept


def test_a_relative_import_of_a_missing_file_names_the_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "broken", {"main.py": "from plugin_sdk import PluginCore\nfrom .nowhere import x\n"})
    with pytest.raises(PluginLoadError) as raised:
        load_plugin(folder)
    assert raised.value.line == 2 and "main.py:2" in str(raised.value)
    assert "the plugin's own module 'nowhere' (a relative import) is not in its folder" in str(raised.value)
    assert "_plugin_" not in str(raised.value)
