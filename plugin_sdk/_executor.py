"""Running one event through a plugin instance: routing, log capture, actions out.

Shared by the plugin process (``_child``) and the in-process test harness (``testing``), so a
unit test exercises exactly what the sandbox runs. Stdlib-only.
"""

from __future__ import annotations

import contextvars
import inspect
import io
import logging
import reprlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

from plugin_sdk import core
from plugin_sdk.handle import KiliHandle, Reader
from plugin_sdk.subscriptions import GENERIC_HOOK, HOOKS, LABEL_EVENTS, PROJECT_UPDATED, subscribed

#: A printed line longer than this is sent in pieces, so no single message grows unbounded.
MAX_RECORD_CHARS = 64 * 1024

LogSink = Callable[[str, str, str], None]  # (level, message, source)

# The executor whose hook is running: records of the shared default logger go to it, whichever
# executor first put a handler on that logger (several live in one test session).
_ACTIVE: contextvars.ContextVar["Executor | None"] = contextvars.ContextVar("plugin_sdk_executor", default=None)


class _SinkHandler(logging.Handler):
    def __init__(self, executor: "Executor") -> None:
        super().__init__(logging.DEBUG)
        self.executor = executor
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # a bad %-format in a plugin's log call must not fail its hook
            message = str(record.msg)
        (_ACTIVE.get() or self.executor).log(record.levelname, message, "logger")


class _LineWriter(io.TextIOBase):
    """A text stream (``sys.stdout``/``sys.stderr`` during a hook) that turns lines into logs."""

    def __init__(self, executor: "Executor", source: str, level: str) -> None:
        self.executor, self.source, self.level = executor, source, level
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.pending += text
        if "\n" in self.pending:
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                self.executor.log(self.level, line, self.source)
        while len(self.pending) > MAX_RECORD_CHARS:
            piece, self.pending = self.pending[:MAX_RECORD_CHARS], self.pending[MAX_RECORD_CHARS:]
            self.executor.log(self.level, piece, self.source)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self.executor.log(self.level, line, self.source)


class Executor:
    """One plugin instance for one project, fed events one after another."""

    def __init__(
        self,
        handler: type,
        project_id: str,
        sink: LogSink,
        *,
        logger_name: str | None = None,
        root: str | None = None,
        reader: Reader | None = None,
        event_matcher: list[str] | None = None,
    ) -> None:
        self.sink = sink
        self.root = root
        self.info = core.describe(handler, event_matcher)
        self.handle = KiliHandle(project_id, reader)
        self.logger = logging.getLogger(logger_name or f"{core.LOGGER_NAME}.{project_id}")
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self._handler = _SinkHandler(self)
        for name in (self.logger.name, core.LOGGER_NAME):
            target = logging.getLogger(name)
            target.setLevel(logging.DEBUG)
            target.propagate = False
            if not any(isinstance(h, _SinkHandler) for h in target.handlers):
                target.addHandler(self._handler)
        self.stdout = _LineWriter(self, "stdout", "INFO")
        self.stderr = _LineWriter(self, "stderr", "WARNING")
        with self._captured():
            self.plugin = _construct(handler, self.handle, project_id, self.logger)

    def log(self, level: str, message: str, source: str) -> None:
        # No cut here: the host counts every byte against the run's output limit. A logged
        # traceback names main.py, not the plugin's temporary folder.
        if self.root and 'File "' in message:
            message = message.replace(f'File "{self.root.rstrip("/")}/', 'File "')
        self.sink(level, message, source)

    def _captured(self) -> "_Capture":
        return _Capture(self)

    def run(self, event: dict[str, Any], reader: Reader | None = None) -> dict[str, Any]:
        """Run the hook the event is for. Returns ``{"status", "actions", "error", "skipped"}``;
        never raises for anything the plugin does."""
        event_type = event.get("type", "")
        if not subscribed(self.info["subscriptions"], event_type):
            return {"status": "ok", "actions": [], "error": None, "skipped": True}
        self.handle._begin(event, reader)
        try:
            with self._captured():
                returned = _dispatch(self.plugin, event)
            actions = self.handle._end() + self._returned_actions(returned, event_type)
        except BaseException as error:  # the plugin's failure, sys.exit included, is data
            self.handle._end()
            return {"status": "error", "actions": [], "error": describe_error(error, self.root), "skipped": False}
        return {"status": "ok", "actions": actions, "error": None, "skipped": False}

    def _returned_actions(self, value: Any, event_type: str) -> list[dict]:
        # Kili ignores what a hook returns (True, a dict, create_issues' result): only a value
        # holding actions is taken, anything else is ignored, as there, and the logs say so.
        if value is None or (isinstance(value, (list, tuple)) and not value) or returns_actions(value):
            return normalise_returned(value)
        hook = HOOKS.get(event_type, GENERIC_HOOK)
        self.log("WARNING", f"{hook} returned {reprlib.repr(value)}, which holds no action: ignored, as on Kili "
                 "(a hook may return an action, e.g. plugin_sdk.CreateIssue(...), or a list of them)", "logger")
        return []


