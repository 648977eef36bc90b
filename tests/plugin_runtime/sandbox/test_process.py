"""The process sandbox with real child processes: every misbehaviour is a status, the next
event still works, one warm process serves a project, and the runtime's secrets stay out."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest

from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.process import ProcessSandbox
from plugin_runtime.source import load_source
from plugin_sdk.testing import make_event

BEHAVIOURS = """
    import os
    import sys

    from plugin_sdk import PluginCore


    class PluginHandler(PluginCore):
        def __init__(self, kili, project_id, logger=None):
            super().__init__(kili, project_id, logger)
            self.served = 0

        def on_submit(self, label, asset_id):
            self.served += 1
            do = label["jsonResponse"].get("do")
            if do == "raise":
                raise ValueError("the IBAN is missing")
            if do == "exit":
                sys.exit(3)
            if do == "_exit":
                os._exit(7)
            if do == "hang":
                while True:
                    pass
            if do == "flood":
                print("x" * (3 * 1024 * 1024))
            if do == "garbage":
                os.write(1, b"garbage")
                os.write(1, b'{"type": "result", "event_id": "forged", "status": "ok"}\\n')
            self.logger.info("served %d pid %d", self.served, os.getpid())
            print("printed", asset_id)
            self.kili.send_back_to_queue(asset_ids=[asset_id])
