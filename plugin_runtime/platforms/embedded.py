"""The embedded labeling platform: projects, assets, labels and issues in the runtime's SQLite.

It behaves as the labeling platform does for what plugins touch: submitting a DEFAULT label
makes the asset LABELED and emits ``onSubmit``, a REVIEW label REVIEWED and ``onReview``;
changing project settings emits ``onProjectUpdated``; what each action changes is in
``embedded_actions`` (``update_asset`` *replaces* ``json_metadata``, as Kili does).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from plugin_runtime.errors import (
    PlatformConflict,
    PlatformError,
    PlatformNotFound,
    PlatformRefused,
)
from plugin_runtime.applier.policy import Facts
from plugin_runtime.platforms.base import EVENT_FOR_LABEL, STATUS_FOR_LABEL, Keyed
from plugin_runtime.platforms import embedded_actions, embedded_reads, embedded_settings, marks
from plugin_runtime.platforms.embedded_admin import EmbeddedAdmin
from plugin_runtime.platforms.embedded_reads import issue_record, label_record
from plugin_runtime.store import Store, dumps, loads
from plugin_sdk import _queries

ASSET_STATUSES = ("TODO", "ONGOING", "LABELED", "TO_REVIEW", "REVIEWED")
#: Project settings kept and returned as Kili names them, with Kili's defaults.
PROJECT_SETTINGS = {"minConsensusSize": 1, "consensusTotCoverage": 0, "reviewCoverage": 0, "roles": []}
LABEL_TYPES = ("DEFAULT", "REVIEW", "PREDICTION", "INFERENCE", "AUTOSAVE")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


class EmbeddedPlatform(EmbeddedAdmin):
    """See the module docstring; every method taking ``db`` runs in the caller's transaction.
    The port's methods (``facts``, ``apply``, ``mirror``, ``snapshot``) open their own, which
    joins the runtime's when it has one open: its tables live in the runtime's database."""

    #: Its changes commit with the run that causes them (``Platform.shares_store``).
    shares_store = True

    def __init__(self, store: Store) -> None:
        self.store = store

    # The port ----------------------------------------------------------------------------

    def facts(self, asset_ids: Collection[str], label_ids: Collection[str]) -> Facts:
        db = self.store.read()
        assets = {a: row[0] for a in asset_ids
                  if (row := db.execute("SELECT project_id FROM assets WHERE id = ?", (a,)).fetchone())}
        labels = {label: row[0] for label in label_ids
                  if (row := db.execute("SELECT asset_id FROM labels WHERE id = ?", (label,)).fetchone())}
        return Facts(assets, labels, issue_assets=embedded_actions.IssueAssets(self.store.read))

    def apply(self, actions: Sequence[Keyed], at: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Apply actions whose keys it has not applied yet, recording their keys in the same
        transaction as the changes: a redelivered action is a no-op."""
        from plugin_sdk.actions import dump_actions

        with self.store.write() as db:
            fresh = [action for key, action in actions
                     if db.execute("INSERT INTO applied_actions (key, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                   (key, now())).rowcount == 1]
            return self.apply_in(db, run_id, dump_actions(fresh), at) if fresh else []

    def mirror(self, event: dict[str, Any]) -> None:
        with self.store.write() as db:
            self.ingest(db, event)

    def snapshot(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as db:
            return self.context(db, event)

    # Records ---------------------------------------------------------------------------

    def ensure_project(self, db: sqlite3.Connection, project: dict[str, Any]) -> None:
        settings = {k: project[k] for k in PROJECT_SETTINGS if project.get(k) is not None}
        db.execute(
            "INSERT INTO projects (id, title, input_type, json_interface, settings, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (project["id"], project.get("title"), project.get("inputType"),
             dumps(project.get("jsonInterface") or {}), dumps(settings), now()),
        )

    def create_project(self, db: sqlite3.Connection, project_id: str, title: str | None = None,
                       json_interface: dict | None = None, input_type: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict:
        if db.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone():
            raise PlatformConflict(f"project {project_id!r} already exists")
        self.ensure_project(db, {**(settings or {}), "id": project_id, "title": title,
                                 "jsonInterface": json_interface, "inputType": input_type})
        return self.project(db, project_id)

    def update_project(self, db: sqlite3.Connection, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change project settings (Kili's names: ``title``, ``reviewCoverage``, ...); returns
        the ``onProjectUpdated`` event it emits (without id), whose ``settings_updated`` lists
        what changed, with the project as it now is for its context."""
        updated = embedded_settings.apply(self, db, project_id, changes)
        return {"type": "onProjectUpdated", "project_id": project_id, "settings_updated": updated,
                "occurred_at": now(), "context": {"project": self.project(db, project_id)}}

    def settings_changes(self, db: sqlite3.Connection, project_id: str, changes: dict[str, Any]) -> list[dict]:
        """What ``update_project`` would change, as ``settings_updated`` items (none: no event)."""
        return embedded_settings.changed(self, db, project_id, changes)

    def ensure_asset(self, db: sqlite3.Connection, project_id: str, asset: dict[str, Any], status: str | None = None) -> None:
        metadata = asset.get("jsonMetadata")
        if isinstance(metadata, str):
            metadata = loads(metadata or "{}", {})
        stamp = now()
        db.execute(
            "INSERT INTO assets (id, project_id, external_id, content, status, json_metadata, priority,"
            " to_be_labeled_by, is_used_for_consensus, is_honeypot, consensus_mark, honeypot_mark,"
            " inference_mark, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (asset["id"], project_id, asset.get("externalId") or asset["id"], asset.get("content"),
             asset.get("status") if asset.get("status") in ASSET_STATUSES else (status or "TODO"),
             dumps(metadata if isinstance(metadata, dict) else {}), int(asset.get("priority") or 0),
             dumps(asset.get("toBeLabeledBy") or []), int(bool(asset.get("isUsedForConsensus"))),
             int(bool(asset.get("isHoneypot"))), _real(asset.get("consensusMark")), _real(asset.get("honeypotMark")),
             _real(asset.get("inferenceMark")), stamp, stamp),
        )

    def create_asset(self, db: sqlite3.Connection, project_id: str, asset: dict[str, Any]) -> dict:
        if not db.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone():
            raise PlatformNotFound(f"project {project_id!r} does not exist")
        asset = {**asset, "id": asset.get("id") or new_id("asset")}
        if db.execute("SELECT 1 FROM assets WHERE id = ?", (asset["id"],)).fetchone():
            raise PlatformConflict(f"asset {asset['id']!r} already exists")
        self.ensure_asset(db, project_id, asset)
        return self.asset(db, project_id, asset["id"])

    def insert_label(self, db: sqlite3.Connection, project_id: str, asset_id: str, label: dict[str, Any],
                     default_type: str = "DEFAULT") -> bool:
        """Record a label; False when its id is already known."""
        known = {"id", "labelType", "jsonResponse", "authorId", "secondsToLabel", "modelName", "createdAt", "assetId"}
        cursor = db.execute(
            "INSERT INTO labels (id, asset_id, project_id, label_type, json_response, author_id,"
            " seconds_to_label, model_name, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (label.get("id") or new_id("label"), asset_id, project_id,
             label.get("labelType") if label.get("labelType") in LABEL_TYPES else default_type,
             dumps(label.get("jsonResponse") or {}), label.get("authorId"), _real(label.get("secondsToLabel")),
             label.get("modelName"), dumps({k: v for k, v in label.items() if k not in known}),
             str(label.get("createdAt") or now())),
        )
        return cursor.rowcount == 1

    def refresh_marks(self, db: sqlite3.Connection, asset_id: str, budget: marks.MarkBudget | None = None) -> None:
        """Recompute the asset's and its labels' consensus, honeypot and inference marks, as
        the platform does when labels arrive (see ``plugin_sdk.metrics`` for the rules), within
        ``budget`` (one per platform change: ``marks``)."""
        row = db.execute("SELECT a.is_honeypot, p.json_interface FROM assets a JOIN projects p ON p.id = a.project_id"
                         " WHERE a.id = ?", (asset_id,)).fetchone()
        if row is None:
            return
        labels, chosen = self._mark_inputs(db, asset_id, bool(row["is_honeypot"]))
        # The interface matters only to agreements: an asset with one author and nothing to
        # compare with (every asset of most projects) never parses it.
        interface = loads(row["json_interface"], {}) if any("jsonResponse" in label for label in labels) else None
        scored = marks.label_marks(labels, bool(row["is_honeypot"]),
                                   interface if isinstance(interface, dict) and interface else None,
                                   budget or marks.MarkBudget(), chosen)
        for label_id, values in scored.items():
            db.execute("UPDATE labels SET consensus_mark = ?, honeypot_mark = ?, inference_mark = ? WHERE id = ?",
                       (values["consensus_mark"], values["honeypot_mark"], values["inference_mark"], label_id))
        asset = marks.asset_marks(scored)
        db.execute("UPDATE assets SET consensus_mark = ?, honeypot_mark = ?, inference_mark = ? WHERE id = ?",
                   (asset["consensus_mark"], asset["honeypot_mark"], asset["inference_mark"], asset_id))

    @staticmethod
    def _mark_inputs(db: sqlite3.Connection, asset_id: str, is_honeypot: bool) -> tuple[list[dict], marks.Chosen]:
        """The asset's labels as ``marks.label_marks`` reads them, in ``labels_of``'s order, and
        those it compares: who, what type and when for all (what picks the labels compared),
        the whole record only for the compared ones. Reading and parsing every label's JSON for
        every incoming label cost the intake more the more labels an asset had."""
        labels = [{"id": r[0], "labelType": r[1], "authorId": r[2], "createdAt": r[3]} for r in db.execute(
            "SELECT id, label_type, author_id, created_at FROM labels WHERE asset_id = ? ORDER BY created_at, seq",
            (asset_id,))]
        chosen = marks.choose(labels, is_honeypot)
        compared = [label["id"] for label in marks.compared(chosen)]
        if len(compared) < 2:
            return labels, chosen  # nothing to agree with: no mark needs a jsonResponse
        full = {r["id"]: label_record(r) for r in db.execute(
            f"SELECT * FROM labels WHERE id IN ({', '.join('?' * len(compared))})", compared)}
        latest, truth, model = chosen
        return ([full.get(label["id"], label) for label in labels],
                ([full[label["id"]] for label in latest], truth and full[truth["id"]], model and full[model["id"]]))

    @staticmethod
    def _after_latest(db: sqlite3.Connection, asset_id: str, at: str | None = None) -> str:
        """The date of a label added now: ``at`` (the time of the event whose run adds it; by
        default the clock), moved just after the asset's latest label when that is later, so
        the new label is always the newest, replays of recorded events included."""
        moment = _parse_time(at) or datetime.now(timezone.utc)
        for (created,) in db.execute("SELECT created_at FROM labels WHERE asset_id = ?", (asset_id,)):
            latest = _parse_time(created)
            if latest is not None and latest >= moment:
                # A recorded date at the very end of the calendar (9999-12-31T23:59:59.999Z)
                # has no later millisecond: the new label shares it, it does not fail the run.
                moment = latest + timedelta(milliseconds=1) if latest < _LAST_MILLISECOND else latest
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def set_status(self, db: sqlite3.Connection, asset_id: str, status: str) -> None:
        db.execute("UPDATE assets SET status = ?, updated_at = ? WHERE id = ?", (status, now(), asset_id))

    def submit_label(self, db: sqlite3.Connection, project_id: str, asset_id: str, label: dict[str, Any]) -> dict:
        """A labeler's (DEFAULT) or reviewer's (REVIEW) submission: records it, moves the asset
        on, and returns the event it emits (without id)."""
        self._asset_row(db, project_id, asset_id)
        label_type = label.get("labelType") or "DEFAULT"
        if label_type not in EVENT_FOR_LABEL:
            raise PlatformRefused(f"only DEFAULT and REVIEW labels are submitted, not {label_type!r}")
        label = {**label, "id": label.get("id") or new_id("label"), "labelType": label_type,
                 "createdAt": self._after_latest(db, asset_id)}
        if not self.insert_label(db, project_id, asset_id, label):
            raise PlatformConflict(f"label {label['id']!r} already exists")
        self.set_status(db, asset_id, STATUS_FOR_LABEL[label_type])
        self.refresh_marks(db, asset_id)
        return {"type": EVENT_FOR_LABEL[label_type], "project_id": project_id, "asset_id": asset_id,
                "label": self.label(db, label["id"]), "occurred_at": label["createdAt"]}

    # What a received event says ----------------------------------------------------------

    def ingest(self, db: sqlite3.Connection, event: dict[str, Any]) -> None:
        context = event.get("context") or {}
        project = context.get("project") or {}
        self.ensure_project(db, {**project, "id": event["project_id"]})
        if event["type"] == "onProjectUpdated":  # from outside: the mirror takes the new values
            embedded_settings.apply(self, db, event["project_id"],
                                    embedded_settings.known(event.get("settings_updated") or []))
        asset_id = event.get("asset_id")
        if asset_id is None:
            return
        owner = db.execute("SELECT project_id FROM assets WHERE id = ?", (asset_id,)).fetchone()
        if owner is not None and owner[0] != event["project_id"]:
            raise PlatformConflict(f"asset {asset_id!r} belongs to another project than {event['project_id']!r}")
        record = context.get("asset") if (context.get("asset") or {}).get("id") == asset_id else None
        self.ensure_asset(db, event["project_id"], record or {"id": asset_id})
        for label in (record or {}).get("labels") or []:
            if isinstance(label, dict) and label.get("id"):
                self.insert_label(db, event["project_id"], asset_id, label)
        label = event.get("label")
        if label:
            owner = db.execute("SELECT asset_id FROM labels WHERE id = ?", (label.get("id"),)).fetchone()
            if owner is not None and owner[0] != asset_id:
                raise PlatformConflict(f"label {label.get('id')!r} belongs to another asset than {asset_id!r}")
            self.insert_label(db, event["project_id"], asset_id, label,
                              "REVIEW" if event["type"] == "onReview" else "DEFAULT")
        implied = {"onSubmit": "LABELED", "onReview": "REVIEWED", "onSendBackToQueue": "ONGOING"}.get(event["type"])
        if implied:
            self.set_status(db, asset_id, implied)
        if label or record:
            self.refresh_marks(db, asset_id)

    # Actions -----------------------------------------------------------------------------

    def apply_in(self, db: sqlite3.Connection, run_id: str | None, actions: list[dict[str, Any]],
                 at: str | None = None) -> list[dict[str, Any]]:
        """Apply checked actions (wire form) in order, in the caller's transaction, as of
        ``at``; returns the events the changes emit (without id)."""
        emitted: list[dict[str, Any]] = []
        # Marks are refreshed once per asset, after all the run's actions, within one budget:
        # a run appending 1,000 labels costs one refresh per asset, not one per label.
        stale: dict[str, None] = {}
        for action in actions:
            asset_id = action["asset_id"]
            project_id = db.execute("SELECT project_id FROM assets WHERE id = ?", (asset_id,)).fetchone()[0]
            change = embedded_actions.apply_action(self, db, run_id, action, project_id, at, new_id, now())
            if change.event is not None:
                emitted.append(change.event)
            if change.stale:
                stale[asset_id] = None
        budget = marks.MarkBudget()
        for asset_id in stale:
            self.refresh_marks(db, asset_id, budget)
        # The events carry their label as it reads once the marks are computed.
        return [{**event, "label": self.label(db, event["label"])} if "label" in event else event for event in emitted]

    # Views (Kili's camelCase shapes) -----------------------------------------------------

    def project(self, db: sqlite3.Connection, project_id: str) -> dict:
        row = db.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            raise PlatformNotFound(f"project {project_id!r} does not exist")
        return {"id": row["id"], "title": row["title"], "inputType": row["input_type"],
                "jsonInterface": loads(row["json_interface"], {}), **PROJECT_SETTINGS, **loads(row["settings"], {})}

    def context(self, db: sqlite3.Connection, event: dict[str, Any]) -> dict[str, Any]:
        """The event's ``context``: its project and asset (with labels) as they are now."""
        out: dict[str, Any] = {}
        try:
            out["project"] = self.project(db, event["project_id"])
            if event.get("asset_id") is not None:
                out["asset"] = self.asset(db, event["project_id"], event["asset_id"])
        except PlatformError:
            pass
        return out

    def projects(self, db: sqlite3.Connection) -> list[dict]:
        return [self.project(db, r[0]) for r in db.execute("SELECT id FROM projects ORDER BY created_at, id")]

    def label(self, db: sqlite3.Connection, label_id: str) -> dict:
        row = db.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone()
        return label_record(row)

    def labels_of(self, db: sqlite3.Connection, asset_id: str) -> list[dict]:
        """The asset's labels, oldest first (by ``createdAt``, then arrival), with Kili's
        "latest" flags computed per author."""
        labels = [label_record(r) for r in db.execute(
            "SELECT * FROM labels WHERE asset_id = ? ORDER BY created_at, seq", (asset_id,))]
        latest: dict[tuple[str, Any], int] = {}
        for index, label in enumerate(labels):
            author = label.get("authorId")
            latest[("any", author)] = index
            if label["labelType"] in ("DEFAULT", "REVIEW"):
                latest[(label["labelType"], author)] = index
        for index, label in enumerate(labels):
            author = label.get("authorId")
            label["isLatestLabelForUser"] = latest[("any", author)] == index
            label["isLatestDefaultLabelForUser"] = latest.get(("DEFAULT", author)) == index
            label["isLatestReviewLabelForUser"] = latest.get(("REVIEW", author)) == index
        return labels

    def _asset_row(self, db: sqlite3.Connection, project_id: str, asset_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM assets WHERE id = ? AND project_id = ?", (asset_id, project_id)).fetchone()
        if row is None:
            raise PlatformNotFound(f"asset {asset_id!r} does not exist in project {project_id!r}")
        return row

    def asset(self, db: sqlite3.Connection, project_id: str, asset_id: str, with_issues: bool = True) -> dict:
        row = self._asset_row(db, project_id, asset_id)
        out = {
            "id": row["id"], "externalId": row["external_id"], "content": row["content"], "status": row["status"],
            "jsonMetadata": loads(row["json_metadata"], {}), "priority": row["priority"],
            "toBeLabeledBy": loads(row["to_be_labeled_by"], []),
            "isUsedForConsensus": bool(row["is_used_for_consensus"]), "isHoneypot": bool(row["is_honeypot"]),
            "consensusMark": row["consensus_mark"], "honeypotMark": row["honeypot_mark"],
            "inferenceMark": row["inference_mark"], "labels": self.labels_of(db, asset_id),
        }
        if with_issues:
            out["issues"] = [issue_record(r) for r in
                             db.execute("SELECT * FROM issues WHERE asset_id = ? ORDER BY seq", (asset_id,))]
        return out

    def assets(self, db: sqlite3.Connection, project_id: str) -> list[dict]:
        ids = [r[0] for r in db.execute("SELECT id FROM assets WHERE project_id = ? ORDER BY created_at, id", (project_id,))]
        return [self.asset(db, project_id, asset_id) for asset_id in ids]

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """A plugin's live read, restricted to its project (answers ``call`` messages), as
        indexed queries; stops with TimeoutError past ``deadline`` (``time.perf_counter``)."""
        db = self.store.read()
        if method == "projects":
            try:
                project = self.project(db, project_id)
            except PlatformError:
                # Activated before the project exists here: it is empty so far.
                project = {"id": project_id, "title": None, "inputType": None, "jsonInterface": {"jobs": {}},
                           **PROJECT_SETTINGS}
            return _queries.page([project], query.get("first"), query.get("skip"))
        try:
            return embedded_reads.read(self, db, project_id, method, query, deadline)
        except LookupError as error:
            raise PlatformRefused(str(error)) from None


def _real(value: Any) -> float | None:
    """A number of a validated event (``Label``/``Asset`` models: float-convertible) as SQLite
    stores it: the integer 10**30 is a valid float there, but too large for SQLite's INTEGER."""
    return None if value is None else float(value)


_LAST_MILLISECOND = datetime.max.replace(microsecond=999_000, tzinfo=timezone.utc)


def _parse_time(text: Any) -> datetime | None:
    """A recorded date in UTC; None when it is no date, or one UTC cannot hold (year 1 at +14:00)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


