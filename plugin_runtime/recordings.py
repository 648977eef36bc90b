"""Recorded events: JSON Lines files, one event per line (format in the README)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plugin_runtime.errors import EventsFileError
from plugin_sdk.models import Event


@dataclass(frozen=True)
class Recorded:
    """One line of an events file: the event (validated, as written) or why it is unusable."""

    line: int
    event: dict[str, Any] | None
    error: str | None = None
    raw: bytes = b""

    @property
    def event_id(self) -> str | None:
        return self.event.get("id") if self.event else None


def describe_validation(error: ValidationError) -> str:
    """A pydantic error as one short line per problem, without pydantic's boilerplate."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_event(text: str | bytes) -> dict[str, Any]:
    """Parse and validate one recorded event; raises ValueError with a readable reason."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    if not isinstance(raw, dict):
        raise ValueError(f"an event is a JSON object, not {type(raw).__name__}")
    try:
        Event.model_validate(raw)
    except ValidationError as error:
        raw_id = raw.get("id")
        prefix = f"event {raw_id!r}: " if isinstance(raw_id, str) else ""
        raise ValueError(prefix + describe_validation(error)) from None
    return raw


def read_events(path: str | Path) -> Iterator[Recorded]:
    """Every non-blank line of ``path`` (``-`` for stdin), parsed lazily: a bad line is reported
    and the others still come."""
    if str(path) == "-":
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            raise EventsFileError(f"cannot read events from {path}: {error.strerror}") from error
    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                event = parse_event(line)
            except ValueError as error:
                raw_id = _sniff_id(line)
                yield Recorded(number, {"id": raw_id} if raw_id else None, f"{path}:{number}: {error}", line.strip())
                continue
            yield Recorded(number, event, None, line.strip())
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _sniff_id(line: bytes) -> str | None:
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
