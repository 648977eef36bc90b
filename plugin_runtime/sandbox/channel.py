"""The host's end of the plugin protocol (``plugin_sdk._wire``), over any pair of byte streams.

A ``Worker`` is one plugin process or container serving one project, event after event. It
turns everything the plugin can do wrong (hang, crash, flood, garbage) into a RunResult, and
is ``dead`` afterwards so its owner starts a fresh one for the next event.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any, Protocol

from plugin_sdk import _wire
from plugin_sdk.results import RunResult, result_from_outcome
from plugin_runtime.sandbox.base import Limits

#: Answers a hook's read (``labels``, ``assets``, ...) while it runs; raises to refuse.
CallHandler = Callable[[str, dict[str, Any]], Any]


class _Closed(Exception):
    """The plugin side closed its output (it exited or was killed)."""


class _TooLarge(Exception):
    pass


class _Timeout(Exception):
    pass


class OutputLimit(Exception):
    """Raised by a byte source when the plugin wrote more than its limit (e.g. to stderr)."""


class ByteSource(Protocol):
    """What a worker reads from: ``read`` returns bytes, ``b""`` at end of stream, or
    ``None`` when what arrived held nothing for the protocol (yet)."""

    def fileno(self) -> int: ...

    def read(self) -> bytes | None: ...


class _Fd:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        return os.read(self.fd, 1 << 16)


class FrameReader:
    """Newline-framed messages from a byte source, with a deadline and a size cap."""

    def __init__(self, source: ByteSource, max_bytes: int) -> None:
        self.source, self.max_bytes = source, max_bytes
        self.buffer = bytearray()
        self.start = 0  # where the next scan for a newline begins

    def next(self, deadline: float) -> bytes:
        while True:
            end = self.buffer.find(b"\n", self.start)
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                self.start = 0
                return line
            self.start = len(self.buffer)
            if len(self.buffer) > self.max_bytes:
                raise _TooLarge
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            ready, _, _ = select.select([self.source], [], [], remaining)
            if not ready:
                raise _Timeout
            chunk = self.source.read()
            if chunk is None:
                continue
            if not chunk:
                raise _Closed
            self.buffer += chunk


class Worker:
    """One live plugin process or container, bound to one project.

    ``write`` sends bytes to the plugin's stdin; ``source`` is its stdout (a descriptor or a
    ByteSource); ``kill`` stops it
    for good; ``exit_info`` describes how it ended (exit code, OOM, stderr tail).
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
    ) -> None:
        self._write, self._kill, self._exit_info = write, kill, exit_info
        self._oom_killed = oom_killed
        self.reader = FrameReader(_Fd(source) if isinstance(source, int) else source, limits.max_message_bytes)
        self.limits = limits
        self.on_call = on_call
        self.dead = False
        self.info: dict[str, Any] | None = None
        self.load_error: str | None = None
        #: "init" when the plugin loaded but its constructor failed (it may depend on the project).
        self.load_stage: str | None = None
        self.events_served = 0

    def start(self, project_id: str) -> None:
        """Send ``init`` and wait for ``hello`` (sets ``info``) or ``load_error``."""
        self._send({
            "type": _wire.INIT, "protocol": _wire.PROTOCOL, "project_id": project_id,
            "reads": "host" if self.on_call is not None else "context",
        })
        deadline = time.monotonic() + self.limits.start_timeout_s
        try:
            message = _wire.decode(self.reader.next(deadline))
            while message["type"] == _wire.CALL:  # reads from the plugin's __init__
                self._answer(message)
                message = _wire.decode(self.reader.next(deadline))
        except _Timeout:
            self.stop()
            self.load_error = f"the plugin did not start within {self.limits.start_timeout_s:g} s"
            return
        except (_Closed, _TooLarge, OutputLimit, ValueError):
            self.stop()
            self.load_error = "the plugin process failed before loading the plugin: " + self._exit_info()
            return
        if message["type"] == _wire.HELLO:
            self.info = message.get("plugin") or {}
        elif message["type"] == _wire.LOAD_ERROR:
            self.load_error = str(message.get("error"))
            self.load_stage = message.get("stage")
            self.stop()
        else:
            self.stop()
            self.load_error = f"the plugin process answered {message['type']!r} instead of hello"

    def run(self, event: dict[str, Any]) -> RunResult:
        """Send one event and collect its logs, reads and result within the time limit."""
        event_id = event.get("id")
        started = time.monotonic()
        deadline = started + self.limits.timeout_s
        logs: list[dict[str, Any]] = []
        log_bytes = 0

        def finish(status: str, error: str | Callable[[], str] | None) -> RunResult:
            self.stop()
            # How the plugin ended (exit code, OOM) is known only once it is stopped.
            error = error() if callable(error) else error
            if status != "timeout" and self._oom_killed():
                status, error = "oom_killed", (
                    f"the plugin ran out of memory (limit {self.limits.memory_mb} MB) and was killed"
                )
            return RunResult(
                event_id=event_id, status=status, logs=logs, error=error,
                duration_ms=(time.monotonic() - started) * 1000,
            )

        try:
            self._send({"type": _wire.EVENT, "event": event})
        except OSError:
            return finish("error", lambda: "the plugin process was gone before the event: " + self._exit_info())
        self.events_served += 1
        while True:
            try:
                message = _wire.decode(self.reader.next(deadline))
            except _Timeout:
                return finish("timeout", f"the hook did not return within {self.limits.timeout_s:g} s")
            except _Closed:
                return finish("error", lambda: "the plugin process exited during the hook: " + self._exit_info())
            except _TooLarge:
                return finish(
                    "output_limit",
                    f"the plugin sent a message over {self.limits.max_message_bytes} bytes",
                )
            except OutputLimit as error:
                return finish("output_limit", str(error))
            except ValueError as error:
                return finish("invalid_output", f"the plugin process wrote outside the protocol: {error}")
            kind = message["type"]
            if kind == _wire.LOG:
                text = str(message.get("message", ""))
                log_bytes += len(text) + 16
                if log_bytes > self.limits.max_log_bytes:
                    return finish(
                        "output_limit",
                        f"the hook logged or printed more than {self.limits.max_log_bytes} bytes",
                    )
                logs.append({
                    "level": str(message.get("level", "INFO")), "message": text,
                    "source": message.get("source") if message.get("source") in ("logger", "stdout", "stderr") else "logger",
                })
            elif kind == _wire.CALL:
                self._answer(message)
            elif kind == _wire.RESULT and message.get("event_id") == event_id:
                actions = message.get("actions") or []
                if not isinstance(actions, list):
                    return finish("invalid_output", "the plugin returned actions that are not a list")
                if len(actions) > self.limits.max_actions:
                    return finish(
                        "output_limit",
                        f"the hook produced {len(actions)} actions, over the limit of {self.limits.max_actions}",
                    )
                outcome = {**message, "status": message.get("status") if message.get("status") in ("ok", "error") else "error"}
                return result_from_outcome(event_id, outcome, logs, (time.monotonic() - started) * 1000)
            else:
                return finish("invalid_output", f"unexpected {kind!r} message during the hook")

    def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": _wire.REPLY, "call_id": message.get("call_id")}
        try:
            if self.on_call is None:
                raise LookupError("this sandbox answers no reads")
            reply["result"] = self.on_call(str(message.get("method")), dict(message.get("kwargs") or {}))
        except Exception as error:  # a refused read is the hook's error to handle, not ours
            reply["error"] = f"{type(error).__name__}: {error}"
        self._send(reply)

    def _send(self, message: dict[str, Any]) -> None:
        self._write(_wire.encode(message))

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