class _Capture:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def __enter__(self) -> None:
        self.saved = sys.stdout, sys.stderr
        self.token = _ACTIVE.set(self.executor)
        sys.stdout, sys.stderr = self.executor.stdout, self.executor.stderr

    def __exit__(self, *exc: object) -> None:
        self.executor.stdout.flush()
        self.executor.stderr.flush()
        sys.stdout, sys.stderr = self.saved
        _ACTIVE.reset(self.token)


def _construct(handler: type, handle: KiliHandle, project_id: str, logger: logging.Logger) -> Any:
    try:
        inspect.signature(handler).bind(handle, project_id, logger)
        takes_logger = True
    except (TypeError, ValueError):
        takes_logger = False
    if takes_logger:
        return handler(handle, project_id, logger)
    # A custom __init__(self, kili, project_id) without logger, as Kili examples write it.
    instance = handler(handle, project_id)
    instance.logger = logger
    return instance


def _dispatch(plugin: Any, event: dict[str, Any]) -> Any:
    event_type = event["type"]
    if event_type in LABEL_EVENTS:
        return getattr(plugin, HOOKS[event_type])(event["label"], event["asset_id"])
    if event_type == PROJECT_UPDATED:
        return getattr(plugin, HOOKS[event_type])(event.get("settings_updated") or [])
    if event_type in HOOKS:
        return getattr(plugin, HOOKS[event_type])(event["asset_id"])
    return getattr(plugin, GENERIC_HOOK)(envelope(event))


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The dict ``on_event`` receives: the event as Kili sends it (its ``kili_events`` model:
    ``event``, ``projectId``, ``organizationId``, ``userId``, ``payload``), with the payload's
    own fields at the top level too, where Kili's plugin documentation reads them
    (``payload["label"]``, ``payload["assetId"]``); Kili's keys win over a payload field of
    the same name."""
    payload = event.get("payload") or {}
    extra: dict[str, Any] = {"id": event.get("id")}
    if event.get("asset_id") is not None:
        extra["assetId"] = event["asset_id"]
    if event.get("occurred_at") is not None:
        extra["occurredAt"] = event["occurred_at"]
    return {**extra, **payload, "event": event["type"], "projectId": event.get("project_id"),
            "organizationId": event.get("organization_id"), "userId": event.get("user_id"), "payload": payload}


def _is_action(item: Any) -> bool:
    if hasattr(item, "model_dump"):
        try:
            item = item.model_dump(mode="json")
        except Exception:  # another library's model (or a mock) that cannot dump is no action
            return False
    return isinstance(item, dict) and isinstance(item.get("type"), str)


def returns_actions(value: Any) -> bool:
    """Whether a hook's return value holds actions (any of its items is one): then every item
    must be one, else the return value is not the SDK's and is ignored."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return any(_is_action(item) for item in items)


def normalise_returned(value: Any) -> list[dict]:
    """Actions a hook returned (SDK-native style): None, one action, or a list of them."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if hasattr(item, "model_dump"):
            item = item.model_dump(mode="json")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise TypeError(
                "a hook returns None, an action (plugin_sdk.CreateIssue(...), ...) or a list of "
                f"actions, not a list holding a {type(item).__name__} among its actions"
            )
        out.append(item)
    return out


def describe_error(error: BaseException, root: str | None = None) -> str:
    """The traceback of a plugin failure, without the SDK's own frames; paths under the
    plugin's folder ``root`` are shown relative to it (``main.py``, line 12)."""
    if isinstance(error, SystemExit):
        return f"SystemExit: the plugin called sys.exit({error.code!r}) during the hook"
    tb = error.__traceback__
    # Skip the executor's frames so the traceback starts in the plugin's code.
    while tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("plugin_sdk."):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(error), error, tb)).rstrip()
    if _is_network_error(error):
        text += ("\n(plugins run without network access: a plugin cannot call outside services; "
                 "it reads the platform through self.kili)")
    return relative_paths(text, root)


def _is_network_error(error: BaseException | None) -> bool:
    import errno
    import socket

    while error is not None:
        if isinstance(error, socket.gaierror) or (
                isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)):
            return True
        error = error.__cause__ or error.__context__
    return False


def relative_paths(text: str, root: str | None) -> str:
    """``text`` with the plugin folder's prefix removed from file paths."""
    if not root:
        return text
    return text.replace(root.rstrip("/\\") + "/", "")
