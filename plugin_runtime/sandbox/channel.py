"""The host's end of the plugin protocol (``plugin_sdk._wire``), over any pair of byte streams.

A ``Worker`` is one plugin process or container serving one project, event after event. It
turns everything the plugin can do wrong (hang, crash, flood, garbage) into a RunResult, and
is ``dead`` afterwards so its owner starts a fresh one for the next event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import orjson

from plugin_runtime.errors import PluginRuntimeError, SandboxUnavailable
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.frames import (
    ByteSource,
    Closed,
    FdSource,
    FrameReader,
    FrameTimeout,
    OutputLimit,
    TooLarge,
)
from plugin_sdk import _wire
from plugin_sdk.results import LogRecord, RunResult, Status, result_from_outcome
from plugin_sdk.subscriptions import HOOKS, check_pattern

_log = logging.getLogger(__name__)

#: Answers a hook's read (``labels``, ``assets``, ...) while it runs; raises to refuse.
CallHandler = Callable[[str, dict[str, Any]], Any]


class _Failed(Exception):
    """Ends a run: its ``status`` and ``error`` (a reason, or a function giving it once the
    plugin is stopped); ``ended`` when the plugin's stream ended, which its sandbox may have
    caused rather than the plugin (``Worker.lost``)."""

    def __init__(self, status: Status, error: str | Callable[[], str], ended: bool = False) -> None:
        super().__init__(status)
        self.status, self.error, self.ended = status, error, ended


#: Where a log record may say it comes from; anything else reads as ``logger``.
_SOURCES = ("logger", "stdout", "stderr")
#: Subscriptions a plugin may declare: each is matched against every event of its projects.
MAX_SUBSCRIPTIONS = 256


def plugin_info(message: dict[str, Any]) -> dict[str, Any]:
    """The ``plugin`` of a hello, checked, since it decides which events reach the plugin;
    raises ValueError saying what is wrong."""
    info = message.get("plugin")
    if not isinstance(info, dict) or not isinstance(info.get("handler", ""), str):
        raise ValueError("its hello carries no valid 'plugin' object")
    for key in ("hooks", "subscriptions", "warnings"):
        value = info.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"its hello's {key!r} is not a list of strings")
    subscriptions = info.get("subscriptions", [])
    if len(subscriptions) > MAX_SUBSCRIPTIONS:
        raise ValueError(f"it declares {len(subscriptions)} subscriptions, over the limit of {MAX_SUBSCRIPTIONS}")
    for subscription in subscriptions:
        if subscription not in HOOKS:
            check_pattern(subscription)
    return info


#: orjson as ``_wire.encode`` writes (``default=str``), for the events the host sends.
_ORJSON = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_APPEND_NEWLINE)


def _encode(message: dict[str, Any]) -> bytes:
    """``_wire.encode``, several times faster on the events of a batch (each several kB with its
    context); what orjson refuses (a lone surrogate, an integer past 64 bits) is left to it."""
    try:
        return orjson.dumps(message, default=str, option=_ORJSON)
    except (TypeError, orjson.JSONEncodeError):
        return _wire.encode(message)


#: What is kept of a hook's error however much the hook logged before.
MIN_ERROR_BYTES = 16 * 1024


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes: its start and, where a traceback's exception is,
    its end, saying how much was left out."""
    if len(text) * 4 <= limit:  # no need to encode: under the limit whatever the characters
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    head, tail = limit // 4, limit // 2
    return (data[:head].decode("utf-8", "ignore") + f"\n... ({len(data) - head - tail} bytes left out) ...\n"
            + data[-tail:].decode("utf-8", "ignore"))


def _log_record(message: dict[str, Any]) -> dict[str, Any]:
    level, text = message.get("level"), message.get("message")
    # The SDK sends only standard levels: another one was written past it, on the descriptor.
    if not isinstance(level, str) or level.upper() not in _wire.LEVELS:
        shown = level[:40] + "..." if isinstance(level, str) and len(level) > 40 else level
        raise _Failed(Status.INVALID_OUTPUT, f"the plugin sent a log record with the unknown level {shown!r} "
                                        f"(known: {', '.join(_wire.LEVELS)})")
    if not isinstance(text, str):
        raise _Failed(Status.INVALID_OUTPUT, "the plugin sent a log record whose message is not text")
    source = message.get("source")
    return {"level": level.upper(), "message": text, "source": source if source in _SOURCES else "logger"}


