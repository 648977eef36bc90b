"""The runtime's own log, through ``logging``: runs as they end, builds, deploys, retries, dead
letters and refused webhooks, one line each with the ids involved.

The modules only log (to loggers under ``plugin_runtime``); the entry point (``serve``,
``demo``) calls ``configure`` once, which sends the lines to stderr and to ``runtime.log`` in the
data directory, rotated by size. Lines carry ids (run, event, plugin@version, project) and
statuses, never a token, a secret, nor what an event or a plugin's output holds: a plugin's
logs and errors stay with its run (``runs show``, ``plugins logs``).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Callable
from pathlib import Path

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

_runs = logging.getLogger(f"{ROOT}.runs")


class _OneLine(logging.Formatter):
    """Shows control characters of a message as escapes (``\\n``, ``\\x1b``): ids come from
    webhooks and plugins, and one holding a newline must not forge another line of the log.
    A traceback, which the runtime writes itself, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return FORMAT % {**record.__dict__, "message": escape(record.message)}


def configure(data_dir: Path, level: str = "INFO", stderr_level: str | None = None) -> Callable[[], None]:
    """Send the runtime's log to ``data_dir/runtime.log`` (rotating) from ``level`` up, and to
    stderr from ``level`` or ``stderr_level``, whichever is higher. Configuring again replaces the
    handlers; the function returned detaches them (a demo that removes its data directory, a
    test)."""
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if isinstance(h.formatter, _OneLine)]:
        _detach(logger, old)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    to_file = logging.handlers.RotatingFileHandler(data_dir / FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                   encoding="utf-8")
    to_file.setLevel(level)
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(max(to_file.level, logging.getLevelName(stderr_level or level)))
    handlers: list[logging.Handler] = [to_file, to_stderr]
    for handler in handlers:
        handler.setFormatter(_OneLine(FORMAT))
        logger.addHandler(handler)
    logger.setLevel(to_file.level)
    # The lines are placed here: not printed again by a handler that an embedding program (or
    # uvicorn) put on the root logger.
    logger.propagate = False

    def detach() -> None:
        for handler in handlers:
            _detach(logger, handler)
        if not any(isinstance(h.formatter, _OneLine) for h in logger.handlers):
            logger.propagate = True
            logger.setLevel(logging.NOTSET)

    return detach


def _detach(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.removeHandler(handler)
    handler.close()


def run_ended(run_id: str, event_id: str, plugin: str, version: int, project_id: str, status: RunStatus,
              outcome: str | None, duration_ms: float | None, attempts: int | None = None) -> None:
    """The one line a run gets when it ends: succeeded (INFO), failed or skipped (WARNING),
    dead (ERROR)."""
    level = {RunStatus.SUCCEEDED: logging.INFO, RunStatus.DEAD: logging.ERROR}.get(status, logging.WARNING)
    _runs.log(level, "run ended: run=%s event=%s plugin=%s@%s project=%s status=%s outcome=%s duration_ms=%s"
              " attempts=%s", run_id, event_id, plugin, version, project_id, status, outcome or "-",
              "-" if duration_ms is None else f"{duration_ms:.1f}", "-" if attempts is None else attempts)
