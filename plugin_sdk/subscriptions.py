"""Which events a plugin receives: derived from the hooks it defines.

Stdlib-only: the runtime uses it to decide, without starting the plugin, whether an event
concerns it, and the plugin process uses it to route the event to a hook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Recorded event type -> the PluginCore hook that receives it.
HOOKS: dict[str, str] = {
    "onSubmit": "on_submit",
    "onReview": "on_review",
    "onCustomInterfaceClick": "on_custom_interface_click",
    "onSendBackToQueue": "on_send_back_to_queue",
    "onProjectUpdated": "on_project_updated",
}
#: Event types whose event carries a label.
LABEL_EVENTS = frozenset({"onSubmit", "onReview", "onCustomInterfaceClick"})
#: Event types about one asset (``asset_id``); ``onProjectUpdated`` is about the project.
ASSET_EVENTS = frozenset({*LABEL_EVENTS, "onSendBackToQueue"})
#: The event a change of project settings emits; it carries ``settings_updated``.
PROJECT_UPDATED = "onProjectUpdated"
#: The hook receiving every other (dotted) event name the plugin subscribes to.
GENERIC_HOOK = "on_event"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def is_generic(event_type: str) -> bool:
    """Whether ``event_type`` is a dotted event name (``asset.skipped``), for ``on_event``."""
    tokens = event_type.split(".")
    return len(tokens) >= 2 and all(_TOKEN.fullmatch(token) for token in tokens)


def check_pattern(pattern: str) -> None:
    """Raise ValueError unless ``pattern`` is dotted names where ``*`` stands for one or more
    names (``asset.*``, ``asset.*.completed``, ``label.workflow.created.default``)."""
    tokens = pattern.split(".") if isinstance(pattern, str) else []
    if not tokens or tokens[0] == "*" or not all(t == "*" or _TOKEN.fullmatch(t) for t in tokens):
        raise ValueError(
            f"invalid event pattern {pattern!r}: expected dot-separated names, where '*' stands "
            "for one or more names and is not first, e.g. 'asset.*' or 'label.workflow.created.default'"
        )


def matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` matches ``pattern``, as Kili's event matcher reads it:
    ``asset.*`` matches ``asset.created`` and ``asset.workflow.assigned``, not ``asset``."""
    subject = event_type.split(".")
    # The numbers of the subject's names the pattern read so far can stand for, one pattern
    # name at a time: time linear in both. (Trying each split in turn took exponential time:
    # a plugin's "a.*.*.*.*.*.*.*.*.*.*.z" against a long event type hung the host.)
    reachable = {0}
    for head in pattern.split("."):
        if head == "*":  # one or more names, from the shortest reading so far
            reachable = set(range(min(reachable) + 1, len(subject) + 1))
        else:
            reachable = {n + 1 for n in reachable if n < len(subject) and subject[n] == head}
        if not reachable:
            return False
    return len(subject) in reachable


def subscribed(subscriptions: Iterable[str], event_type: str) -> bool:
    """Whether a plugin with these subscriptions (event types and patterns) receives the event."""
    for subscription in subscriptions:
        if subscription == event_type:
            return True
        if "." in subscription and is_generic(event_type) and matches(subscription, event_type):
            return True
    return False
