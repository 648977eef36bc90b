"""A real PostgreSQL for tests: Debian's postgresql 15, ``initdb`` into a temporary directory
as an unprivileged user, listening on 127.0.0.1 at a free port (its socket in that directory).

``PostgresServer`` starts, stops and restarts it (the scale-out test restarts it under load);
``database()`` makes a fresh database on it, so each service gets an empty schema.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

def _binaries() -> Path:
    """Debian's newest PostgreSQL (15 on bookworm), or PLUGIN_RUNTIME_TEST_PG_BIN."""
    if os.environ.get("PLUGIN_RUNTIME_TEST_PG_BIN"):
        return Path(os.environ["PLUGIN_RUNTIME_TEST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda initdb: int(initdb.parts[-3]) if initdb.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


BINARIES = _binaries()
#: The unprivileged user the server runs as (postgres refuses to run as root); Debian's
#: package creates it.
USER = "postgres"
_databases = itertools.count(1)


def missing() -> str | None:
    """Why no server can be started here (None: it can)."""
    if not (BINARIES / "initdb").exists():
        return (f"PostgreSQL is not installed ({BINARIES}/initdb is missing): "
                "`apt-get install postgresql` (scripts/test.sh does)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing: the server cannot be started as an unprivileged user"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self, fsync: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="plugin-runtime-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.fsync = fsync
        if os.geteuid() == 0:
            shutil.chown(self.root, USER, USER)
        self._as_user([str(BINARIES / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8"])
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_user(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
        result = subprocess.run(prefix + command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
                   f" -c max_connections=300 -c fsync={'on' if self.fsync else 'off'}"
                   " -c shared_buffers=64MB -c log_min_messages=warning")
        self._as_user([str(BINARIES / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                       str(self.root / "server.log"), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_user([str(BINARIES / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def restart(self) -> None:
        """Stopped (its sessions ended; at once when that takes too long) and started again."""
        try:
            self.stop()
        except RuntimeError:
            self.stop("immediate")
        self.start()

    def database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def wait_ready(url: str, timeout: float = 30) -> None:
    """Until the server answers (after a restart)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
