"""The runtime's state, all of its SQL: one repository per noun behind ``Store``.

``Store`` (``sqlite.py``, the SQLite file of the embedded default) opens transactions
(``write()``) and reading connections (``read()``); the repositories (``events``, ``runs``,
``run_records``, ``plugins``, ``activations``) take the connection they work on, so several
of them share one transaction. Their SQL avoids SQLite-only constructs (``ON CONFLICT DO
NOTHING``, ``RETURNING``, explicit sequence columns), so a PostgreSQL store is a sibling of
``sqlite.py`` with its own schema, not a rewrite. The embedded platform keeps its own tables
and SQL (``platforms/embedded``): a remote platform has none.
"""

from plugin_runtime.store.codec import Db, dumps, loads
from plugin_runtime.store.sqlite import MIGRATIONS, Store

__all__ = ["MIGRATIONS", "Db", "Store", "dumps", "loads"]
