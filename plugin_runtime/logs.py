"""The runtime's own log, through ``logging``: runs as they end, builds, deploys, retries, dead
letters and refused webhooks, one line each with the ids involved.

The modules only log (to loggers under ``plugin_runtime``); the entry point (``serve``,
``demo``) calls ``configure`` once, which sends the lines to stderr and to ``runtime.log`` in the
data directory, rotated by size. Lines carry ids (run, event, plugin@version, project) and
statuses, never a token, a secret, nor what an event or a plugin's output holds: a plugin's
logs and errors stay with its run (``runs show``, ``plugins logs``).

``PLUGIN_RUNTIME_LOG_FORMAT=json`` writes one JSON object per line instead, for a log shipper:
``time``, ``level``, ``logger``, ``message`` and, where the line concerns them, ``run_id``,
``event_id``, ``plugin``, ``version`` and ``project_id`` as fields of their own (``ids``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plugin_runtime import metrics
from plugin_runtime.statuses import RunStatus
from plugin_runtime.terminal import escape

#: The logger every runtime module's logger (``logging.getLogger(__name__)``) is under.
ROOT = "plugin_runtime"
FILE = "runtime.log"
#: A busy runtime writes a line per run: ~10 MB is some 50,000 runs; five old files are kept.
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The ids a line may carry as fields of its own (``extra=ids(...)``), in this order.
IDS = ("run_id", "event_id", "plugin", "version", "project_id")

_runs = logging.getLogger(f"{ROOT}.runs")


class _Ours(logging.Formatter):
    """The formatters ``configure`` installs (how it finds its handlers again)."""


class _OneLine(_Ours):
    """Shows control characters of a message as escapes (``\\n``, ``\\x1b``): ids come from
    webhooks and plugins, and one holding a newline must not forge another line of the log.
    A traceback, which the runtime writes itself, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return FORMAT % {**record.__dict__, "message": escape(record.message)}


class _JsonLine(_Ours):
    """One JSON object per record: JSON escapes every control character, so no id can forge a
    line, and a traceback is the ``exception`` field of its own line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in IDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def ids(run: str | None = None, event: str | None = None, plugin: str | None = None, version: int | None = None,
        project: str | None = None) -> dict[str, Any]:
    """What a log call passes as ``extra`` for the ids its line concerns (fields in JSON)."""
    given = {"run_id": run, "event_id": event, "plugin": plugin, "version": version, "project_id": project}
    return {name: value for name, value in given.items() if value is not None}


def of_run(run: Any) -> dict[str, Any]:
    """``ids`` of a run's row (or dict): what a line about the run passes as ``extra``."""
    return ids(run["id"], run["event_id"], run["plugin"], run["version"], run["project_id"])


def configure(data_dir: Path, level: str = "INFO", stderr_level: str | None = None,
              fmt: str = "text") -> Callable[[], None]:
    """Send the runtime's log to ``data_dir/runtime.log`` (rotating) from ``level`` up, and to
    stderr from ``level`` or ``stderr_level``, whichever is higher, as text lines or (``fmt="json"``)
    JSON lines. Configuring again replaces the handlers; the function returned detaches them (a
    demo that removes its data directory, a test)."""
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if isinstance(h.formatter, _Ours)]:
        _detach(logger, old)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    to_file = logging.handlers.RotatingFileHandler(data_dir / FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                   encoding="utf-8")
    to_file.setLevel(level)
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(max(to_file.level, logging.getLevelName(stderr_level or level)))
    handlers: list[logging.Handler] = [to_file, to_stderr]
    for handler in handlers:
        handler.setFormatter(_JsonLine() if fmt == "json" else _OneLine(FORMAT))
        logger.addHandler(handler)
    logger.setLevel(to_file.level)
    # The lines are placed here: not printed again by a handler that an embedding program (or
    # uvicorn) put on the root logger.
    logger.propagate = False

    def detach() -> None:
        for handler in handlers:
            _detach(logger, handler)
        if not any(isinstance(h.formatter, _Ours) for h in logger.handlers):
            logger.propagate = True
            logger.setLevel(logging.NOTSET)

    return detach


def _detach(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.removeHandler(handler)
    handler.close()


def run_ended(run_id: str, event_id: str, plugin: str, version: int, project_id: str, status: RunStatus,
              outcome: str | None, duration_ms: float | None, attempts: int | None = None) -> None:
    """A run's end, observed once: the one line it gets (succeeded: INFO, failed or skipped:
    WARNING, dead: ERROR) and its metrics (``plugin_runtime.metrics``)."""
    metrics.run_ended(plugin, status, outcome, duration_ms)
    level = {RunStatus.SUCCEEDED: logging.INFO, RunStatus.DEAD: logging.ERROR}.get(status, logging.WARNING)
    _runs.log(level, "run ended: run=%s event=%s plugin=%s@%s project=%s status=%s outcome=%s duration_ms=%s"
              " attempts=%s", run_id, event_id, plugin, version, project_id, status, outcome or "-",
              "-" if duration_ms is None else f"{duration_ms:.1f}", "-" if attempts is None else attempts,
              extra=ids(run_id, event_id, plugin, version, project_id))
