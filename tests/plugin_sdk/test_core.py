"""PluginCore: hook detection, describe(), event_matcher and Kili-style constructors."""

from __future__ import annotations

import logging

import pytest

from plugin_sdk import PluginCore, PluginDefinitionError
from plugin_sdk.core import LOGGER_NAME, default_logger, defined_hooks, describe, is_plugin_class
from plugin_sdk.testing import load_plugin, make_event

try:  # the real kili package (dev extra) brings kili_events
    from kili_events import AssetSkippedEvent
except ImportError:  # pragma: no cover - without the dev extra
    AssetSkippedEvent = None


class OnlySubmit(PluginCore):
    def on_submit(self, label, asset_id):
        pass


class EveryHook(PluginCore):
    event_matcher = ["asset.*", "label.workflow.created.default"]

    def on_event(self, event):
        pass

    def on_send_back_to_queue(self, asset_id):
        pass

    def on_custom_interface_click(self, label, asset_id):
        pass

    def on_review(self, label, asset_id):
        pass

    def on_submit(self, label, asset_id):
        pass


class ReviewMixin:
    def on_review(self, label, asset_id):
        pass


class FromMixin(ReviewMixin, PluginCore):
    pass


class Inherited(OnlySubmit):
    pass


def test_only_the_hooks_a_class_defines_are_detected() -> None:
    assert defined_hooks(OnlySubmit) == ["on_submit"]
    assert defined_hooks(PluginCore) == []


def test_hooks_are_listed_in_a_fixed_order_whatever_the_definition_order() -> None:
    assert defined_hooks(EveryHook) == [
        "on_submit", "on_review", "on_custom_interface_click", "on_send_back_to_queue", "on_event"]


def test_hooks_inherited_from_a_mixin_or_a_subclass_count() -> None:
    assert defined_hooks(FromMixin) == ["on_review"]
    assert defined_hooks(Inherited) == ["on_submit"]


def test_is_plugin_class_excludes_the_base_and_non_classes() -> None:
    assert is_plugin_class(OnlySubmit)
    assert not is_plugin_class(PluginCore)
    assert not is_plugin_class(ReviewMixin)
    assert not is_plugin_class(OnlySubmit(None, "p"))


def test_describe_gives_hooks_and_the_event_types_they_receive() -> None:
    assert describe(OnlySubmit) == {"handler": "OnlySubmit", "hooks": ["on_submit"], "subscriptions": ["onSubmit"]}
    info = describe(EveryHook)
    assert info["subscriptions"] == [
        "onSubmit", "onReview", "onCustomInterfaceClick", "onSendBackToQueue",
        "asset.*", "label.workflow.created.default",
    ]


def test_a_string_event_matcher_is_one_pattern() -> None:
    class Single(PluginCore):
        event_matcher = "asset.*"

        def on_event(self, event):
            pass

    assert describe(Single)["subscriptions"] == ["asset.*"]


def test_on_event_without_event_matcher_is_refused_with_the_fix() -> None:
    class NoMatcher(PluginCore):
        def on_event(self, event):
            pass

    with pytest.raises(PluginDefinitionError, match="event_matcher") as raised:
        describe(NoMatcher)
    assert 'event_matcher = ["asset.*"]' in str(raised.value)


def test_an_invalid_event_matcher_pattern_is_refused_naming_the_class() -> None:
    class BadMatcher(PluginCore):
        event_matcher = ["*.created"]

        def on_event(self, event):
            pass

    with pytest.raises(PluginDefinitionError, match=r"BadMatcher\.event_matcher: invalid event pattern '\*\.created'"):
        describe(BadMatcher)


def test_a_class_without_hooks_is_refused_listing_the_hooks() -> None:
    class Nothing(PluginCore):
        def helper(self):
            pass

    with pytest.raises(PluginDefinitionError, match="no hook") as raised:
        describe(Nothing)
    for hook in ("on_submit", "on_review", "on_custom_interface_click", "on_send_back_to_queue", "on_event"):
        assert hook in str(raised.value)


