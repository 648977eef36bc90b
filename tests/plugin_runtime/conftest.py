"""Fixtures shared by the runtime's tests: the real Docker engine, a real PostgreSQL, and the
store a service test runs on (``database``: each such test runs on SQLite and on PostgreSQL)."""

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


@pytest.fixture(scope="session")
def postgres_server():
    """Debian's PostgreSQL in a temporary directory for the session; skipped (with the reason)
    only where it is not installed."""
    from tests.plugin_runtime.store import pg_service

    reason = pg_service.missing()
    if reason:
        pytest.skip(reason)
    server = pg_service.PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest):
    """Where a service under test keeps its state: None (the embedded SQLite file in its data
    directory), or the session's PostgreSQL, on which each service gets a fresh database
    (``start_service(..., database=database)``). Service tests take it, so both stores stay equal."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server")
