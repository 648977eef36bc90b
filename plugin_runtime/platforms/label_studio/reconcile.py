"""What Label Studio's webhooks missed: it sends each once, never retries, and sends nothing
while the runtime is down. At start and every ``interval_s`` the runtime asks Label Studio for
the tasks changed since its cursor (newest first, stopping past it), and turns every person's
saved annotation in them into its ``onSubmit`` event; the event ids (annotation id and saved
time) make the ones already received, by webhook or by an earlier look, no-ops.

The cursor (the newest task change seen, in Label Studio's own clock) moves only once every
event found is stored: a pass stopped by a full queue or an unreachable Label Studio is done
again. Annotations saved before the project was connected (``since``) are never events.

A payload-less webhook (the one ``connect`` makes) pokes the reconciler: a pass starts at
once, or right after the one under way (pokes meanwhile make one more pass, not one each),
every pass paging by ``POKE_PAGE_SIZE``: the tasks changed within ``OVERLAP`` are few then,
and Label Studio serializes every task of a page (each page is in the annotator's wait for the
plugin).
A poked pass looks back as far as a periodic one: concurrent saves stamp their tasks before
they commit, and Label Studio's SQLite makes them wait for its lock (a look back of 1 s missed
some, found by the test of concurrent saves). Only periodic passes move the cursor: a poked
pass submits what it finds and leaves the cursor where it was, so what it may miss in a burst
of concurrent saves (a run of saves was seen missed by poked passes that moved the cursor)
is looked at again by every later pass until a periodic one has seen it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
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
#: Tasks per page in a pass: Label Studio serializes every task of a page with its annotations,
#: and a pass needs the few changed within seconds (a page of 100, every 5 s, made the pokes
#: wait behind it: save -> event ~1.8 s instead of ~0.1-0.2 s on a loaded machine).
POKE_PAGE_SIZE = 25
#: Event ids submitted, remembered so tasks looked at again within ``OVERLAP`` cost the
#: store nothing (each id a few dozen bytes).
_REMEMBERED = 10_000


class Reconciler:
    def __init__(self, platform: LabelStudioPlatform, submit: Submit, interval_s: float) -> None:
        self.platform, self._submit, self.interval_s = platform, submit, interval_s
        self._stop, self._wake = threading.Event(), threading.Event()
        self._submitted: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._thread = threading.Thread(target=self._loop, name=f"reconcile-{platform.project_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Look now (a webhook announced a saved annotation without carrying it)."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        due = time.monotonic()  # the next periodic pass: at once, then every interval_s, pokes or not
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a poke during it makes one more
            periodic = time.monotonic() >= due
            if periodic:
                due = time.monotonic() + self.interval_s
            try:
                self.reconcile(poked=not periodic)
            except (Busy, PlatformUnavailable) as error:
                _log.warning("label studio %s: reconciliation postponed: %s", self.platform.project_id, error)
            except Exception:
                _log.exception("label studio %s: reconciliation failed", self.platform.project_id)
            self._wake.wait(max(0.0, due - time.monotonic()))

    def reconcile(self, poked: bool = False) -> int:
        """One look: store the events of the annotations changed since the cursor; returns
        how many were new (``poked``: a webhook announced a save just now)."""
        store, project_id = self.platform.store, self.platform.project_id
        stored = store.connections.cursor(store.read(), project_id)
        cursor = records.moment(stored) or records.moment(self.platform.connection.config.get("since"))
        since = records.moment(self.platform.connection.config.get("since"))
        changed: list[dict[str, Any]] = []
        newest: str | None = stored
        pages = self.platform.tasks(ordering="-tasks:updated_at", page_size=POKE_PAGE_SIZE)
        for task in pages:
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
                if event["id"] in self._submitted:
                    continue
                self.platform.remember(event)
                new += bool(self._submit(event))
                self._remember(event["id"])
        if newest is not None and newest != stored and not poked:
            with store.write() as db:
                store.connections.move_cursor(db, project_id, newest, now())
        if new and not poked:
            _log.info("label studio %s: %d annotation(s) the webhooks missed, now queued", project_id, new)
        return new

    def _remember(self, event_id: str) -> None:
        self._submitted[event_id] = None
        if len(self._submitted) > _REMEMBERED:
            del self._submitted[next(iter(self._submitted))]

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