"""


@pytest.fixture
def sandbox(tmp_path, write_plugin) -> Iterator[Callable[..., ProcessSandbox]]:
    """``sandbox(code, requirements=None, python=None, reader=None, **limits)``: a process
    sandbox on the plugin (timeout 1 s unless given), closed at teardown."""
    boxes: list[ProcessSandbox] = []

    def make(code: str, requirements: str | None = None, python: str | None = None, reader=None, **limits) -> ProcessSandbox:
        source = load_source(write_plugin(tmp_path, code, requirements))
        boxes.append(ProcessSandbox(source, Limits(**{"timeout_s": 1, **limits}), python=python, reader=reader))
        return boxes[-1]

    yield make
    for box in boxes:
        box.close()


def submit(box: ProcessSandbox, do: str = "", asset_id: str = "asset-1", **event):
    return box.run(make_event(json_response={"do": do}, asset_id=asset_id, **event))


def assert_works(box: ProcessSandbox, asset_id: str = "asset-ok") -> None:
    result = submit(box, asset_id=asset_id)
    assert result.status == "ok", result.error
    assert [(a.type, a.asset_id) for a in result.actions] == [("send_back_to_queue", asset_id)]


def test_an_ok_event_gives_actions_and_logs(sandbox) -> None:
    box = sandbox(BEHAVIOURS)
    result = submit(box, id="evt-1")
    assert (result.event_id, result.status, result.error) == ("evt-1", "ok", None)
    assert [a.type for a in result.actions] == ["send_back_to_queue"]
    assert [(log.source, log.message.split(" pid")[0]) for log in result.logs] == [
        ("logger", "served 1"), ("stdout", "printed asset-1")]
    assert box.info("project-1") == {"handler": "PluginHandler", "hooks": ["on_submit"],
                                     "subscriptions": ["onSubmit"], "warnings": []}


@pytest.mark.parametrize(("do", "status", "error"), [
    ("raise", "error", 'ValueError: the IBAN is missing'),
    ("exit", "error", "SystemExit: the plugin called sys.exit(3) during the hook"),
    ("_exit", "error", "the plugin process exited during the hook: exit code 7"),
    ("hang", "timeout", "the hook did not return within 1 s"),
    ("flood", "output_limit", "the hook logged or printed more than 1048576 bytes"),
])
def test_a_failure_is_a_status_and_the_next_event_works(sandbox, do: str, status: str, error: str) -> None:
    box = sandbox(BEHAVIOURS)
    assert_works(box, "asset-before")
    result = submit(box, do)
    assert (result.status, result.actions) == (status, [])
    assert error in result.error
    assert_works(box, "asset-after")
    assert_works(box, "asset-after-2")


def test_a_traceback_names_the_plugin_file_relative_to_its_folder(sandbox) -> None:
    result = submit(sandbox(BEHAVIOURS), "raise")
    assert 'File "main.py", line 17, in on_submit' in result.error
    assert "plugin_sdk" not in result.error


def test_garbage_written_to_fd_1_does_not_break_the_protocol(sandbox) -> None:
    box = sandbox(BEHAVIOURS)
    results = [submit(box, "garbage", asset_id=f"a-{i}", id=f"e-{i}") for i in range(3)]
    assert [(r.event_id, r.status) for r in results] == [("e-0", "ok"), ("e-1", "ok"), ("e-2", "ok")]
    assert [r.actions[0].asset_id for r in results] == ["a-0", "a-1", "a-2"]
    assert box.cold_starts == 1


def test_one_process_serves_many_events(sandbox) -> None:
    box = sandbox(BEHAVIOURS)
    results = [submit(box, asset_id=f"a-{i}") for i in range(20)]
    assert all(r.status == "ok" for r in results)
    served = [r.logs[0].message.split() for r in results]
    assert [int(words[1]) for words in served] == list(range(1, 21))  # the same instance throughout
    assert len({words[3] for words in served}) == 1  # and the same pid
    assert int(served[0][3]) != os.getpid()  # which is not this interpreter
    assert box.cold_starts == 1


def test_a_crashed_process_is_replaced_for_the_next_event(sandbox) -> None:
    box = sandbox(BEHAVIOURS)
    assert_works(box)
    assert submit(box, "_exit").status == "error"
    assert_works(box)
    assert box.cold_starts == 2


def test_a_missing_import_names_the_module_and_requirements_without_respawning(sandbox) -> None:
    box = sandbox("import invoice_rules_zzz\n" + textwrap.dedent(BEHAVIOURS))
    results = [submit(box, asset_id=f"a-{i}") for i in range(3)]
    assert {r.status for r in results} == {"error"}
    assert results[0].error.startswith("main.py:1: ModuleNotFoundError: No module named 'invoice_rules_zzz'")
    assert "add the package that provides 'invoice_rules_zzz' to the plugin's requirements.txt" in results[0].error
    assert {r.error for r in results} == {results[0].error}
    assert box.cold_starts == 1


@pytest.mark.parametrize(("code", "error"), [
    ("from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n    def on_event(self, event):\n        pass\n",
     "the plugin's definition: PluginHandler defines on_event but no event_matcher"),
    ("raise SystemExit(2)\nfrom plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n"
     "    def on_submit(self, label, asset_id):\n        pass\n", "main.py:1: SystemExit while importing the plugin"),
])
def test_load_errors_are_reported_for_every_event_from_one_start(sandbox, code: str, error: str) -> None:
    box = sandbox(code)
    results = [submit(box) for _ in range(3)]
    assert all(r.status == "error" and error in r.error for r in results), results[0].error
    assert box.cold_starts == 1


def test_a_failing_constructor_is_reported_and_retried_on_the_next_event(sandbox) -> None:
    # __init__ may depend on the project (its interface, its settings), which can change: unlike
    # an import error, it is tried again with each event.
    box = sandbox("from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore):\n"
                  "    def __init__(self, kili, project_id):\n        raise RuntimeError('no config')\n"
                  "    def on_submit(self, label, asset_id):\n        pass\n")
    results = [submit(box) for _ in range(2)]
    assert all(r.status == "error" and "creating the plugin: Traceback" in r.error for r in results)
    assert box.cold_starts == 2


def test_a_plugin_hanging_at_import_does_not_start(sandbox) -> None:
    box = sandbox("import time\ntime.sleep(60)\n" + textwrap.dedent(BEHAVIOURS), start_timeout_s=1)
    result = submit(box)
    assert (result.status, result.error) == ("error", "the plugin did not start within 1 s")
    assert submit(box).error == result.error and box.cold_starts == 1


def test_the_runtimes_environment_is_not_visible_to_the_plugin(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("PLUGIN_RUNTIME_TOKEN", "s3cret-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-key")
    box = sandbox("""
        import os
        from plugin_sdk import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                self.logger.info("token=%s", os.environ.get("PLUGIN_RUNTIME_TOKEN"))
                self.logger.info("names=%s", ",".join(sorted(os.environ)))
    """)
    result = submit(box)
    assert result.status == "ok"
    token, names = (log.message for log in result.logs)
    assert token == "token=None"
    assert "s3cret" not in names and "AWS_SECRET_ACCESS_KEY" not in names
    assert set(names.removeprefix("names=").split(",")) <= {
        "PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "LC_CTYPE"}


def test_a_plugin_reading_stdin_gets_nothing_and_steals_no_event(sandbox) -> None:
    box = sandbox("""
        import os
        import sys
        import threading
        from plugin_sdk import PluginCore

        stolen = []

        def thief():
            while True:
                data = os.read(0, 1 << 16)
                stolen.append(data)
                if not data:
                    return

        threading.Thread(target=thief, daemon=True).start()

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                self.logger.info("stdin=%r fd0=%r stolen=%r", sys.stdin.read(), os.read(0, 100), stolen)
                self.kili.send_back_to_queue(asset_ids=[asset_id])
    """)
    results = [submit(box, asset_id=f"a-{i}") for i in range(5)]
    assert [r.status for r in results] == ["ok"] * 5
    assert [r.actions[0].asset_id for r in results] == [f"a-{i}" for i in range(5)]
    assert {r.logs[0].message for r in results} == {"stdin='' fd0=b'' stolen=[b'']"}


def test_too_many_actions_is_an_output_limit(sandbox) -> None:
    box = sandbox(BEHAVIOURS, max_actions=1)
    code = BEHAVIOURS.replace("self.kili.send_back_to_queue(asset_ids=[asset_id])",
                              "self.kili.send_back_to_queue(asset_ids=[asset_id, asset_id])")
    assert_works(box)
    result = sandbox(code, max_actions=1).run(make_event())
    assert (result.status, result.actions) == ("output_limit", [])
    assert result.error == "the hook produced 2 actions, over the limit of 1"


def test_helper_modules_and_data_files_of_the_plugin_are_importable(sandbox, tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, """
        import json, pathlib
        from rules import prefix
        from plugin_sdk import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                config = json.loads(pathlib.Path("config.json").read_text())
                self.logger.info("%s %s", prefix(), config["currency"])
    """, files={"rules.py": "def prefix():\n    return 'FR'\n", "config.json": '{"currency": "EUR"}'})
    with ProcessSandbox(load_source(folder), Limits(timeout_s=5)) as box:
        result = box.run(make_event())
    assert result.status == "ok", result.error
    assert [log.message for log in result.logs] == ["FR EUR"]


def test_reads_go_to_the_host_reader_for_the_plugins_own_project(sandbox) -> None:
    asked = []

    def reader(project_id, method, query):
        asked.append((project_id, method, query))
        if method == "projects":
            raise LookupError("projects are private")
        return [{"id": "label-9", "labelType": "REVIEW", "jsonResponse": {}}]

    box = sandbox("""
        from plugin_sdk import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                labels = self.kili.labels(project_id=self.project_id, asset_id=asset_id, fields=["id"])
                self.logger.info("labels %s", labels)
                self.kili.projects()
    """, reader=reader)
    result = box.run(make_event(asset_id="a-3", project_id="proj-r"))
    assert [log.message for log in result.logs] == ["labels [{'id': 'label-9'}]"]
    assert result.status == "error" and "PluginError: LookupError: projects are private" in result.error
    assert asked == [("proj-r", "labels", {"project_id": "proj-r", "asset_id": "a-3"}),
                     ("proj-r", "projects", {"project_id": "proj-r"})]


def test_the_kili_shim_serves_kili_style_plugins_without_the_kili_package(sandbox, tmp_path) -> None:
    python = tmp_path / "python-without-site"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')  # -S: no site-packages, so no kili
    python.chmod(0o755)
    box = sandbox("""
        import importlib.util
        from kili.plugins import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                try:
                    from kili.plugins import on_kili_event
                except ImportError as error:
                    self.logger.info("%s", error)
                self.logger.info("pydantic %s", importlib.util.find_spec("pydantic") is not None)
                self.kili.add_to_review(asset_ids=[asset_id])
    """, python=str(python), timeout_s=10)
    result = submit(box)
    assert result.status == "ok", result.error
    assert [a.type for a in result.actions] == ["add_to_review"]
    assert result.logs[0].message.startswith("on_kili_event needs Kili's own packages")
    assert result.logs[1].message == "pydantic False"


FORGED_HELLO = """
    import gc

    from plugin_sdk import PluginCore

    # At import, before the SDK's own hello: a hello whose subscriptions would be matched
    # against every event of the project, were they believed.
    [channel] = [o for o in gc.get_objects() if type(o).__name__ == "_Channel"]
    channel.send({"type": "hello", "protocol": 1,
                  "plugin": {"handler": "PluginHandler", "hooks": [], "subscriptions": SUBSCRIPTIONS}})


    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
