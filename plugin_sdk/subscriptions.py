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
}
#: Event types whose event carries a label.
LABEL_EVENTS = frozenset({"onSubmit", "onReview", "onCustomInterfaceClick"})
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


def _match(pattern: tuple[str, ...], subject: tuple[str, ...]) -> bool:
    if not pattern:
        return not subject
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(_match(rest, subject[end:]) for end in range(1, len(subject) + 1))
    return bool(subject) and subject[0] == head and _match(rest, subject[1:])


def matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` matches ``pattern``, as Kili's event matcher reads it:
    ``asset.*`` matches ``asset.created`` and ``asset.workflow.assigned``, not ``asset``."""
    return _match(tuple(pattern.split(".")), tuple(event_type.split(".")))


def subscribed(subscriptions: Iterable[str], event_type: str) -> bool:
    """Whether a plugin with these subscriptions (event types and patterns) receives the event."""
    for subscription in subscriptions:
        if subscription == event_type:
            return True
        if "." in subscription and is_generic(event_type) and matches(subscription, event_type):
            return True
    return False
