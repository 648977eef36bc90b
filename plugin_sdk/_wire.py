"""The sandbox protocol, version 1: one JSON object per line, both ways.

The host (dry-run, the runtime) and the plugin process (``plugin_sdk._child``) speak it over
the child's stdin/stdout, whether the child is a local process or a Docker container, so this
module is stdlib-only: it is imported inside images that may not have pydantic.

host -> child
    {"type": "init", "protocol": 1, "project_id": "...", "reads": "context" | "host"}
    {"type": "event", "event": {...recorded event...}}
    {"type": "reply", "call_id": 1, "result": ..., "error": null | "message"}
    {"type": "shutdown"}
child -> host
    {"type": "hello", "protocol": 1, "sdk": "...", "plugin": {"handler", "hooks",
     "subscriptions", "warnings"}}                      (after init, once the plugin is loaded)
    {"type": "load_error", "protocol": 1, "error": "...", "file": ..., "line": ...}
    {"type": "log", "event_id": "...", "level": "INFO", "message": "...", "source": "logger"}
    {"type": "call", "event_id": "...", "call_id": 1, "method": "labels", "kwargs": {...}}
    {"type": "result", "event_id": "...", "status": "ok" | "error", "actions": [...],
     "error": null | "traceback"}

A ``call`` lets a hook ask the host for data while it runs; the host answers with ``reply``.
With ``reads: "context"`` the child answers reads itself from the event's recorded context and
never sends ``call``. Unknown keys are ignored by both sides, so fields can be added without a
version bump; a change of meaning bumps ``PROTOCOL``.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL = 1

# Message types, named once so both ends agree on the spelling.
INIT = "init"
EVENT = "event"
REPLY = "reply"
SHUTDOWN = "shutdown"
HELLO = "hello"
LOAD_ERROR = "load_error"
LOG = "log"
CALL = "call"
RESULT = "result"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of UTF-8 JSON; ``default=str`` keeps a stray datetime from
    killing the channel."""
    return _dumps(message).encode("utf-8", "surrogatepass") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line; raises ValueError on anything but a JSON object with a ``type``."""
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("a protocol message is a JSON object with a string 'type'")
    return message
