"""Reaching the Docker engine: one place that turns "no engine" into a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plugin_runtime.config import EngineSettings
from plugin_runtime.errors import SandboxUnavailable

if TYPE_CHECKING:
    import docker

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def connect(timeout: int = 120) -> docker.DockerClient:
    """A Docker client for ``DOCKER_HOST`` (or the local socket), checked with a ping."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as error:  # pragma: no cover - docker is a dependency
        raise SandboxUnavailable("the 'docker' Python package is missing") from error
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as error:
        where = EngineSettings().docker_host
        raise SandboxUnavailable(
            f"no Docker engine answers at {where} ({error}). Start one with "
            f"`{SCRIPTS / 'docker-engine.sh'}` (installs docker.io and runs dockerd without "
            "a default bridge), or set DOCKER_HOST"
        ) from error
    return client


def socket_address() -> tuple[str, str]:
    """``("unix", path)`` or ``("tcp", "host:port")`` of the engine, for raw attach streams."""
    engine = EngineSettings()
    host = engine.docker_host
    if host.startswith("unix://"):
        return "unix", host[len("unix://"):]
    if host.startswith("tcp://"):
        if engine.docker_tls_verify:
            raise SandboxUnavailable("DOCKER_HOST over TLS is not supported for plugin attach streams")
        return "tcp", host[len("tcp://"):]
    raise SandboxUnavailable(f"unsupported DOCKER_HOST {host!r}: use unix:// or tcp://")
