"""SQLite (WAL) under the data directory: the runtime's state and the embedded platform's.

The SQLite-specific part of the store: its schema (``MIGRATIONS``, appended to, never
edited: existing data directories upgrade through them), connections and transactions.

One database file, so that applying a run's actions to the embedded platform and marking the
run done commit together: an event's effects are applied once, whatever is retried.
Writes go through one connection under a lock (SQLite has one writer anyway); each thread
reads through its own connection. ``synchronous=NORMAL`` in WAL mode survives a killed
process (only a power loss may drop the last commits), without an fsync per event; the WAL
is checkpointed by a thread of its own (``checkpoint``), not by the commit that fills it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from plugin_runtime.store.activations import Activations
from plugin_runtime.store.checkpoint import AUTOCHECKPOINT_OFF, Checkpointer
from plugin_runtime.store.codec import Db
from plugin_runtime.store.connections import Connections
from plugin_runtime.store.events import Events
from plugin_runtime.store.outbox import Outbox
from plugin_runtime.store.plugins import Plugins
from plugin_runtime.store.queued import QueuedCounts
from plugin_runtime.store.run_records import RunRecords
from plugin_runtime.store.shadows import Shadows
from plugin_runtime.store.runs import Runs

MIGRATIONS: list[str] = [
    # 1: registry, events, runs, embedded platform
    """
    CREATE TABLE plugins (
        name TEXT PRIMARY KEY,
        current_version INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE plugin_versions (
        plugin TEXT NOT NULL,
        version INTEGER NOT NULL,
        digest TEXT NOT NULL,
        status TEXT NOT NULL,              -- deploying, active, failed, inactive
        archive BLOB NOT NULL,             -- the kept files, as a zip
        handler TEXT NOT NULL,
        subscriptions TEXT NOT NULL,       -- JSON list of event types and patterns
        warnings TEXT NOT NULL DEFAULT '[]',
        dropped TEXT NOT NULL DEFAULT '[]',
        limits TEXT NOT NULL DEFAULT '{}',
        image TEXT,
        freeze TEXT NOT NULL DEFAULT '[]',
        build_log TEXT NOT NULL DEFAULT '',
        build_error TEXT,
        created_at TEXT NOT NULL,
        ready_at TEXT,
        PRIMARY KEY (plugin, version)
    );
    CREATE TABLE activations (
        plugin TEXT NOT NULL,
        project_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (plugin, project_id)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        project_id TEXT NOT NULL,
        asset_id TEXT,
        body TEXT NOT NULL,
        source TEXT NOT NULL,              -- webhook, platform, cli
        cause_run TEXT,
        cause_plugin TEXT,
        depth INTEGER NOT NULL DEFAULT 0,
        received_at TEXT NOT NULL
    );
    CREATE INDEX events_project ON events (project_id, seq);
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_seq INTEGER NOT NULL,
        plugin TEXT NOT NULL,
        version INTEGER NOT NULL,
        project_id TEXT NOT NULL,
        asset_id TEXT,
        status TEXT NOT NULL,              -- pending, running, succeeded, failed, dead
        outcome TEXT,                      -- the sandbox status when not ok
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        duration_ms REAL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        UNIQUE (event_id, plugin, version)
    );
    CREATE INDEX runs_status ON runs (status, event_seq);
    CREATE INDEX runs_plugin ON runs (plugin, created_at);
    CREATE TABLE run_actions (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        status TEXT NOT NULL,              -- applied, rejected
        reason TEXT,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE run_logs (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        title TEXT,
        input_type TEXT,
        json_interface TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE assets (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        external_id TEXT,
        content TEXT,
        status TEXT NOT NULL DEFAULT 'TODO',
        json_metadata TEXT NOT NULL DEFAULT '{}',
        priority INTEGER NOT NULL DEFAULT 0,
        to_be_labeled_by TEXT NOT NULL DEFAULT '[]',
        is_used_for_consensus INTEGER NOT NULL DEFAULT 0,
        is_honeypot INTEGER NOT NULL DEFAULT 0,
        consensus_mark REAL,
        honeypot_mark REAL,
        inference_mark REAL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX assets_project ON assets (project_id, external_id);
    CREATE TABLE labels (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        asset_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        label_type TEXT NOT NULL,
        json_response TEXT NOT NULL,
        author_id TEXT,
        seconds_to_label REAL,
        model_name TEXT,
        extra TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE INDEX labels_asset ON labels (asset_id, seq);
    CREATE TABLE issues (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        project_id TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        label_id TEXT,
        object_mid TEXT,
        text TEXT,
        type TEXT NOT NULL DEFAULT 'ISSUE',
        status TEXT NOT NULL DEFAULT 'OPEN',
        run_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX issues_asset ON issues (asset_id, seq);
    """,
    # 2: pending runs counted per project, for per-project backpressure
    """
    CREATE INDEX runs_project_status ON runs (project_id, status);
    """,
    # 3: quality marks on labels (assets already have theirs)
    """
    ALTER TABLE labels ADD COLUMN consensus_mark REAL;
    ALTER TABLE labels ADD COLUMN honeypot_mark REAL;
    ALTER TABLE labels ADD COLUMN inference_mark REAL;
    """,
    # 4: project workflow settings plugins read (consensus size, review coverage)
    """
    ALTER TABLE projects ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
    """,
    # 5: event budgets (each caused event and run knows its root event; the root counts what
    # it caused), per-run metrics (reads), and indexes so plugins' reads never scan a project
    """
    ALTER TABLE events ADD COLUMN root_id TEXT;
    ALTER TABLE events ADD COLUMN caused_runs INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN caused_events INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN dropped_events INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN budget_exceeded TEXT;
    CREATE INDEX events_budget ON events (budget_exceeded) WHERE budget_exceeded IS NOT NULL;
    ALTER TABLE runs ADD COLUMN root_id TEXT;
    CREATE INDEX runs_root ON runs (root_id, event_seq);
    ALTER TABLE runs ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX labels_project ON labels (project_id, created_at, seq);
    CREATE INDEX labels_project_type ON labels (project_id, label_type);
    CREATE INDEX assets_project_order ON assets (project_id, created_at, id);
    CREATE INDEX assets_project_status ON assets (project_id, status);
    CREATE INDEX issues_project ON issues (project_id, created_at, seq);
    """,
    # 6: log lines numbered by a column of their own (the `plugins logs --follow` cursor was
    # the rowid, which SQLite may reuse once the newest line is deleted); ids kept
    """
    CREATE TABLE run_logs_numbered (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        source TEXT NOT NULL,
        UNIQUE (run_id, seq)
    );
    INSERT INTO run_logs_numbered (id, run_id, seq, level, message, source)
        SELECT rowid, run_id, seq, level, message, source FROM run_logs ORDER BY rowid;
    DROP TABLE run_logs;
    ALTER TABLE run_logs_numbered RENAME TO run_logs;
    """,
    # 7: the durable run queue: a failed attempt's backoff stored with its run, and each
    # lane's head (plugin, version, project; event order) found among queued runs only
    """
    ALTER TABLE runs ADD COLUMN next_attempt_at TEXT;
    CREATE INDEX runs_lane ON runs (plugin, version, project_id, event_seq) WHERE status IN ('pending', 'running');
    """,
    # 8: the applier's outbox (a run's actions on their way to the platform, each with its
    # idempotency key), and the keys the embedded platform applied (a redelivery is a no-op)
    """
    CREATE TABLE outbox (
        key TEXT PRIMARY KEY,              -- run_id:seq
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        at TEXT,                           -- the time of the event the run answered
        status TEXT NOT NULL,              -- pending, applied, rejected, failed
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (created_at, run_id, seq) WHERE status = 'pending';
    CREATE TABLE applied_actions (
        key TEXT PRIMARY KEY,
        applied_at TEXT NOT NULL
    );
    """,
    # 9: a run's outbox rows found by their run (finishing a run replaced them by a scan)
    """
    CREATE INDEX outbox_run ON outbox (run_id, seq);
    """,
    # 10: projects connected to a platform of their own (Label Studio, ...), and how far the
    # runtime looked at each one's changes (reconciliation)
    """
    CREATE TABLE connections (
        project_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,                -- label-studio, ...
        config TEXT NOT NULL,              -- JSON: url, remote project, webhook id, bot user id
        secret TEXT NOT NULL,              -- the header the platform's webhooks carry
        credentials TEXT NOT NULL,         -- JSON: the runtime's tokens there, never shown
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE connection_cursors (
        project_id TEXT PRIMARY KEY,
        position TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 11: the dashboard's pages of runs, newest first, by keyset (event, run id) over all runs,
    # one plugin's or one project's (store/console.py); the plugin index replaces runs_plugin,
    # which only narrowed by plugin and left the order to a sort
    """
    CREATE INDEX runs_page ON runs (event_seq, id);
    DROP INDEX runs_plugin;
    CREATE INDEX runs_plugin_page ON runs (plugin, event_seq, id);
    CREATE INDEX runs_project_page ON runs (project_id, event_seq, id);
    """,
    # 12: shadows: a candidate version run beside the live one on a project's events, its
    # runs' actions stored and never applied (``store/shadows.py``); versions uploaded as
    # candidates are built without going live
    """
    ALTER TABLE plugin_versions ADD COLUMN candidate INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE shadows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plugin TEXT NOT NULL,
        version INTEGER NOT NULL,
        project_id TEXT NOT NULL,
        subscriptions TEXT NOT NULL,       -- the candidate's, as built: the events it runs on
        started_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT                    -- stopped, promoted, replaced, deleted
    );
    CREATE UNIQUE INDEX shadows_running ON shadows (plugin, project_id) WHERE ended_at IS NULL;
    CREATE TABLE shadow_runs (
        id TEXT PRIMARY KEY,
        shadow_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        event_seq INTEGER NOT NULL,
        status TEXT NOT NULL,              -- pending, running, succeeded, failed, skipped
        outcome TEXT,
        error TEXT,
        actions TEXT NOT NULL DEFAULT '[]',  -- computed, never applied
        no_hook INTEGER NOT NULL DEFAULT 0,
        duration_ms REAL,
        differs INTEGER,                   -- from the live run's, once both ended
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        UNIQUE (shadow_id, event_id)
    );
    CREATE INDEX shadow_runs_of ON shadow_runs (shadow_id, event_seq);
    CREATE INDEX shadow_runs_queue ON shadow_runs (event_seq) WHERE status IN ('pending', 'running');
    """,
    # 13: which worker ran a run (its --name, default HOST:PID): several run on one PostgreSQL
    """
    ALTER TABLE runs ADD COLUMN worker TEXT;
    """,
    # 14: shadows plan their runs from the event log, after the last event each looked at
    # (nothing on the live path); a shadow's queued runs found by their shadow
    """
    ALTER TABLE shadows ADD COLUMN planned_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE shadows SET planned_seq = COALESCE(
        (SELECT MAX(r.event_seq) FROM shadow_runs r WHERE r.shadow_id = shadows.id), (SELECT MAX(seq) FROM events), 0);
    DROP INDEX shadow_runs_queue;
    CREATE INDEX shadow_runs_queued ON shadow_runs (shadow_id, event_seq) WHERE status IN ('pending', 'running');
    """,
    # 15: a settled outbox row no longer keeps its action (it is in run_actions): every
    # applied action's payload was stored twice
    """
    UPDATE outbox SET action = '' WHERE status <> 'pending';
    """,
]


class Store:
    """The database: ``write()`` for a transaction, ``read()`` for a query, and the
    repositories, which work on either."""

    events = Events()
    run_records = RunRecords()
    plugins = Plugins()
    activations = Activations()
    outbox = Outbox()
    connections = Connections()
    shadows = Shadows()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        # Run by write() once its transaction commits (dropped when it rolls back).
        self._after_commit: list[Callable[[], None]] = []
        self._migrate()
        self.runs = Runs(self._queued_moved)
        self.queued = QueuedCounts(self.runs.queued_by_project(self._writer))
        self._writer.execute(AUTOCHECKPOINT_OFF)
        self._checkpointer = Checkpointer(self._connect, self._lock)
        # A store dropped without close() (a test, a CLI command) still lets its thread go.
        weakref.finalize(self, self._checkpointer.stop)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _migrate(self) -> None:
        with self.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (0)")
            for number, script in enumerate(MIGRATIONS[current:], current + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (number,))

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction on the writer connection; rolled back if the block raises."""
        with self._lock:
            db = self._writer
            if db.in_transaction:  # nested: join the outer transaction
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                self._after_commit.clear()
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            actions, self._after_commit = self._after_commit, []
            for action in actions:
                action()

    def _queued_moved(self, db: Db, project_id: str, delta: int) -> None:
        """A run entered (+1) or left (-1) the queue in ``db``: counted once that commits."""
        if db is self._writer and db.in_transaction:
            with self._lock:
                self._after_commit.append(lambda: self.queued.add(project_id, delta))
        else:
            self.queued.add(project_id, delta)

    def read(self) -> sqlite3.Connection:
        """This thread's reading connection (sees every committed write)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    def close(self) -> None:
        self._checkpointer.close()
        self._writer.close()
        # Threads outliving the store (a server's pool of request threads) would keep theirs open.
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for connection in readers:
            connection.close()

