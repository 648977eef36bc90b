"""The host's end of the plugin protocol over real pipes: reading frames on descriptors past
select()'s 1,024 (a busy runtime holds that many), and a stream that ended between events."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator

import pytest

from plugin_runtime.sandbox.frames import Closed, FdSource, FrameReader

HIGH_FD = 1500


@pytest.fixture
def high_pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose reading end is descriptor 1500."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
        pytest.skip(f"the hard limit on open files ({hard}) is below {HIGH_FD}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH_FD + 1), hard))
    read, write = os.pipe()
    os.dup2(read, HIGH_FD)
    os.close(read)
    try:
        yield HIGH_FD, write
    finally:
        for fd in (HIGH_FD, write):
            try:
                os.close(fd)
            except OSError:
                pass
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_frames_are_read_from_a_descriptor_past_1024(high_pipe) -> None:
    read, write = high_pipe
    reader = FrameReader(FdSource(read), max_bytes=1 << 16)
    os.write(write, b'{"type": "hello"}\n{"type": "res')
    assert reader.next(time.monotonic() + 5) == b'{"type": "hello"}\n'
    assert not reader.ended()  # half a frame waits in the buffer, the stream goes on
    os.write(write, b'ult"}\n')
    assert reader.next(time.monotonic() + 5) == b'{"type": "result"}\n'


def test_a_stream_that_ended_between_events_is_seen_and_what_came_before_is_kept(high_pipe) -> None:
    read, write = high_pipe
    reader = FrameReader(FdSource(read), max_bytes=1 << 16)
    os.write(write, b'{"type": "log"}\n')
    os.close(write)
    assert reader.ended()
    assert reader.next(time.monotonic() + 5) == b'{"type": "log"}\n'
    with pytest.raises(Closed):
        reader.next(time.monotonic() + 5)
