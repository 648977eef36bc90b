"""What Label Studio's webhooks missed: it sends each once, never retries, and sends nothing
while the runtime is down. At start and every ``interval_s`` the runtime asks Label Studio for
the tasks changed since its cursor (newest first, stopping past it), and turns every person's
saved annotation in them into its ``onSubmit`` event; the event ids (annotation id and saved
time) make the ones already received, by webhook or by an earlier look, no-ops.

The cursor (the newest task change seen, in Label Studio's own clock) moves only once every
event found is stored: a pass stopped by a full queue or an unreachable Label Studio is done
again. Annotations saved before the project was connected (``since``) are never events.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from plugin_runtime.errors import Busy, PlatformUnavailable
from plugin_runtime.platforms.label_studio import records
from plugin_runtime.recordings import parse_event
from plugin_runtime.store.codec import now

if TYPE_CHECKING:
    from plugin_runtime.platforms.label_studio.platform import LabelStudioPlatform
    from plugin_runtime.platforms.router import Submit

_log = logging.getLogger(__name__)
#: Tasks changed this long before the cursor are looked at again: a task's change and its
#: annotation's commit apart, and changes in the same microsecond, are never skipped.
OVERLAP = timedelta(seconds=5)


class Reconciler:
    def __init__(self, platform: LabelStudioPlatform, submit: Submit, interval_s: float) -> None:
        self.platform, self._submit, self.interval_s = platform, submit, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"reconcile-{platform.project_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except (Busy, PlatformUnavailable) as error:
                _log.warning("label studio %s: reconciliation postponed: %s", self.platform.project_id, error)
            except Exception:
                _log.exception("label studio %s: reconciliation failed", self.platform.project_id)
            self._stop.wait(self.interval_s)

    def reconcile(self) -> int:
        """One look: store the events of the annotations changed since the cursor; returns
        how many were new."""
        store, project_id = self.platform.store, self.platform.project_id
        stored = store.connections.cursor(store.read(), project_id)
        cursor = records.moment(stored) or records.moment(self.platform.connection.config.get("since"))
        since = records.moment(self.platform.connection.config.get("since"))
        changed: list[dict[str, Any]] = []
        newest: str | None = stored
        for task in self.platform.tasks(ordering="-tasks:updated_at"):
            if self._stop.is_set():
                return 0
            updated = records.moment(task.get("updated_at"))
            if cursor is not None and updated is not None and updated <= cursor - OVERLAP:
                break
            if newest is None or (updated is not None and updated > (records.moment(newest) or updated)):
                newest = task.get("updated_at")
            changed.append(task)
        new = 0
        for task in reversed(changed):  # oldest change first, as they happened
            for event in self._events(task, since):
                new += bool(self._submit(event))
        if newest is not None and newest != stored:
            with store.write() as db:
                store.connections.move_cursor(db, project_id, newest, now())
        if new:
            _log.info("label studio %s: %d annotation(s) the webhooks missed, now queued", project_id, new)
        return new

    def _events(self, task: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
        platform = self.platform
        out = []
        annotations = sorted((a for a in task.get("annotations") or [] if isinstance(a, dict)),
                             key=lambda a: str(a.get("updated_at")))
        for annotation in annotations:
            saved = records.moment(annotation.get("updated_at"))
            if since is not None and saved is not None and saved <= since:
                continue
            event = records.submitted(platform.project_id, platform.remote, annotation, task, None, platform.bot)
            if event is None:
                continue
            try:
                out.append(parse_event(json.dumps(event)))
            except ValueError as error:
                _log.warning("label studio %s: annotation %s skipped: %s", platform.project_id, annotation["id"], error)
        return out
