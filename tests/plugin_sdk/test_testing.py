"""``plugin_sdk.testing``: the in-process harness plugin authors use with pytest."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from plugin_sdk import CreateIssue, PluginCore, SendBackToQueue, UpdateAsset
from plugin_sdk._loader import PluginLoadError
from plugin_sdk.testing import load_events, load_plugin, make_event, make_label

ECHO = """
    from plugin_sdk import PluginCore


    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.send_back_to_queue(asset_ids=[asset_id])
            self.logger.info("sent back %s", asset_id)
"""


def test_make_label_has_kilis_camel_case_keys() -> None:
    label = make_label({"J": 1}, id="l-1", label_type="REVIEW", author_id="u-2", isLatestLabelForUser=True)
    assert label == {"id": "l-1", "labelType": "REVIEW", "authorId": "u-2", "secondsToLabel": 10,
                     "createdAt": "2026-01-01T00:00:00Z", "jsonResponse": {"J": 1}, "isLatestLabelForUser": True}
    assert make_label()["id"] != make_label()["id"]


def test_make_event_builds_a_label_event_with_its_context() -> None:
    event = make_event(json_response={"J": 1}, asset_id="a-1", project_id="p-1", asset={"jsonMetadata": {"k": 1}},
                       project={"title": "T"}, occurred_at="2026-01-01T00:00:00Z")
    assert (event["type"], event["asset_id"], event["project_id"]) == ("onSubmit", "a-1", "p-1")
    assert event["label"]["jsonResponse"] == {"J": 1} and event["label"]["labelType"] == "DEFAULT"
    asset = event["context"]["asset"]
    assert (asset["id"], asset["jsonMetadata"], asset["labels"]) == ("a-1", {"k": 1}, [event["label"]])
    assert event["context"]["project"] == {"id": "p-1", "title": "T"}
    assert event["occurred_at"] == "2026-01-01T00:00:00Z"


def test_make_event_for_each_kind() -> None:
    assert make_event("onReview")["label"]["labelType"] == "REVIEW"
    back = make_event("onSendBackToQueue", asset_id="a-2")
    assert "label" not in back and back["context"]["asset"]["labels"] == []
    dotted = make_event("asset.skipped", payload={"reason": "blurry"})
    assert "asset_id" not in dotted and "asset" not in dotted["context"]
    assert dotted["payload"] == {"reason": "blurry"}
    bare = make_event(context=False)
    assert "context" not in bare and bare["label"]["jsonResponse"] == {}
    with pytest.raises(ValidationError, match="unknown event type 'onSave'"):
        make_event("onSave")


def test_load_events_skips_blank_lines_and_names_a_bad_line(tmp_path, write_events) -> None:
    good = write_events(tmp_path / "good.jsonl", make_event(id="e-1"), "", make_event("asset.x", id="e-2"))
    assert [e["id"] for e in load_events(good)] == ["e-1", "e-2"]
    bad = write_events(tmp_path / "bad.jsonl", make_event(id="e-1"), {"id": "e-2", "type": "onSubmit", "project_id": "p"})
    with pytest.raises(ValueError, match=r"(?s)bad\.jsonl:2: .*needs asset_id"):
        load_events(bad)


def test_load_plugin_from_a_main_py_a_folder_or_a_class(tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, ECHO)

    class Inline(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.send_back_to_queue(asset_ids=[asset_id])
            self.logger.info("sent back %s", asset_id)

    results = [load_plugin(p).submit({}, asset_id="a-5") for p in (folder / "main.py", folder, str(folder), Inline)]
    assert {json.dumps(r.wire()["actions"]) for r in results} == {'[{"type": "send_back_to_queue", "asset_id": "a-5"}]'}
    assert all([log.message for log in r.logs] == ["sent back a-5"] for r in results)


def test_load_plugin_reports_where_a_plugin_is_broken(tmp_path, write_plugin) -> None:
    broken = write_plugin(tmp_path, "from plugin_sdk import PluginCore\nclass PluginHandler(PluginCore)\n    pass\n")
    with pytest.raises(PluginLoadError, match=r"main\.py:2:\d+: SyntaxError") as raised:
        load_plugin(broken)
    assert raised.value.line == 2
    with pytest.raises(PluginLoadError, match="no PluginHandler class"):
        load_plugin(write_plugin(tmp_path, "x = 1\n"))
    with pytest.raises(PluginLoadError, match="no such file"):
        load_plugin(tmp_path / "nowhere")


class Chatty(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.debug("debug %d", 1)
        self.logger.warning("careful")
        print("printed", asset_id)
        print("to stderr", file=__import__("sys").stderr)
        print("two\nlines")
        self.logger.info("%d items", "not a number")  # a bad format must not fail the hook
        print("no newline", end="")


def test_logs_are_captured_from_the_logger_and_print() -> None:
    result = load_plugin(Chatty).submit({}, asset_id="a-1")
    assert result.status == "ok", result.error
    assert [(log.level, log.message, log.source) for log in result.logs] == [
        ("DEBUG", "debug 1", "logger"),
        ("WARNING", "careful", "logger"),
        ("INFO", "printed a-1", "stdout"),
        ("WARNING", "to stderr", "stderr"),
        ("INFO", "two", "stdout"),
        ("INFO", "lines", "stdout"),
        ("INFO", "%d items", "logger"),
        ("INFO", "no newline", "stdout"),
    ]


def test_each_run_has_its_own_logs() -> None:
    plugin = load_plugin(Chatty)
    assert len(plugin.submit({}).logs) == len(plugin.submit({}).logs) == 8


def test_a_plugin_on_the_default_logger_has_its_logs_in_every_harness() -> None:
    class DefaultLogger(PluginCore):
        def __init__(self, kili, project_id, logger=None):
            super().__init__(kili, project_id)  # ignores the logger: self.logger is the default one

        def on_submit(self, label, asset_id):
            self.logger.info("checked %s", asset_id)

    first, second = load_plugin(DefaultLogger), load_plugin(DefaultLogger)
    assert [log.message for log in first.submit({}, asset_id="a-1").logs] == ["checked a-1"]
    assert [log.message for log in second.submit({}, asset_id="a-2").logs] == ["checked a-2"]


class Recording(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.create_issues(self.project_id, [label["id"]], text_array=["wrong"])
        self.kili.send_back_to_queue(asset_ids=[asset_id])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=['{"a": 1}'])


class Returning(PluginCore):
    def on_submit(self, label, asset_id):
        return [CreateIssue(asset_id=asset_id, label_id=label["id"], text="wrong"),
                SendBackToQueue(asset_id=asset_id), UpdateAsset(asset_id=asset_id, json_metadata={"a": 1})]


class Mixed(PluginCore):
    def on_submit(self, label, asset_id):
        self.kili.create_issues(self.project_id, [label["id"]], text_array=["wrong"])
        self.kili.send_back_to_queue(asset_ids=[asset_id])
        return UpdateAsset(asset_id=asset_id, json_metadata={"a": 1})  # returned ones come last


def test_returned_and_recorded_actions_give_the_same_list_in_order() -> None:
    label = make_label({}, id="l-1")
    wires = [load_plugin(cls).submit(label=label, asset_id="a-1").wire()["actions"] for cls in (Recording, Returning, Mixed)]
    assert wires[0] == wires[1] == wires[2] == [
        {"type": "create_issue", "asset_id": "a-1", "label_id": "l-1", "text": "wrong", "object_mid": None},
        {"type": "send_back_to_queue", "asset_id": "a-1"},
        {"type": "update_asset", "asset_id": "a-1", "json_metadata": {"a": 1}},
    ]


def test_a_raising_hook_is_an_error_with_its_traceback_and_no_actions(tmp_path, write_plugin) -> None:
    folder = write_plugin(tmp_path, """
        from plugin_sdk import PluginCore


        class PluginHandler(PluginCore):
            def on_submit(self, label, asset_id):
                self.kili.send_back_to_queue(asset_ids=[asset_id])
                raise KeyError("IBAN")
    """)
    result = load_plugin(folder).submit({})
    assert (result.status, result.actions, result.ok) == ("error", [], False)
    assert result.error.startswith("Traceback (most recent call last):")
    assert f'File "{folder / "main.py"}", line 8, in on_submit' in result.error
    assert result.error.endswith("KeyError: 'IBAN'")
    assert "_executor.py" not in result.error  # the SDK's own frames are left out


def test_sys_exit_in_a_hook_is_an_error() -> None:
    class Exits(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
            raise SystemExit(4)

    result = load_plugin(Exits).submit({})
    assert (result.status, result.actions) == ("error", [])
    assert result.error == "SystemExit: the plugin called sys.exit(4) during the hook"


@pytest.mark.parametrize("returned", [
    {"type": "delete_asset", "asset_id": "a-1"},
    [{"type": "create_issue", "asset_id": "a-1"}],
    {"type": "update_asset", "asset_id": "a-1"},
])
def test_invalid_returned_actions_make_the_run_invalid_output(returned) -> None:
    class Invalid(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])
            return returned

    result = load_plugin(Invalid).submit({})
    assert (result.status, result.actions) == ("invalid_output", [])
    assert result.error.startswith("the plugin returned invalid actions:\nactions.1")


def test_an_invalid_recorded_action_makes_the_run_invalid_output() -> None:
    class TooLong(PluginCore):
        def on_submit(self, label, asset_id):
            self.kili.create_issues(self.project_id, [label["id"]], text_array=["x" * 20_000])

    result = load_plugin(TooLong).submit({})
    assert result.status == "invalid_output" and "at most 10000 characters" in result.error


@pytest.mark.parametrize("kind", ["text", "true", "dict", "number", "create_issues", "send_back_to_queue"])
def test_a_return_value_holding_no_action_is_ignored_as_on_kili_and_the_writes_stay(kind) -> None:
    class ReturnsAValue(PluginCore):
        def on_submit(self, label, asset_id):
            returns = {
                "text": lambda: "done", "true": lambda: True, "dict": lambda: {"checked": 1}, "number": lambda: 3,
                "create_issues": lambda: self.kili.create_issues(self.project_id, [label["id"]], text_array=["x"]),
                "send_back_to_queue": lambda: self.kili.send_back_to_queue(asset_ids=[asset_id]),
            }
            self.kili.add_to_review(asset_ids=[asset_id])
            return returns[kind]()

    result = load_plugin(ReturnsAValue).submit({}, asset_id="a-1")
    assert result.status == "ok", result.error
    recorded = {"create_issues": ["create_issue"], "send_back_to_queue": ["send_back_to_queue"]}.get(kind, [])
    assert [a.type for a in result.actions] == ["add_to_review", *recorded]
    [warning] = result.logs
    assert warning.level == "WARNING"
    assert warning.message.startswith("on_submit returned ") and "holds no action: ignored, as on Kili" in warning.message


def test_a_list_mixing_actions_with_other_values_is_an_error() -> None:
    class Mixes(PluginCore):
        def on_submit(self, label, asset_id):
            return [SendBackToQueue(asset_id=asset_id), True]

    result = load_plugin(Mixes).submit({})
    assert result.status == "error" and "not a list holding a bool among its actions" in result.error


def test_an_empty_list_returned_is_no_action_and_no_warning() -> None:
    class Empty(PluginCore):
        def on_submit(self, label, asset_id):
            return []

    result = load_plugin(Empty).submit({})
    assert (result.status, result.actions, result.logs) == ("ok", [], [])


def test_an_event_without_a_hook_is_ok_and_skipped() -> None:
    plugin = load_plugin(Recording)
    assert plugin.subscriptions == ["onSubmit"]
    for result in (plugin.review({}), plugin.send_back_to_queue("a-1"), plugin.run(make_event("asset.skipped"))):
        assert (result.status, result.skipped, result.actions, result.logs) == ("ok", True, [], [])
    assert plugin.submit({}).skipped is False


def test_the_harness_runs_events_for_its_own_project() -> None:
    plugin = load_plugin(Recording, project_id="p-9")
    result = plugin.run(make_event(project_id="elsewhere", asset_id="a-1", id="e-1"))
    assert (result.event_id, result.status) == ("e-1", "ok")
    assert [a.type for a in result.actions_of("send_back_to_queue")] == ["send_back_to_queue"]
    assert plugin.plugin.project_id == "p-9"
    wire = result.wire()
    assert list(wire)[:6] == ["event_id", "status", "actions", "logs", "error", "duration_ms"]
    with pytest.raises(ValidationError):
        plugin.run({"id": "e-2", "type": "onSubmit", "project_id": "p-9"})
