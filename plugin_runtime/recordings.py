"""Recorded events: JSON Lines files, one event per line (format in the README)."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plugin_runtime.errors import EventsFileError
from plugin_sdk import _wire
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
    """Parse and validate one recorded event; raises ValueError with a readable reason.

    Read as the host reads a plugin's output (``plugin_sdk._wire``): an event comes from
    outside, and what it holds goes to SQLite, to plugins and to the dry-run's output, which a
    lone surrogate (``"\\ud800"``, replaced), NaN, ``1e400`` or nesting past
    ``_wire.MAX_DEPTH`` (refused) would break."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    if _wire.nests_deeper(data):
        raise ValueError(f"the JSON is nested too deeply (more than {_wire.MAX_DEPTH} levels)")
    try:
        raw = _wire.loads_untrusted(data)
    except _wire.UntrustedJSONError as error:
        cause = error.__cause__
        if isinstance(cause, json.JSONDecodeError):
            raise ValueError(f"not valid JSON ({cause.msg} at column {cause.colno})") from None
        raise ValueError(f"not valid JSON: {error}") from None
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
    first = True
    try:
        for number, line in enumerate(stream, 1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # the byte order mark some editors write
            if not line.strip():
                continue
            try:
                event = parse_event(line)
            except ValueError as error:
                if first:
                    _refuse_whole_json(path, line)
                first = False
                raw_id = _sniff_id(line)
                yield Recorded(number, {"id": raw_id} if raw_id else None, f"{path}:{number}: {error}", line.strip())
                continue
            first = False
            yield Recorded(number, event, None, line.strip())
        if first:
            raise EventsFileError(f"{'stdin' if str(path) == '-' else path} holds no events: an events file holds "
                                  "one JSON object per line (`plugin-runtime events export` records a project's "
                                  "events; `plugin-runtime init` writes an example)")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _refuse_whole_json(path: str | Path, line: bytes) -> None:
    """A first line that is not an event, in a file that is one JSON document (an event written
    over several lines, or an array of events): one error saying how to convert it, rather than
    one per line."""
    try:
        whole = _wire.loads_untrusted(line)
    except ValueError:
        whole = None
        if str(path) != "-" and Path(path).is_file() and Path(path).stat().st_size <= 16 * 1024 * 1024:
            try:
                whole = json.loads(Path(path).read_bytes())
            except (ValueError, RecursionError):
                return
    except RecursionError:
        return
    else:
        if isinstance(whole, dict):
            return  # a whole object on its line: not an event (a field is wrong), said for that line
    # Never the input's own name: `> same-file` would empty it before it is read.
    source = shlex.quote(str(path))
    target = shlex.quote(f"{Path(path).stem}-lines.jsonl" if str(path) != "-" else "events.jsonl")
    if isinstance(whole, list):
        raise EventsFileError(
            f"{path} holds a JSON array of {len(whole)} item(s); an events file holds one event per line "
            f"(JSON Lines), not an array. Convert it with: python3 -c 'import json, sys; "
            f"[print(json.dumps(e)) for e in json.load(open(sys.argv[1]))]' {source} > {target}")
    if isinstance(whole, dict):
        lines = len(Path(path).read_bytes().splitlines())
        raise EventsFileError(
            f"{path} holds one JSON object written over {lines} lines; an events file holds one event per "
            f"line (JSON Lines). Put it on one line with: python3 -m json.tool --compact {source} > {target}")


def _sniff_id(line: bytes) -> str | None:
    try:
        raw = _wire.loads_untrusted(line)  # a refused line may nest 100,000 deep: no RecursionError
    except ValueError:
        return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
