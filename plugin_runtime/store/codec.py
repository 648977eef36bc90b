"""How the store keeps JSON values and what a repository is handed: a connection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import orjson


class Db(Protocol):
    """A database connection inside (or outside) a transaction, DB-API style with ``?``
    placeholders; rows read by column name. ``sqlite3.Connection`` is one."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


#: One encoder for every value stored: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


#: What orjson leaves to ``json`` (which raises for them, as before): dates and dataclasses.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def dumps_data(value: Any) -> str:
    """``dumps`` of JSON data read and validated before (an event), several times faster: the
    same text but for a float's exponent (``1e-7``, not ``1e-07``; NaN and infinities cannot be
    in validated data); what orjson refuses (an integer past 64 bits) is written by ``json``."""
    try:
        return orjson.dumps(value, option=_ORJSON).decode()
    except TypeError:
        return _ENCODER.encode(value)


def loads(text: str | None, default: Any = None) -> Any:
    # Not orjson: it reads an integer past 64 bits as a float, and telling whether a text holds
    # one costs as much as reading it with json.
    return default if text is None else json.loads(text)


def now() -> str:
    """The time as the store keeps it: ISO 8601 in UTC to the millisecond, ``Z``."""
    return stamp(datetime.now(timezone.utc))


def later(seconds: float) -> str:
    """The stored time ``seconds`` from now."""
    return stamp(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_until(stored: str | None) -> float:
    """Seconds from now to a stored time (0 or less: it has passed; None: no time)."""
    if stored is None:
        return 0.0
    return (datetime.fromisoformat(stored.replace("Z", "+00:00")) - datetime.now(timezone.utc)).total_seconds()
