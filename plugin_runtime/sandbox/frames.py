"""Newline-framed messages from a plugin's output, with a deadline and a size cap, over any
byte source (a pipe's descriptor, a container's attach stream)."""

from __future__ import annotations

import os
import select
import time
from typing import Protocol


class Closed(Exception):
    """The plugin side closed its output (it exited or was killed)."""


class TooLarge(Exception):
    pass


class FrameTimeout(Exception):
    pass


class OutputLimit(Exception):
    """Raised by a byte source when the plugin wrote more than its limit (e.g. to stderr)."""


class ByteSource(Protocol):
    """What a worker reads from: ``read`` returns bytes, ``b""`` at end of stream, or
    ``None`` when what arrived held nothing for the protocol (yet)."""

    def fileno(self) -> int: ...

    def read(self) -> bytes | None: ...


class FdSource:
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
                if end >= self.max_bytes:  # a line that arrived in one chunk with its newline
                    raise TooLarge
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                self.start = 0
                return line
            self.start = len(self.buffer)
            if len(self.buffer) > self.max_bytes:
                raise TooLarge
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout
            if not _readable(self.source, remaining):
                raise FrameTimeout
            try:
                chunk = self.source.read()
            except OSError:  # a reset connection (a killed container) is an ended stream
                raise Closed from None
            if chunk is None:
                continue
            if not chunk:
                raise Closed
            self.buffer += chunk

    def ended(self) -> bool:
        """Whether the source ended (or failed, or flooded) while nobody waited on it; what
        arrived meanwhile stays buffered for ``next``."""
        try:
            while _readable(self.source, 0):
                chunk = self.source.read()
                if chunk == b"" or len(self.buffer) > self.max_bytes:
                    return True
                self.buffer += chunk or b""
        except (OSError, ValueError, OutputLimit):  # ValueError: a closed descriptor
            return True
        return False


def _readable(source: ByteSource, timeout_s: float) -> bool:
    """Whether ``source`` has something to read (or ended) within ``timeout_s``. poll, not
    select: a busy runtime holds more than select's 1,024 descriptors, past which select fails."""
    poller = select.poll()
    poller.register(source.fileno(), select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))
