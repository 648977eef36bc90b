"""A project connected to Label Studio: the platform port (``facts``, ``apply``, ``read``),
its webhooks (``webhooks``) and its reconciliation (``reconcile``).

What each action does there (Community edition, no review stage, no comments API):

- ``update_asset(json_metadata)``: the task's ``meta`` becomes it, the runtime's ``issues``
  list kept; priorities, assignment, honeypot and consensus flags are refused by name.
- ``create_issue``: an entry ``{id, text, label_id, object_mid, plugin, created_at}`` in the
  list under ``issues`` of the task's ``meta``.
- ``send_back_to_queue``: the task's annotations saved up to the event (people's and the
  runtime's) become cancelled (skipped) annotations, so the task is no longer labeled and
  Label Studio serves it again as its project's skip queue says; nothing is deleted, each
  still reads in the task's history with its result.
- ``append_label``: PREDICTION or INFERENCE -> a prediction (``model_version``: the model name,
  else the plugin's name); DEFAULT or REVIEW -> an annotation by the runtime's user (REVIEW as
  the task's ground truth).
- ``add_to_review``: refused (Community has no review stage).

Label Studio has no transactions: each action's key is recorded in the runtime's store once it
is applied (a redelivered one is skipped), and each application is idempotent by itself for
the moment between the two (a ``meta`` replaced again, an issue or a label found by the id the
key gives it, an annotation already cancelled). The runtime's own changes trigger no run:
an annotation by its user is never an event (``records.submitted``), whether a webhook
carries it or a look at the project (``reconcile``) finds it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plugin_runtime.applier.policy import Facts
from plugin_runtime.errors import PlatformNotFound, PlatformRefused
from plugin_runtime.platforms.base import Keyed
from plugin_runtime.platforms.label_studio import interface, labels, records, webhooks
from plugin_runtime.platforms.label_studio.client import LabelStudioClient
from plugin_runtime.store.codec import now
from plugin_runtime.store.connections import Connection
from plugin_sdk import _queries

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.platforms.label_studio.reconcile import Reconciler
    from plugin_runtime.platforms.router import Submit
    from plugin_runtime.store import Store

_log = logging.getLogger(__name__)
#: Tasks fetched per page when a read or a reconciliation pages through a project.
PAGE_SIZE = 100
#: Task and annotation places kept in memory, at most (each a few dozen bytes).
_REMEMBERED = 100_000
_LIMITS = {
    "priority": "Label Studio has no task priorities",
    "to_be_labeled_by": "Label Studio Community has no task assignment",
    "is_honeypot": "Label Studio Community has no honeypots (ground truth is set on an annotation)",
    "is_used_for_consensus": "Label Studio Community has no consensus flag on tasks",
}


class LabelStudioPlatform:
    #: Its changes cannot commit with the runtime's: they go through the outbox.
    shares_store = False

    def __init__(self, connection: Connection, store: Store, settings: Settings,
                 client: LabelStudioClient | None = None) -> None:
        self.connection, self.store, self.settings = connection, store, settings
        self.project_id = connection.project_id
        self.remote = int(connection.config["project"])
        self.bot = int(connection.config["bot_user_id"])
        self.client = client or LabelStudioClient(connection.config["url"], connection.credentials["token"])
        self._config: tuple[str, interface.Config] | None = None
        # Where tasks and annotations are never changes in Label Studio (a task stays in its
        # project, an annotation on its task): known once, from a webhook or a first lookup.
        self._task_projects: dict[str, int] = {}
        self._label_tasks: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._reconciler: Reconciler | None = None

    # The port ------------------------------------------------------------------------------

    def facts(self, asset_ids: Collection[str], label_ids: Collection[str]) -> Facts:
        assets = {a: self.project_id for a in asset_ids if self._task_project(a) == self.remote}
        found: dict[str, str] = {}
        for label_id in label_ids:
            where = self._label_tasks.get(label_id)
            if where is None:
                record = self._label_record(label_id)
                if record is not None:
                    where = self._remember_label(label_id, record.get("task"), record.get("project"))
            if where is not None and where[1] == self.remote:
                found[label_id] = str(where[0])
        return Facts(assets, found, self._cannot)

    def _task_project(self, asset_id: str) -> int | None:
        if asset_id not in self._task_projects and asset_id.isdigit():
            try:
                task = self.client.get(f"/api/tasks/{int(asset_id)}/")
            except PlatformNotFound:
                return None
            self._remember_task(asset_id, task.get("project"))
        return self._task_projects.get(asset_id)

    def _remember_task(self, asset_id: str, project: Any) -> None:
        if isinstance(project, int) and len(self._task_projects) < _REMEMBERED:
            self._task_projects[asset_id] = project

    def _remember_label(self, label_id: str, task: Any, project: Any) -> tuple[int, int] | None:
        if not isinstance(task, int) or not isinstance(project, int):
            return None
        if len(self._label_tasks) < _REMEMBERED:
            self._label_tasks[label_id] = (task, project)
        return task, project

    def _cannot(self, action: Mapping[str, Any]) -> str | None:
        """What this edition of Label Studio cannot do, naming the limit."""
        kind = action["type"]
        if kind in ("add_metadata", "set_metadata", "update_issue_status", "create_question"):
            # Actions newer than this platform: refused by name, never marked applied unseen.
            return f"{kind}: the Label Studio platform does not apply it (update_asset replaces the task's meta)"
        if kind == "add_to_review":
            return "add_to_review: Label Studio Community has no review stage"
        if kind == "send_back_to_queue" and \
                self.client.get(f"/api/projects/{self.remote}/").get("skip_queue") == "IGNORE_SKIPPED":
            return ("send_back_to_queue: the Label Studio project's skip queue is 'Ignore skipped', which counts a "
                    "skipped (cancelled) annotation as done: set it to 'Requeue for others' or 'Requeue for me'")
        if kind == "update_asset":
            for field, limit in _LIMITS.items():
                if action.get(field) is not None:
                    return f"update_asset({field}=...): {limit}"
        if kind == "append_label":
            if action["label_type"] not in ("DEFAULT", "REVIEW", "PREDICTION", "INFERENCE"):
                return f"append_label(label_type={action['label_type']!r}): Label Studio keeps no such label"
            missing = labels.unmapped(action["json_response"], self.config())
            if missing:
                return (f"append_label: the Label Studio project has no control named {', '.join(map(repr, missing))} "
                        f"(its controls: {', '.join(self.config().controls) or 'none'})")
        return None

    def apply(self, actions: Sequence[Keyed], at: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Apply actions in order, each once by its key (recorded in the runtime's store as it
        is applied); returns no event: Label Studio's changes by the runtime trigger nothing."""
        from plugin_sdk.actions import dump_actions

        done = self.store.connections.applied(self.store.read(), [key for key, _ in actions])
        plugin = self._plugin(run_id)
        for (key, _), action in zip(actions, dump_actions([a for _, a in actions])):
            if key in done:
                continue
            self._apply(key, action, at, plugin)
            with self.store.write() as db:
                self.store.connections.mark_applied(db, key, now())
        return []

    def _apply(self, key: str, action: dict[str, Any], at: str | None, plugin: str) -> None:
        kind, task_id = action["type"], int(action["asset_id"])
        if kind == "update_asset" and action.get("json_metadata") is not None:
            task = self.client.get(f"/api/tasks/{task_id}/")
            kept = (task.get("meta") or {}).get(records.ISSUES)
            meta = {**action["json_metadata"], **({records.ISSUES: kept} if kept else {})}
            self.client.patch(f"/api/tasks/{task_id}/", {"meta": meta})
        elif kind == "create_issue":
            task = self.client.get(f"/api/tasks/{task_id}/")
            meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
            kept = [i for i in meta.get(records.ISSUES) or [] if isinstance(i, dict)]
            issue_id = f"issue-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
            if not any(i.get("id") == issue_id for i in kept):
                kept.append({"id": issue_id, "text": action.get("text"), "label_id": action["label_id"],
                             "object_mid": action.get("object_mid"), "plugin": plugin, "created_at": now()})
                self.client.patch(f"/api/tasks/{task_id}/", {"meta": {**meta, records.ISSUES: kept}})
        elif kind == "send_back_to_queue":
            self._send_back(task_id, at)
        elif kind == "append_label":
            self._append(key, task_id, action, plugin)

    def _send_back(self, task_id: int, at: str | None) -> None:
        """Cancel the task's annotations saved up to the event (not any saved after it)."""
        until = records.moment(at)
        for annotation in self._annotations(task_id):
            saved = records.moment(annotation.get("updated_at"))
            if annotation.get("was_cancelled") or (until is not None and saved is not None and saved > until):
                continue
            self.client.patch(f"/api/annotations/{annotation['id']}/", {"was_cancelled": True})

    def _append(self, key: str, task_id: int, action: dict[str, Any], plugin: str) -> None:
        results = labels.results(action["json_response"], self.config(), seed=key)
        marker = {r["id"] for r in results}
        if action["label_type"] in ("PREDICTION", "INFERENCE"):
            existing = self.client.get("/api/predictions/", task=task_id)
            if marker and any(marker & {r.get("id") for r in p.get("result") or []} for p in existing):
                return
            self.client.post("/api/predictions/", {"task": task_id, "result": results,
                                                   "model_version": action.get("model_name") or plugin})
            return
        if marker and any(marker & {r.get("id") for r in a.get("result") or []} for a in self._annotations(task_id)):
            return
        body: dict[str, Any] = {"result": results, "ground_truth": action["label_type"] == "REVIEW"}
        if action.get("seconds_to_label") is not None:
            body["lead_time"] = action["seconds_to_label"]
        self.client.post(f"/api/tasks/{task_id}/annotations/", body)

    # Reads ---------------------------------------------------------------------------------

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """A plugin's live read of its project, answered from Label Studio (a read of a whole
        project pages through its tasks)."""
        if method.startswith("count_"):
            unpaged = {k: v for k, v in query.items() if k not in ("first", "skip")}
            return len(self.read(project_id, method[len("count_"):], unpaged, deadline))
        if method == "projects":
            records_ = [records.project(self.project_id, self.client.get(f"/api/projects/{self.remote}/",
                                                                           deadline=deadline))]
        elif method in ("assets", "labels", "issues"):
            assets = [records.asset(task, self.bot) for task in self._tasks_for(query, deadline)]
            if method == "assets":
                records_ = _queries.filter_assets(assets, query)
            elif method == "labels":
                records_ = _queries.filter_labels([label for a in assets for label in a["labels"]], query)
            else:
                records_ = _queries.filter_issues([issue for a in assets for issue in a["issues"]], query)
        else:
            raise PlatformRefused(f"kili.{method} is not answered for a Label Studio project")
        return _queries.page(records_, query.get("first"), query.get("skip"))

    def _tasks_for(self, query: dict[str, Any], deadline: float | None) -> list[dict[str, Any]]:
        """The tasks a read needs: the one or few it names, else the whole project."""
        named = [query["asset_id"]] if query.get("asset_id") is not None else query.get("asset_id_in")
        if named is not None:
            return [task for task_id in named if (task := self._task(str(task_id), deadline)) is not None]
        return list(self.tasks(deadline=deadline))

    def tasks(self, ordering: str | None = None, deadline: float | None = None,
              page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """The project's tasks, with their annotations (cancelled ones too) and predictions,
        page by page (``ordering``: a Data Manager ordering such as ``-tasks:updated_at``)."""
        import json

        page = 1
        while True:
            params: dict[str, Any] = {"project": self.remote, "fields": "all", "page": page, "page_size": page_size}
            if ordering:
                params["query"] = json.dumps({"ordering": [ordering]})
            try:
                answer = self.client.get("/api/tasks/", deadline=deadline, **params)
            except PlatformNotFound:  # past the last page
                return
            found = answer.get("tasks") or [] if isinstance(answer, dict) else []
            yield from found
            if len(found) < page_size:
                return
            page += 1

    # Records -------------------------------------------------------------------------------

    def config(self) -> interface.Config:
        """The project's controls, from its labeling config (read again when it changed)."""
        remote = self.client.get(f"/api/projects/{self.remote}/")
        xml = str(remote.get("label_config") or "<View/>")
        with self._lock:
            if self._config is None or self._config[0] != xml:
                self._config = (xml, interface.parse(xml))
            return self._config[1]

    def _task(self, asset_id: str, deadline: float | None = None) -> dict[str, Any] | None:
        """The task ``asset_id`` names, None when it is not one of the project's."""
        if not asset_id.isdigit():
            return None
        try:
            task = self.client.get(f"/api/tasks/{int(asset_id)}/", deadline=deadline)
        except PlatformNotFound:
            return None
        return task if task.get("project") == self.remote else None

    def _annotations(self, task_id: int) -> list[dict[str, Any]]:
        """A task's annotations, cancelled ones included."""
        task = self.client.get(f"/api/tasks/{task_id}/")
        return [a for a in task.get("annotations") or [] if isinstance(a, dict)]

    def _label_record(self, label_id: str) -> dict[str, Any] | None:
        path = (f"/api/predictions/{label_id[len(records.PREDICTION_PREFIX):]}/"
                if label_id.startswith(records.PREDICTION_PREFIX) else f"/api/annotations/{label_id}/")
        if not path.split("/")[-2].isdigit():
            return None
        try:
            found: dict[str, Any] = self.client.get(path)
        except PlatformNotFound:
            return None
        return found

    def _plugin(self, run_id: str | None) -> str:
        run = self.store.runs.get(self.store.read(), run_id) if run_id else None
        return str(run["plugin"]) if run is not None else "plugin-runtime"

    # Webhooks and reconciliation -----------------------------------------------------------

    def receive(self, headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
        events, poke = webhooks.receive(self.connection, headers, body)
        if poke:
            self.poke()
        for event in events:
            self.remember(event)
        return events

    def remember(self, event: dict[str, Any]) -> None:
        """Where an event's task and annotation are: its run's actions name them, and need no
        lookup in Label Studio then."""
        self._remember_task(event["asset_id"], self.remote)
        self._remember_label(event["label"]["id"], int(event["asset_id"]), self.remote)

    def poke(self) -> None:
        """Look at Label Studio now for the annotation a payload-less webhook announced, in
        the reconciler's thread (the webhook's answer, inside the save, does not wait)."""
        if self._reconciler is not None:
            self._reconciler.poke()
        else:  # not watching: only a runtime that serves its intake looks at Label Studio
            _log.warning("label studio %s: a webhook came before the runtime looks at Label Studio; its annotation "
                         "is found when it starts looking", self.project_id)

    def watch(self, submit: Submit) -> None:
        from plugin_runtime.platforms.label_studio.reconcile import Reconciler

        self._reconciler = Reconciler(self, submit, self.settings.reconcile_interval_s)
        self._reconciler.start()

    def close(self) -> None:
        if self._reconciler is not None:
            self._reconciler.close()
        self.client.close()