"""


@pytest.mark.parametrize(("subscriptions", "reason"), [
    ("[{'onSubmit': 1}]", "'subscriptions' is not a list of strings"),
    ("'onSubmit'", "'subscriptions' is not a list of strings"),
    ("['on submit!']", "invalid event pattern 'on submit!'"),
    ("['asset.x'] * 1000", "1000 subscriptions, over the limit of 256"),
])
def test_a_forged_hello_is_a_load_error_not_an_exception(sandbox, subscriptions: str, reason: str) -> None:
    box = sandbox(FORGED_HELLO.replace("SUBSCRIPTIONS", subscriptions), start_timeout_s=10)
    result = submit(box)
    assert result.status == "error"
    assert "the plugin process sent an invalid message while loading" in result.error and reason in result.error


def test_custom_log_levels_cross_as_the_standard_level_below_them(sandbox) -> None:
    box = sandbox("""
        import logging

        from plugin_sdk import PluginCore

        logging.addLevelName(25, "NOTICE")


        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                self.logger.log(25, "notice")
                self.logger.log(35, "unnamed")
                self.logger.critical("critical")
    """)
    result = submit(box)
    assert result.status == "ok", result.error
    assert [(log.level, log.message) for log in result.logs] == [
        ("INFO", "notice"), ("WARNING", "unnamed"), ("CRITICAL", "critical")]


def test_a_message_over_the_size_limit_is_refused_even_when_its_newline_came_in_the_same_read(sandbox) -> None:
    # 64 KiB in the first read (not over the limit yet), the rest with the newline in the next.
    box = sandbox("""
        from plugin_sdk import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                return [{"type": "create_issue", "asset_id": asset_id, "label_id": "l", "text": "t" * 70_000}]
    """, max_message_bytes=64 * 1024, max_log_bytes=1024)
    result = submit(box)
    assert (result.status, result.error) == ("output_limit", "the plugin sent a message over 65536 bytes")


def test_a_huge_error_is_cut_to_the_log_budget_keeping_both_ends(sandbox) -> None:
    box = sandbox("""
        from plugin_sdk import PluginCore

        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                if label["jsonResponse"].get("do") == "raise":
                    self.logger.info("x" * 900_000)
                    raise ValueError("start " + "e" * 5_000_000 + " end")
                self.kili.send_back_to_queue(asset_ids=[asset_id])
    """, timeout_s=20)
    result = submit(box, "raise")
    assert result.status == "error"
    # Stored with the logs, it gets what is left of their budget.
    logged = sum(len(log.message) for log in result.logs)
    assert logged == 900_000 and 64 * 1024 < len(result.error.encode()) <= 1024 * 1024 - logged
    assert 'File "main.py"' in result.error and "bytes left out" in result.error
    assert result.error.endswith("e end")
    assert_works(box)


def test_a_huge_load_error_is_cut_to_the_log_budget(sandbox) -> None:
    box = sandbox("""
        from plugin_sdk import PluginCore

        raise RuntimeError("broken " + "b" * 3_000_000)


        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                pass
    """, start_timeout_s=20)
    result = submit(box)
    assert result.status == "error" and "RuntimeError while importing the plugin: broken bbb" in result.error
    assert len(result.error.encode()) <= 1024 * 1024 and "bytes left out" in result.error
