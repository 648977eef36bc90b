"""Asset metadata as plugins written for Kili pass it: a dict, a JSON string, or the string of
a Python dict (``str({"accuracy": 100.0})``, as Kili's own document recipe writes it). Stdlib
only: the plugin process parses it, before the action crosses to the host."""

from __future__ import annotations

import ast
import json
from typing import Any

from plugin_sdk import _wire

#: A metadata string longer than this is not parsed as a Python literal (``ast`` builds a
#: tree of the whole text first); JSON has no such limit.
MAX_LITERAL_CHARS = 1024 * 1024


def parse(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(metadata, None)`` for a dict, a JSON object or a Python literal of a dict (never
    ``eval``); ``(None, reason)`` when ``value`` is none of them."""
    if isinstance(value, dict):
        return value, None
    if not isinstance(value, str):
        return None, f"it is a {type(value).__name__}, not a dict or a string"
    try:
        parsed = _wire.loads_untrusted(value) if value.strip() else {}
    except ValueError:
        parsed = _literal(value)
        if parsed is None:
            return None, "it is neither JSON nor the text of a Python dict"
    if not isinstance(parsed, dict):
        return None, f"it holds a {type(parsed).__name__}, not an object"
    return parsed, None


def _literal(text: str) -> Any:
    """The Python literal ``text`` holds, made JSON-safe (string keys, lists for tuples, no NaN
    or infinity, nesting within the protocol's depth), or None."""
    if len(text) > MAX_LITERAL_CHARS:
        return None
    try:
        value = ast.literal_eval(text.strip())
        # Through JSON and back as the host will read it: keys become strings, tuples lists;
        # a set, bytes, NaN or 1e400 is refused here rather than fail the whole run there.
        return _wire.loads_untrusted(json.dumps(value, allow_nan=False, ensure_ascii=False))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
