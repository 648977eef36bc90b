"""A real service (process sandbox, SQLite, HTTP on 127.0.0.1), and the same service with some
of everything in it (``busy``)."""

from __future__ import annotations

import pytest

from tests.plugin_runtime.api.workload import fill
from tests.plugin_runtime.service_fixtures import Service, start_service, stop_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, database):
    running = start_service(tmp_path_factory.mktemp("api"), "process", database)
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def busy(service: Service) -> Service:
    """``service`` after the workload (``workload.fill``): every route has something to show."""
    fill(service)
    return service

