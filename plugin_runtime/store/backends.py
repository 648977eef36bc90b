"""Which store a runtime opens, by the scheme of its database URL: none, the embedded SQLite
file in the data directory; ``postgresql://``, the shared PostgreSQL (``store/postgres.py``).

The rest of the runtime is handed a store and never asks which one it has.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from plugin_runtime.errors import Refused
from plugin_runtime.store.sqlite import Store

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_shared(database_url: str | None) -> bool:
    """True for a database other processes share (PostgreSQL), False for the embedded file."""
    return database_url is not None and urlsplit(database_url).scheme in POSTGRES_SCHEMES


def check_url(database_url: str) -> str:
    scheme = urlsplit(database_url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise Refused(f"unsupported database URL {scheme + '://...' if scheme else database_url!r}: give "
                      "postgresql://user:password@host:port/database, or none for the embedded SQLite file")
    return database_url


def open_store(database_url: str | None, data_dir: Path) -> Store:
    """The store of ``database_url`` (migrated up to date), else ``data_dir``'s SQLite file."""
    if database_url is None:
        return Store(data_dir / "runtime.db")
    from plugin_runtime.store.postgres import PostgresStore

    return PostgresStore(check_url(database_url))
