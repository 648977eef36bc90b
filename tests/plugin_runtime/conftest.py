"""Fixtures shared by the runtime's tests: the real Docker engine."""

from __future__ import annotations

import os

import pytest

from plugin_runtime.errors import SandboxUnavailable


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real engine; fails the session when there is none (skips with
    ``PLUGIN_RUNTIME_SKIP_DOCKER=1``)."""
    from plugin_runtime import engine

    try:
        client = engine.connect(timeout=300)
    except SandboxUnavailable as error:
        if os.environ.get("PLUGIN_RUNTIME_SKIP_DOCKER") == "1":
            pytest.skip(f"Docker is unavailable (PLUGIN_RUNTIME_SKIP_DOCKER=1): {error}")
        pytest.fail(str(error), pytrace=False)
    yield client
    client.close()
