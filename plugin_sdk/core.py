"""``PluginCore``: the base class of every plugin, with the hooks Kili plugin authors know."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from plugin_sdk.errors import PluginDefinitionError
from plugin_sdk.subscriptions import GENERIC_HOOK, HOOKS, check_pattern

LOGGER_NAME = "plugin_sdk.plugin"


def default_logger() -> logging.Logger:
    """The logger a plugin gets when none is passed: DEBUG level, as on Kili."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    return logger


class PluginCore:
    """Subclass this as ``PluginHandler`` in your ``main.py`` and define the hooks you need.

    Args:
        kili: the handle the plugin reads and writes through (``self.kili``). In the runtime it
            records writes as actions that the runtime validates and applies after the hook.
        project_id: the project the plugin runs for (``self.project_id``).
        logger: a ``logging.Logger``; by default one at DEBUG level whose records (and anything
            printed) appear in the event's logs.

    Hooks (define any of them; the plugin receives exactly the events of the hooks it defines):
        ``on_submit(label, asset_id)``: a labeler submitted a DEFAULT label.
        ``on_review(label, asset_id)``: a reviewer submitted a REVIEW label.
        ``on_custom_interface_click(label, asset_id)``: a custom interface button was clicked.
        ``on_send_back_to_queue(asset_id)``: an asset was sent back to the labeling queue.
        ``on_project_updated(settings_updated)``: project settings changed; each item is
            ``{"key", "newValue", "oldValue"}`` (``key`` such as ``reviewCoverage``, ``title``).
        ``on_event(payload)``: any dotted event name matching the event matcher (given at
            upload with ``--event-matcher``, or the class attribute ``event_matcher``; globs
            such as ``asset.*``); ``payload`` is the event as Kili sends it: ``event`` (its
            name), ``projectId``, ``userId``, ``organizationId`` and ``payload``, the event's
            own fields being at the top level too (``payload["assetId"]``, ``payload["label"]``).

    ``label`` is a plain dict with Kili's camelCase keys (``id``, ``jsonResponse``,
    ``labelType``, ``authorId``, ...); use ``plugin_sdk.Label.model_validate(label)`` for a typed
    view. A hook may also return actions (``plugin_sdk.CreateIssue(...)`` and the like): they
    are added after those recorded through ``self.kili``.
    """

    #: Event names or globs ``on_event`` receives, e.g. ``["asset.*", "label.workflow.*"]``.
    event_matcher: ClassVar[Sequence[str]] = ()

    def __init__(self, kili: Any, project_id: str, logger: logging.Logger | None = None) -> None:
        self.kili = kili
        self.project_id = project_id
        self.logger = logger if logger is not None else default_logger()

    def on_submit(self, label: dict, asset_id: str) -> Any:
        """Called when a DEFAULT label is submitted on ``asset_id``."""
        self.logger.warning("Method not implemented. Define a custom on_submit on your plugin")

    def on_review(self, label: dict, asset_id: str) -> Any:
        """Called when a REVIEW label is submitted on ``asset_id``; ``label["search"]["id"]``
        is the reviewed label when the platform says so."""
        self.logger.warning("Method not implemented. Define a custom on_review on your plugin")

    def on_custom_interface_click(self, label: dict, asset_id: str) -> Any:
        """Called when a custom interface button is clicked on ``asset_id``."""
        self.logger.warning("Handler is in active development.")

    def on_send_back_to_queue(self, asset_id: str) -> Any:
        """Called when ``asset_id`` is sent back to the labeling queue."""
        self.logger.warning("Handler is in active development.")

    def on_project_updated(self, settings_updated: list[dict]) -> Any:
        """Called when settings of the project change: ``[{"key", "newValue", "oldValue"}]``."""
        self.logger.warning("Handler is in active development.")

    def on_event(self, payload: dict) -> Any:
        """Called with every dotted event matching the event matcher (see the class docstring)."""
        self.logger.warning("Method not implemented. Define a custom on_event on your plugin")


def _is_base(cls: type) -> bool:
    # Kili's own PluginCore counts as a base too: plugins written for it run unchanged.
    return cls.__name__ == "PluginCore" and cls.__module__.split(".")[0] in ("plugin_sdk", "kili")


def is_plugin_class(obj: object) -> bool:
    """Whether ``obj`` is a class deriving from ``PluginCore`` (ours or Kili's), not the base."""
    return isinstance(obj, type) and not _is_base(obj) and any(_is_base(c) for c in obj.__mro__)


def defined_hooks(cls: type) -> list[str]:
    """The hooks ``cls`` defines itself or inherits from a class other than ``PluginCore``."""
    found: list[str] = []
    for name in [*HOOKS.values(), GENERIC_HOOK]:
        for klass in cls.__mro__:
            if name in vars(klass):
                if not _is_base(klass):
                    found.append(name)
                break
    return found


def kili_event_subjects(cls: type) -> list[str]:
    """Event names of the methods decorated with Kili's ``@on_kili_event`` (real ``kili``
    package), read from the kili_events models their parameter is annotated with."""
    subjects: list[str] = []
    for klass in cls.__mro__:
        if _is_base(klass):
            continue
        for member in vars(klass).values():
            for model in getattr(member, "__kili_event_models__", ()) or ():
                try:
                    subject = model.subject()
                except (TypeError, AttributeError):
                    continue
                if subject not in subjects:
                    subjects.append(subject)
    return subjects


def describe(cls: type, event_matcher: Sequence[str] | None = None) -> dict[str, Any]:
    """What the runtime needs to know of a handler class: its hooks and subscriptions.
    ``event_matcher``: the patterns given at upload (as Kili takes them), which replace the
    class attribute ``event_matcher``.

    Raises PluginDefinitionError when the class would never run, with the fix in the message.
    """
    hooks = defined_hooks(cls)
    subscriptions = [event for event, hook in HOOKS.items() if hook in hooks]
    kili_events = kili_event_subjects(cls)
    if kili_events:
        # Kili's newer style: Kili's own PluginCore.on_event routes them to the decorated methods.
        subscriptions += kili_events
        return {"handler": cls.__name__, "hooks": hooks + [GENERIC_HOOK], "subscriptions": subscriptions}
    if event_matcher and GENERIC_HOOK not in hooks:
        raise PluginDefinitionError(
            f"{cls.__name__} was given an event matcher but has no on_event(self, payload) to receive the "
            "events: define on_event, or upload it without --event-matcher."
        )
    if GENERIC_HOOK in hooks:
        matcher = event_matcher or getattr(cls, "event_matcher", ())
        if isinstance(matcher, str):
            matcher = [matcher]
        if not matcher:
            raise PluginDefinitionError(
                f"{cls.__name__} defines on_event but no event_matcher: upload it with --event-matcher "
                "PATTERN (as Kili's upload_plugin(..., event_matcher=[...])), or add a class attribute such as "
                "`event_matcher = [\"asset.*\"]` naming the events it receives."
            )
        for pattern in matcher:
            try:
                check_pattern(pattern)
            except ValueError as error:
                raise PluginDefinitionError(f"{cls.__name__}.event_matcher: {error}") from None
            subscriptions.append(pattern)
    if not subscriptions:
        raise PluginDefinitionError(
            f"{cls.__name__} has no hook, so the plugin would never run: define on_submit, "
            "on_review, on_custom_interface_click, on_send_back_to_queue, on_project_updated or on_event in it."
        )
    return {"handler": cls.__name__, "hooks": hooks, "subscriptions": subscriptions}