class Worker:
    """One live plugin process or container, bound to one project.

    ``write`` sends bytes to the plugin's stdin; ``source`` is its stdout (a descriptor or a
    ByteSource); ``kill`` stops it
    for good; ``exit_info`` describes how it ended (exit code, OOM, stderr tail); ``lost``, once
    stopped after its stream ended, why its sandbox (not the plugin) ended it, or None.
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        source: int | ByteSource,
        kill: Callable[[], None],
        exit_info: Callable[[], str],
        limits: Limits,
        on_call: CallHandler | None = None,
        oom_killed: Callable[[], bool] = lambda: False,
        lost: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._write, self._kill, self._exit_info = write, kill, exit_info
        self._oom_killed, self._lost = oom_killed, lost
        self.reader = FrameReader(FdSource(source) if isinstance(source, int) else source, limits.max_message_bytes)
        self.limits = limits
        self.on_call = on_call
        self.dead = False
        self.info: dict[str, Any] | None = None
        self.load_error: str | None = None
        #: "init" when the plugin loaded but its constructor failed (it may depend on the project).
        self.load_stage: str | None = None
        self.events_served = 0
        #: Whether the plugin process takes several events in one message (``run_many``).
        self.batches = False

    def start(self, project_id: str, event_matcher: list[str] | None = None) -> None:
        """Send ``init`` and wait for ``hello`` (sets ``info``) or ``load_error``.
        ``event_matcher``: the version's ``on_event`` patterns given at upload."""
        deadline = time.monotonic() + self.limits.start_timeout_s
        try:
            self._send({
                "type": _wire.INIT, "protocol": _wire.PROTOCOL, "project_id": project_id,
                "reads": "host" if self.on_call is not None else "context",
                **({"event_matcher": event_matcher} if event_matcher else {}),
            })
            line = self.reader.next(deadline)
            message, sent = _wire.decode_untrusted(line), 0
            while message["type"] == _wire.CALL:  # reads from the plugin's __init__
                # Counted as a hook's are: refused reads cost the host too, and an __init__
                # reading in a loop would keep it answering until the start timeout.
                sent += len(line)
                if sent > self.limits.max_log_bytes:
                    self.stop()
                    self.load_error = (f"the plugin sent more than {self.limits.max_log_bytes} bytes of reads while "
                                       "loading: read less in its __init__ (or read in the hook)")
                    return
                self._answer(message)
                line = self.reader.next(deadline)
                message = _wire.decode_untrusted(line)
            if message["type"] == _wire.HELLO:
                self.info = plugin_info(message)
                self.batches = message.get("batch") is True
                return
        except FrameTimeout:
            self.stop()
            self.load_error = f"the plugin did not start within {self.limits.start_timeout_s:g} s"
            return
        except (Closed, TooLarge, OutputLimit, OSError, _Failed) as error:
            self.stop()
            if isinstance(error, (Closed, OSError)):
                self._raise_if_lost("while it started")
            self.load_error = "the plugin process failed before loading the plugin: " + self._exit_info()
            return
        except ValueError as error:
            self.stop()
            self.load_error = f"the plugin process sent an invalid message while loading: {error}"
            return
        self.stop()
        if message["type"] == _wire.LOAD_ERROR:
            # Repeated as the error of every event of the project: bounded like a run's logs.
            self.load_error = cut(str(message.get("error")), self.limits.max_log_bytes)
            self.load_stage = message.get("stage") if isinstance(message.get("stage"), str) else None
        else:
            self.load_error = f"the plugin process answered {message['type'][:40]!r} instead of hello"

    def run(self, event: dict[str, Any]) -> RunResult:
        """Send one event and collect its logs, reads and result within the time limit. What
        the plugin does or sends is a status, never an exception: only the runtime's own
        failures (PluginRuntimeError) are raised."""
        event_id = event.get("id")
        started = time.monotonic()
        logs: list[dict[str, Any]] = []
        try:
            try:
                self._send({"type": _wire.EVENT, "event": event})
            except OSError:
                gone = "the plugin process was gone before the event: "
                raise _Failed(Status.ERROR, lambda: gone + self._exit_info(), ended=True) from None
            self.events_served += 1
            outcome = self._collect(event_id, started + self.limits.timeout_s, logs)
            return result_from_outcome(event_id, outcome, logs, (time.monotonic() - started) * 1000)
        except _Failed as failed:
            return self._failed(event_id, failed, logs, started)
        except PluginRuntimeError:
            self.stop()
            raise
        except Exception as error:  # a host bug on odd output fails this run, never its lane
            _log.exception("reading the output of the plugin failed unexpectedly")
            reason = f"the runtime could not read the plugin's output ({type(error).__name__}: {error})"
            return self._failed(event_id, _Failed(Status.INVALID_OUTPUT, reason), logs, started)

    def run_many(self, events: list[dict[str, Any]]) -> Generator[RunResult, None, None]:
        """``run`` for each event in order, the events sent in one message when the plugin
        process takes batches (its hello says so); each has its own time and output limits,
        counted from the previous one's result. Stops after a result that stopped the worker
        (timeout, crash, bad output): the events after it were not run. A runtime failure
        after some results ends the iteration there (raised when it was the first)."""
        if len(events) < 2 or not self.batches:
            for event in events:
                yield self.run(event)
                if self.dead:
                    return
            return
        started = time.monotonic()
        try:
            self._send({"type": _wire.EVENTS, "events": events})
        except OSError:
            gone = "the plugin process was gone before the event: "
            yield self._failed(events[0].get("id"), _Failed(Status.ERROR, lambda: gone + self._exit_info(), ended=True),
                               [], started)
            return
        answered = 0
        try:
            for event in events:
                result = self._one_of_many(event, started, first=answered == 0)
                if result is None:
                    return
                answered += 1
                yield result
                if self.dead:
                    return
                started = time.monotonic()
        finally:
            if answered < len(events) and not self.dead:
                # Left before the batch's end: its next results would answer the next events.
                self.stop()

    def _one_of_many(self, event: dict[str, Any], started: float, first: bool) -> RunResult | None:
        """The result of one event of a batch, as ``run`` gives it; None when the runtime failed
        past the batch's first event (the results so far stand; the rest runs again)."""
        event_id, logs = event.get("id"), list[dict[str, Any]]()
        try:
            self.events_served += 1
            outcome = self._collect(event_id, started + self.limits.timeout_s, logs)
            return result_from_outcome(event_id, outcome, logs, (time.monotonic() - started) * 1000)
        except _Failed as failed:
            try:
                return self._failed(event_id, failed, logs, started)
            except PluginRuntimeError:
                if first:
                    raise
                return None
        except PluginRuntimeError:
            self.stop()
            if first:
                raise
            return None
        except Exception as error:  # a host bug on odd output fails this run, never its lane
            _log.exception("reading the output of the plugin failed unexpectedly")
            reason = f"the runtime could not read the plugin's output ({type(error).__name__}: {error})"
            return self._failed(event_id, _Failed(Status.INVALID_OUTPUT, reason), logs, started)

    def _failed(self, event_id: Any, failed: _Failed, logs: list[dict[str, Any]], started: float) -> RunResult:
        self.stop()
        if failed.ended:
            self._raise_if_lost("during the event")
        # How the plugin ended (exit code, OOM) is known only once it is stopped.
        status, error = failed.status, failed.error() if callable(failed.error) else failed.error
        if status != Status.TIMEOUT and self._oom_killed():
            status, error = Status.OOM_KILLED, (
                f"the plugin ran out of memory (limit {self.limits.memory_mb} MB) and was killed"
            )
        return RunResult(event_id=event_id, status=status, logs=[LogRecord.model_validate(log) for log in logs],
                         error=error, duration_ms=(time.monotonic() - started) * 1000)

    def _collect(self, event_id: Any, deadline: float, logs: list[dict[str, Any]]) -> dict[str, Any]:
        """The hook's ``result`` message; its logs collected and its reads answered meanwhile."""
        sent = 0
        while True:
            line = self._next(deadline)
            try:
                message = _wire.decode_untrusted(line)
            except ValueError as error:
                raise _Failed(Status.INVALID_OUTPUT, f"the plugin process wrote outside the protocol: {error}") from None
            kind = message["type"]
            record = _log_record(message) if kind == _wire.LOG else None
            if kind in (_wire.LOG, _wire.CALL):
                # Every byte of the line counts, not only the text: a level or an unknown key
                # a megabyte long is output too.
                sent += len(line)
                if sent > self.limits.max_log_bytes:
                    raise _Failed(Status.OUTPUT_LIMIT, f"the hook logged or printed more than {self.limits.max_log_bytes} "
                                                  "bytes (every byte of its log and read messages counts)")
            if record is not None:
                logs.append(record)
            elif kind == _wire.CALL:
                self._answer(message)
            elif kind == _wire.RESULT and message.get("event_id") == event_id:
                return self._outcome(message, self.limits.max_log_bytes - sent)
            else:
                raise _Failed(Status.INVALID_OUTPUT, f"unexpected {kind[:40]!r} message during the hook")

    def _next(self, deadline: float) -> bytes:
        try:
            return self.reader.next(deadline)
        except FrameTimeout:
            raise _Failed(Status.TIMEOUT, f"the hook did not return within {self.limits.timeout_s:g} s") from None
        except Closed:
            raise _Failed(Status.ERROR, lambda: "the plugin process exited during the hook: " + self._exit_info(),
                          ended=True) from None
        except TooLarge:
            limit = self.limits.max_message_bytes
            raise _Failed(Status.OUTPUT_LIMIT, f"the plugin sent a message over {limit} bytes") from None
        except OutputLimit as error:
            raise _Failed(Status.OUTPUT_LIMIT, str(error)) from None

    def _outcome(self, message: dict[str, Any], room: int) -> dict[str, Any]:
        """The result message, checked; its error (a traceback) cut to what is left of the log
        budget, since it is stored with the logs (at least ``MIN_ERROR_BYTES`` of it)."""
        error = message.get("error")
        if isinstance(error, str):
            message = {**message, "error": cut(error, max(room, MIN_ERROR_BYTES))}
        actions = message.get("actions") or []
        if not isinstance(actions, list):
            raise _Failed(Status.INVALID_OUTPUT, "the plugin returned actions that are not a list")
        if len(actions) > self.limits.max_actions:
            raise _Failed(Status.OUTPUT_LIMIT,
                          f"the hook produced {len(actions)} actions, over the limit of {self.limits.max_actions}")
        return {**message, "status": message.get("status") if message.get("status") in (Status.OK, Status.ERROR) else Status.ERROR}

    def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": _wire.REPLY, "call_id": message.get("call_id")}
        try:
            if self.on_call is None:
                raise LookupError("this sandbox answers no reads")
            kwargs = message.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise TypeError("a read's keyword arguments are a JSON object")
            reply["result"] = self.on_call(str(message.get("method")), kwargs)
        except Exception as error:  # a refused read is the hook's error to handle, not ours
            reply["error"] = f"{type(error).__name__}: {error}"
            reply["error_type"] = type(error).__name__  # lets the SDK raise a typed error
        try:
            self._send(reply)
        except OSError:
            raise _Failed(Status.ERROR, lambda: "the plugin process exited during the hook: " + self._exit_info(),
                          ended=True) from None

    def _raise_if_lost(self, when: str) -> None:
        """A plugin whose sandbox went away under it did nothing wrong: infrastructure failure."""
        reason = self._lost()
        if reason is not None:
            raise SandboxUnavailable(f"the plugin's sandbox was lost {when}: {reason}")

    def idle_ended(self) -> bool:
        """Whether it died between events (with its engine, say): checked before an event, so
        that event is not blamed for it."""
        return self.dead or self.reader.ended()

    def _send(self, message: dict[str, Any]) -> None:
        # Events were validated when they came in (no NaN, no infinity, which orjson would
        # write as null); anything else goes as the protocol's module writes it.
        self._write(_encode(message) if message["type"] in (_wire.EVENTS, _wire.EVENT) else _wire.encode(message))

    def shutdown(self) -> None:
        """Ask the plugin to exit, then make sure it did."""
        if not self.dead:
            try:
                self._send({"type": _wire.SHUTDOWN})
            except OSError:
                pass
        self.stop()

    def stop(self) -> None:
        self.dead = True
        self._kill()