def test_the_base_hooks_warn_that_they_are_not_implemented(caplog) -> None:
    logger = logging.getLogger("test_core.base_hooks")
    plugin = PluginCore(kili=None, project_id="p", logger=logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        assert plugin.on_submit({}, "a") is None
        plugin.on_event({})
    assert [r.getMessage() for r in caplog.records] == [
        "Method not implemented. Define a custom on_submit on your plugin",
        "Method not implemented. Define a custom on_event on your plugin",
    ]


def test_the_default_logger_is_at_debug_level() -> None:
    plugin = PluginCore(kili="handle", project_id="p")
    assert plugin.logger is default_logger()
    assert plugin.logger.name == LOGGER_NAME and plugin.logger.level == logging.DEBUG
    assert (plugin.kili, plugin.project_id) == ("handle", "p")


class KiliStyle(PluginCore):
    """Kili's documentation writes __init__ without the logger."""

    def __init__(self, kili, project_id):
        super().__init__(kili, project_id)
        self.rules = ["FR"]
        self.seen = []

    def on_submit(self, label, asset_id):
        self.seen.append(asset_id)
        self.logger.info("rules %s", self.rules)
        self.kili.send_back_to_queue(asset_ids=[asset_id])


def test_a_kili_style_init_without_logger_runs_and_gets_the_captured_logger() -> None:
    plugin = load_plugin(KiliStyle, project_id="proj-7")
    first = plugin.submit({}, asset_id="a-1")
    second = plugin.submit({}, asset_id="a-2")
    assert first.status == second.status == "ok"
    assert plugin.plugin.project_id == "proj-7"
    assert plugin.plugin.seen == ["a-1", "a-2"]  # one instance serves every event
    assert [log.message for log in first.logs] == ["rules ['FR']"]
    assert [(a.type, a.asset_id) for a in second.actions] == [("send_back_to_queue", "a-2")]


def test_an_init_taking_the_logger_receives_it() -> None:
    class TakesLogger(PluginCore):
        def __init__(self, kili, project_id, logger=None):
            super().__init__(kili, project_id, logger)
            self.given = logger

        def on_submit(self, label, asset_id):
            self.logger.debug("debug is on")

    plugin = load_plugin(TakesLogger)
    assert plugin.plugin.given is plugin.plugin.logger
    assert [(log.level, log.message) for log in plugin.submit({}).logs] == [("DEBUG", "debug is on")]


def test_a_class_on_kilis_own_pluginscore_is_a_plugin_class() -> None:
    kili_plugins = pytest.importorskip("kili.plugins")

    class OnKili(kili_plugins.PluginCore):
        def on_review(self, label, asset_id):
            self.kili.add_to_review(asset_ids=[asset_id])

    assert is_plugin_class(OnKili) and not is_plugin_class(kili_plugins.PluginCore)
    assert describe(OnKili)["subscriptions"] == ["onReview"]
    result = load_plugin(OnKili).review({})
    assert [a.type for a in result.actions] == ["add_to_review"]


def test_on_kili_event_methods_subscribe_to_their_annotated_events() -> None:
    kili_plugins = pytest.importorskip("kili.plugins")
    if AssetSkippedEvent is None:
        pytest.skip("kili_events is not installed")
    on_kili_event = kili_plugins.on_kili_event

    class Skips(kili_plugins.PluginCore):
        @on_kili_event
        def on_skip(self, event: AssetSkippedEvent) -> None:
            pass

    assert describe(Skips) == {"handler": "Skips", "hooks": ["on_event"], "subscriptions": ["asset.skipped"]}


def test_the_envelope_of_a_dotted_event_reaches_on_event() -> None:
    class Watcher(PluginCore):
        event_matcher = ["asset.*"]

        def on_event(self, event):
            self.logger.info("%s %s %s %s", event["event"], event["projectId"], event["userId"], event["payload"])

    plugin = load_plugin(Watcher)
    result = plugin.run(make_event("asset.skipped", payload={"assetId": "a-3"}, user_id="u-1"))
    assert result.status == "ok" and not result.skipped
    assert [log.message for log in result.logs] == ["asset.skipped project-1 u-1 {'assetId': 'a-3'}"]
    assert plugin.run(make_event("label.created")).skipped
