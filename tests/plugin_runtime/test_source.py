"""Reading a plugin from a main.py, a folder or a zip, and checking it without importing it."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from plugin_runtime.errors import PluginInvalid
from plugin_runtime.source import check_main, load_archive, load_source

MAIN = """from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        pass
"""


def zipped(*entries: tuple[str, str | bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "main.py")
    return buffer.getvalue()


def problems(load) -> list[str]:
    with pytest.raises(PluginInvalid) as raised:
        load()
    assert str(raised.value).startswith("the plugin was refused:\n- ")
    return raised.value.problems


def test_a_main_py_alone_with_its_sibling_requirements(tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, MAIN, requirements="requests==2.32.3\n")
    (folder / "helpers.py").write_text("x = 1\n")
    source = load_source(folder / "main.py")
    assert sorted(source.files) == ["main.py", "requirements.txt"]
    assert (source.handler, source.hooks, source.subscriptions) == ("PluginHandler", ["on_submit"], ["onSubmit"])
    assert source.requirements == "requests==2.32.3\n"


def test_a_folder_keeps_code_and_data_and_reports_what_it_drops(tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, MAIN, requirements="requests\n", files={
        "rules/config.json": "{}", "helpers.py": "x = 1\n", "test_main.py": "def test(): pass\n",
        "tests/test_more.py": "", "logo.png": "binary", "vendor/requirements.txt": "numpy\n", "NOTES.md": "x",
        "__pycache__/main.cpython-311.pyc": "",
    })
    os.symlink(folder / "helpers.py", folder / "link.py")
    source = load_source(folder)
    # Data files of any kind are kept (a plugin may read them); docs, tests and caches are not.
    assert sorted(source.files) == ["helpers.py", "logo.png", "main.py", "requirements.txt", "rules/config.json"]
    assert sorted(source.dropped) == [
        "NOTES.md (documentation and editor or compiled files are not needed to run)",
        "link.py (symbolic links are not followed)",
        "test_main.py (tests and caches are not needed to run)",
        "vendor/requirements.txt (only the top-level requirements.txt is installed)",
    ]
    assert source.files["rules/config.json"] == b"{}"


def test_equal_files_give_equal_digests_and_the_archive_reads_back(tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, MAIN, files={"helpers.py": "x = 1\n"})
    source = load_source(folder)
    again = load_archive(source.archive())
    assert again.files == source.files and again.digest() == source.digest()
    (folder / "helpers.py").write_text("x = 2\n")
    assert load_source(folder).digest() != source.digest()
    target = source.write_to(tmp_path / "copy")
    assert (target / "helpers.py").read_text() == "x = 1\n"


def test_a_syntax_error_names_file_line_column_and_the_fix(tmp_path, write_plugin) -> None:
    broken = MAIN.replace("def on_submit(self, label, asset_id):", "def on_submit(self, label, asset_id)")
    [problem] = problems(lambda: load_source(write_plugin(tmp_path, broken)))
    first, code, caret, fix = problem.split("\n")
    assert first == "main.py:5:41: SyntaxError: expected ':'"
    assert code.strip() == "def on_submit(self, label, asset_id)"
    assert caret.index("^") == len(code)  # just after the closing parenthesis
    assert fix == "  fix the syntax at that line (`python -m py_compile main.py` checks it)"


def test_the_syntax_error_shows_the_checked_line_whatever_the_current_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "main.py").write_text("print('an unrelated main.py in the working directory')\n")
    monkeypatch.chdir(tmp_path)
    [problem] = problems(lambda: check_main("value = (1,\n"))
    assert "unrelated" not in problem
    assert "value = (1," in problem


def test_a_missing_pluginhandler_is_refused_with_the_fix() -> None:
    [problem] = problems(lambda: check_main("import os\n"))
    assert problem.startswith("main.py: no PluginHandler class: define `class PluginHandler(PluginCore):`")
    two = MAIN.replace("PluginHandler", "A") + MAIN.replace("PluginHandler", "B")
    [problem] = problems(lambda: check_main(two))
    assert "no PluginHandler class (found A, B)" in problem


def test_a_single_differently_named_subclass_is_used_with_a_warning(tmp_path, write_plugin) -> None:
    source = load_source(write_plugin(tmp_path, MAIN.replace("PluginHandler", "InvoiceBot")))
    assert (source.handler, source.hooks) == ("InvoiceBot", ["on_submit"])
    assert source.warnings == ["main.py:4: the handler class is InvoiceBot, not PluginHandler; it is used, "
                               "but Kili requires the name PluginHandler"]


def test_a_handler_without_hook_is_refused_listing_the_hooks() -> None:
    [problem] = problems(lambda: check_main("from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n    def helper(self):\n        pass\n"))
    assert problem.startswith("main.py:3: PluginHandler has no hook, so the plugin would never run")
    assert "on_send_back_to_queue(self, asset_id)" in problem


def test_hooks_of_local_bases_and_on_event_patterns_are_found() -> None:
    text = ("from plugin_sdk import PluginCore\n\nclass Base(PluginCore):\n    def on_review(self, label, asset_id):\n        pass\n\n"
            "class PluginHandler(Base):\n    event_matcher = ['asset.*']\n\n    def on_event(self, event):\n        pass\n")
    assert check_main(text) == ("PluginHandler", ["on_review", "on_event"], [])
    source = load_archive(zipped(("main.py", text)))
    assert source.subscriptions == ["onReview", "asset.*"]


def test_a_base_from_another_module_may_bring_the_hooks() -> None:
    text = "from my_rules import RuleBot\n\nclass PluginHandler(RuleBot):\n    pass\n"
    assert check_main(text) == ("PluginHandler", [], [])


def test_a_zip_with_a_single_top_folder_is_stripped() -> None:
    source = load_archive(zipped(("bot/main.py", MAIN), ("bot/helpers.py", "x = 1\n"),
                                 ("bot/requirements.txt", "requests\n")), "bot.zip")
    assert sorted(source.files) == ["helpers.py", "main.py", "requirements.txt"]


def test_a_zip_file_on_disk_is_read(tmp_path: Path) -> None:
    path = tmp_path / "plugin.zip"
    path.write_bytes(zipped(("main.py", MAIN), ("data.csv", "a,b\n")))
    assert sorted(load_source(path).files) == ["data.csv", "main.py"]


def test_a_macos_zip_of_a_folder_is_accepted() -> None:
    source = load_archive(zipped(("bot/main.py", MAIN), ("__MACOSX/bot/._main.py", b"\x00\x05\x16\x07")))
    assert sorted(source.files) == ["main.py"]


@pytest.mark.parametrize(("entries", "symlink", "message"), [
    ((("main.py", MAIN), ("../evil.py", "x")), None, "entry '../evil.py' climbs out of the archive ('..')"),
    ((("main.py", MAIN), ("lib/../../evil.py", "x")), None, "climbs out of the archive"),
    ((("main.py", MAIN), ("/etc/cron.d/evil.py", "x")), None, "entry '/etc/cron.d/evil.py' has an absolute path"),
    ((("main.py", MAIN), ("C:/evil.py", "x")), None, "has an absolute path"),
    ((("main.py", MAIN),), "lnk.py", "entry 'lnk.py' is not a regular file (link or device)"),
])
def test_dangerous_zip_entries_are_refused(entries, symlink, message: str) -> None:
    found = problems(lambda: load_archive(zipped(*entries, symlink=symlink), "up.zip"))
    assert len(found) == 1 and found[0].startswith("up.zip: entry ") and message in found[0]


def test_not_a_zip_and_no_main_py_are_refused(tmp_path: Path) -> None:
    assert problems(lambda: load_archive(b"PK not really")) == [
        "upload.zip: not a valid zip archive (File is not a zip file)"]
    assert problems(lambda: load_archive(zipped(("bot/inner/main.py", MAIN)))) == [
        "upload.zip: no main.py (found bot/inner/main.py: put main.py at the top of the plugin)"]
    assert problems(lambda: load_source(tmp_path / "missing")) == [f"{tmp_path / 'missing'}: no such file or folder"]
    other = tmp_path / "plugin.tar"
    other.write_text("x")
    assert "a plugin is a main.py, a folder holding one, or a .zip" in problems(lambda: load_source(other))[0]


def test_non_utf8_code_and_bad_requirements_are_refused() -> None:
    assert problems(lambda: load_archive(zipped(("main.py", MAIN), ("helpers.py", b"x = '\xff'\n")))) == [
        "helpers.py: not UTF-8 text (invalid start byte at byte 5)"]
    [problem] = problems(lambda: load_archive(zipped(("main.py", MAIN), ("requirements.txt", "ok==1\n-e .\n"))))
    assert problem.startswith("requirements.txt:2: option '-e' is not allowed")
