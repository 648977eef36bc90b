"""The plugin process: loads a plugin and serves events over the protocol of ``_wire``.

Started by the host as ``python -I -c "...; plugin_sdk._child.main()" SDK_ROOT PLUGIN_PATH``,
locally (process sandbox) or as a container's command (Docker sandbox).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

from plugin_sdk import _wire
from plugin_sdk._loader import PluginLoadError, load_handler
from plugin_sdk.errors import PluginDefinitionError, PluginError, ReadLimitExceeded

SDK_VERSION = "0.1.0"


class ProtocolError(Exception):
    """The host sent something this side cannot follow."""


class _Channel:
    """The protocol's stdin/stdout, moved out of the plugin's reach.

    The original descriptors are duplicated for the protocol; fd 0 then reads /dev/null and
    fd 1 goes to stderr, so a plugin (or a C extension) writing to "stdout" cannot corrupt
    the message stream, and one reading stdin cannot steal events.
    """

    def __init__(self) -> None:
        self.inp = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
        self.out = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def send(self, message: dict[str, Any]) -> None:
        data = memoryview(_wire.encode(message))
        while data:
            written = os.write(self.out, data)
            data = data[written:]

    def receive(self) -> dict[str, Any] | None:
        line = self.inp.readline()
        if not line:
            return None
        try:
            return _wire.decode(line)
        except ValueError as error:
            raise ProtocolError(f"unreadable message from the host: {error}") from None


def standard_level(name: str) -> str:
    """The level a record crosses the protocol with: a custom one (``NOTICE`` registered as 25,
    or an unnamed ``Level 25``) becomes the standard level at or below it, since the host
    refuses any other."""
    if name in _wire.LEVELS:
        return name
    number = logging.getLevelName(name)  # a registered name's number, else "Level <name>"
    if not isinstance(number, int):
        unnamed = re.fullmatch(r"Level (-?\d+)", name)
        number = int(unnamed[1]) if unnamed else logging.INFO
    for threshold, standard in ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO")):
        if number >= threshold:
            return standard
    return "DEBUG"


class _Session:
    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.event_id: str | None = None
        self.load_logs: list[dict[str, str]] = []
        self.call_ids = 0

    def sink(self, level: str, message: str, source: str) -> None:
        level = standard_level(level)
        if self.event_id is None:
            self.load_logs.append({"level": level, "message": message, "source": source})
            return
        self.channel.send({
            "type": _wire.LOG, "event_id": self.event_id, "level": level,
            "message": message, "source": source,
        })

    def read_from_host(self, method: str, query: dict[str, Any]) -> Any:
        self.call_ids += 1
        call_id = self.call_ids
        self.channel.send({
            "type": _wire.CALL, "event_id": self.event_id, "call_id": call_id,
            "method": method, "kwargs": query,
        })
        reply = self.channel.receive()
        if reply is None or reply.get("type") != _wire.REPLY or reply.get("call_id") != call_id:
            raise ProtocolError(f"expected the reply to call {call_id}, got {reply!r}")
        if reply.get("error"):
            if reply.get("error_type") == "ReadLimitExceeded":
                raise ReadLimitExceeded(str(reply["error"]).removeprefix("ReadLimitExceeded: "))
            raise PluginError(reply["error"])
        return reply.get("result")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    plugin_path = args[-1]
    channel = _Channel()
    session = _Session(channel)
    # Anything printed while the module is imported belongs to the load, not to an event.
    from plugin_sdk._executor import Executor, _LineWriter

    init = channel.receive()
    if init is None:
        return 0
    if init.get("type") != _wire.INIT or init.get("protocol") != _wire.PROTOCOL:
        channel.send({
            "type": _wire.LOAD_ERROR, "protocol": _wire.PROTOCOL,
            "error": f"this plugin process speaks protocol {_wire.PROTOCOL}, the host sent {init!r}",
        })
        return 2
    project_id = init["project_id"]
    reader = session.read_from_host if init.get("reads") == "host" else None
    # The patterns the version was uploaded with (--event-matcher), replacing the class's.
    matcher = init.get("event_matcher")
    event_matcher = [p for p in matcher if isinstance(p, str)] if isinstance(matcher, list) else None

    class _Loading:
        def log(self, level: str, message: str, source: str) -> None:
            session.sink(level, message, source)

    sys.stdout = _LineWriter(_Loading(), "stdout", "INFO")  # type: ignore[arg-type]
    sys.stderr = _LineWriter(_Loading(), "stderr", "WARNING")  # type: ignore[arg-type]
    try:
        handler, warnings = load_handler(plugin_path, sandboxed=True)
        root = os.path.dirname(os.path.abspath(plugin_path))
        executor = Executor(handler, project_id, session.sink, root=root, reader=reader, event_matcher=event_matcher)
    except PluginLoadError as error:
        channel.send({
            "type": _wire.LOAD_ERROR, "protocol": _wire.PROTOCOL, "error": str(error),
            "file": error.file, "line": error.line, "logs": session.load_logs,
        })
        return 1
    except BaseException as error:  # a failing PluginCore.__init__ is the plugin's failure too
        from plugin_sdk._executor import describe_error

        kind = "the plugin's definition" if isinstance(error, PluginDefinitionError) else "creating the plugin"
        channel.send({
            "type": _wire.LOAD_ERROR, "protocol": _wire.PROTOCOL,
            "error": f"{kind}: {error if isinstance(error, PluginDefinitionError) else describe_error(error, os.path.dirname(os.path.abspath(plugin_path)))}",
            "stage": "definition" if isinstance(error, PluginDefinitionError) else "init",
            "logs": session.load_logs,
        })
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    channel.send({
        "type": _wire.HELLO, "protocol": _wire.PROTOCOL, "sdk": SDK_VERSION, "batch": True,
        "plugin": {**executor.info, "warnings": warnings}, "logs": session.load_logs,
    })
    while True:
        message = channel.receive()
        if message is None or message["type"] == _wire.SHUTDOWN:
            return 0
        if message["type"] == _wire.EVENT:
            events = [message["event"]]
        elif message["type"] == _wire.EVENTS and isinstance(message.get("events"), list):
            # A lane's backlog in one message: one read for many events, answered one by one.
            events = message["events"]
        else:
            raise ProtocolError(f"unexpected {message['type']!r} message while idle")
        for event in events:
            session.event_id = event.get("id")
            outcome = executor.run(event, reader)
            session.event_id = None
            channel.send({"type": _wire.RESULT, "event_id": event.get("id"), **outcome})


if __name__ == "__main__":
    sys.exit(main())
