"""A warm container using CPU between events (a thread its plugin left running after a hook) is
paused by the host, which reads its cgroup, and replaced at its next event; an idle one is left."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from plugin_runtime.sandbox.docker import LABEL
from plugin_sdk.testing import make_event
from tests.plugin_runtime.sandbox.test_docker import plugin

pytestmark = pytest.mark.docker

SPIN = """
import threading

def spin():
    while True:
        pass

threading.Thread(target=spin, daemon=True).start()
"""


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_container_spinning_between_events_is_paused_then_replaced(docker_plugin, sandbox_containers):
    box = docker_plugin(plugin(SPIN))
    assert box.run(make_event("onSubmit", asset_id="quiet", project_id="proj-quiet")).status == "ok"
    result = box.run(make_event("onSubmit", asset_id="attack", project_id="proj-spin"))
    assert result.status == "ok", result.error  # its hook returned: the thread is not the run's
    spinning = box.workers["proj-spin"]
    wait_for(lambda: spinning.dead)

    def states() -> dict[str, str]:
        return {c.labels[f"{LABEL}.project"]: c.status for c in sandbox_containers(**{f"{LABEL}.test": box.test_label})}

    wait_for(lambda: states() == {"proj-quiet": "running", "proj-spin": "paused"})
    assert not box.workers["proj-quiet"].dead  # idle all along: left warm
    after = box.run(make_event("onSubmit", asset_id="next", project_id="proj-spin"))
    assert after.status == "ok", after.error
    assert box.cold_starts == 3  # the quiet one, the spinning one, its replacement
    assert states() == {"proj-quiet": "running", "proj-spin": "running"}
