"""A plugin version's event matcher: the dotted events its ``on_event`` receives, given at
upload or dry-run (``--event-matcher``, as Kili's ``upload_plugin(..., event_matcher=[...])``)
in place of the class attribute ``event_matcher``. Checked on the host without importing the
plugin; stored as the version's subscriptions, and handed to the plugin process when it starts.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from plugin_runtime.errors import PluginInvalid
from plugin_runtime.source import PluginSource, _has_foreign_base, _kili_event_methods
from plugin_sdk.subscriptions import GENERIC_HOOK, HOOKS, check_pattern


def with_event_matcher(source: PluginSource, patterns: list[str]) -> PluginSource:
    """``source`` receiving the dotted events ``patterns`` match in ``on_event`` (no patterns:
    ``source`` as is). Raises PluginInvalid, saying what to change, when it cannot take them."""
    if not patterns:
        return source
    problems = []
    for pattern in patterns:
        try:
            check_pattern(pattern)
        except ValueError as error:
            problems.append(f"--event-matcher: {error}")
    module = ast.parse(source.files["main.py"].decode("utf-8"))
    classes = {n.name: n for n in module.body if isinstance(n, ast.ClassDef)}
    handler = classes[source.handler]
    if _kili_event_methods(handler):
        problems.append("--event-matcher: the plugin's events come from its @on_kili_event methods (Kili refuses "
                        "both too): upload it without --event-matcher")
    elif GENERIC_HOOK not in source.hooks and not _has_foreign_base(handler, classes):
        problems.append(f"--event-matcher: {source.handler} has no on_event(self, payload) to receive the events: "
                        "define it, or leave --event-matcher out")
    if problems:
        raise PluginInvalid(problems)
    unique = list(dict.fromkeys(patterns))
    hooks = [event for event, hook in HOOKS.items() if hook in source.hooks]
    return replace(source, event_matcher=unique, subscriptions=hooks + unique)


def patterns_of(subscriptions: list[str] | None) -> list[str]:
    """The ``on_event`` patterns among a version's stored subscriptions (its upload's event
    matcher, or the class's), as the plugin process takes them back when it starts."""
    return [s for s in subscriptions or [] if isinstance(s, str) and s not in HOOKS]
