"""The sandbox protocol, version 1: one JSON object per line, both ways.

The host (dry-run, the runtime) and the plugin process (``plugin_sdk._child``) speak it over
the child's stdin/stdout, whether the child is a local process or a Docker container, so this
module is stdlib-only: it is imported inside images that may not have pydantic.

host -> child
    {"type": "init", "protocol": 1, "project_id": "...", "reads": "context" | "host"}
    {"type": "event", "event": {...recorded event...}}
    {"type": "events", "events": [{...}, ...]}         (in order, each answered as an event is;
                                                        sent only to a child whose hello says
                                                        "batch": true)
    {"type": "reply", "call_id": 1, "result": ..., "error": null | "message",
     "error_type": "ReadLimitExceeded" | ...}            (error_type: the refusal's kind)
    {"type": "shutdown"}
child -> host
    {"type": "hello", "protocol": 1, "sdk": "...", "batch": true, "plugin": {"handler", "hooks",
     "subscriptions", "warnings"}}                      (after init, once the plugin is loaded)
    {"type": "load_error", "protocol": 1, "error": "...", "file": ..., "line": ...}
    {"type": "log", "event_id": "...", "level": "INFO", "message": "...", "source": "logger"}
    {"type": "call", "event_id": "...", "call_id": 1, "method": "labels", "kwargs": {...}}
    {"type": "result", "event_id": "...", "status": "ok" | "error", "actions": [...],
     "error": null | "traceback"}

``level`` is one of ``LEVELS`` (the child maps custom logging levels to the standard one at or
below them). The host reads the child's lines with ``decode_untrusted``: nesting past
``MAX_DEPTH``, NaN or Infinity and lines that are not UTF-8 JSON objects are refused, lone
surrogates replaced.

A ``call`` lets a hook ask the host for data while it runs; the host answers with ``reply``.
With ``reads: "context"`` the child answers reads itself from the event's recorded context and
never sends ``call``. Unknown keys are ignored by both sides, so fields can be added without a
version bump; a change of meaning bumps ``PROTOCOL``.
"""

from __future__ import annotations

import json
import re
from typing import Any

PROTOCOL = 1

# Message types, named once so both ends agree on the spelling.
INIT = "init"
EVENT = "event"
EVENTS = "events"
REPLY = "reply"
SHUTDOWN = "shutdown"
HELLO = "hello"
LOAD_ERROR = "load_error"
LOG = "log"
CALL = "call"
RESULT = "result"

#: The log levels a ``log`` message may carry.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: How deep objects and arrays may nest in what the host reads. Kili's deepest labels (nested
#: classification jobs) stay far below; Python's JSON parser, and all that handles the value
#: after it, recurse once per level.
MAX_DEPTH = 64

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate (a file name decoded with ``surrogateescape``,
    a ``"\\ud800"`` JSON escape) replaced by U+FFFD: UTF-8, SQLite and terminals refuse them."""
    return _SURROGATE.sub("\ufffd", text)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of UTF-8 JSON; ``default=str`` keeps a stray datetime from
    killing the channel, and a lone surrogate becomes U+FFFD instead of invalid UTF-8."""
    text = _dumps(message)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = without_surrogates(text).encode("utf-8")
    return data + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line; raises ValueError on anything but a JSON object with a ``type``."""
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("a protocol message is a JSON object with a string 'type'")
    return message


class UntrustedJSONError(ValueError):
    """JSON from the other side of the sandbox that the host will not read; says why."""


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def nests_deeper(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests objects and arrays more than ``limit`` deep (or
    leaves brackets unclosed), found without parsing it: strings are dropped, then each pass
    removes the innermost bracket pairs, so ``limit`` passes at C speed decide it."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", data).translate(_ONE_KIND, _NOT_BRACKET)
    if b"[" * (limit + 1) in brackets:  # the usual attack, found in one search
        return True
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    return brackets.count(b"[") > 0


def _refuse_constant(name: str) -> Any:
    raise UntrustedJSONError(f"{name} is not a JSON value (use null or a string)")


# A number that may overflow a double: an exponent of three digits, or 309 digits in a row.
_HUGE_NUMBER = re.compile(rb"[eE]\+?0*[1-9][0-9]{2}|[0-9]{309}")


def _finite(text: str) -> float:
    # 1e400 is valid JSON that Python reads as inf: written back, it is Infinity, not JSON.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise UntrustedJSONError(f"the number {text[:40]} is out of range (a double holds up to about 1.8e308)")
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {without_surrogates(key): _clean(item) for key, item in value.items()}
    return value


def loads_untrusted(data: bytes | str) -> Any:
    """Parse JSON written by a plugin, whatever it holds: raises UntrustedJSONError (saying
    why) when it nests more than ``MAX_DEPTH`` levels, holds NaN, Infinity or a number beyond a
    double's range (``1e400``), or is not JSON;
    bytes that are not UTF-8 and lone surrogates (``"\\ud800"`` escapes) become U+FFFD."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if nests_deeper(raw):
        raise UntrustedJSONError(f"it nests objects or arrays more than {MAX_DEPTH} levels deep")
    text = raw.decode("utf-8", "replace")
    try:
        value = json.loads(text, parse_constant=_refuse_constant,
                           parse_float=_finite if _HUGE_NUMBER.search(raw) else None)
    except UntrustedJSONError:
        raise
    except (ValueError, RecursionError) as error:  # RecursionError: only if the scan were wrong
        raise UntrustedJSONError(f"it is not JSON ({error})") from error
    return _clean(value) if _ESCAPED_SURROGATE.search(text) else value


def decode_untrusted(line: bytes) -> dict[str, Any]:
    """``decode`` for the host, reading a plugin's line: see ``loads_untrusted``."""
    message = loads_untrusted(line)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise UntrustedJSONError("a protocol message is a JSON object with a string 'type'")
    return message
