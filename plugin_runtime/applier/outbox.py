"""The outbox drained to a platform that does not share the runtime's store (a remote one).

Rows are sent oldest first, each run's in order, each action with its idempotency key: when
the platform fails (down, slow, a timeout) the pass stops there and the same rows are sent
again after a backoff, so nothing overtakes and nothing is applied twice. A platform refusing
an action (a ``NotFound``, ``Conflict`` or ``Refused`` saying so) marks it failed with the reason; one still
failing after ``max_attempts`` is marked failed too, its reason kept.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from plugin_runtime.applier.applier import Applier
from plugin_runtime.errors import Conflict, NotFound, Refused
from plugin_runtime.metrics import actions as settled_actions
from plugin_runtime.statuses import ActionStatus, OutboxStatus
from plugin_runtime.store.codec import later, seconds_until
from plugin_sdk.actions import ACTIONS

_log = logging.getLogger(__name__)


class Drainer:
    def __init__(self, applier: Applier, max_attempts: int = 8, retry_base_s: float = 0.5,
                 notify: Any = None) -> None:
        self.applier, self.store, self.platforms = applier, applier.store, applier.platforms
        self.max_attempts, self.retry_base_s = max_attempts, retry_base_s
        self._notify = notify or (lambda lanes: None)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        applier.on_outbox.append(self._wake.set)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping:
            try:
                wait = self.drain()
            except Exception:  # the store itself failed: look again a little later
                _log.exception("the outbox could not be drained")
                wait = self.retry_base_s
            self._wake.wait(wait)
            self._wake.clear()

    def drain(self) -> float | None:
        """Send the pending rows in order, run by run, until none is left (None) or the next
        one must wait (the seconds until its next attempt): nothing overtakes a failed row."""
        while not self._stopping:
            rows = self.store.outbox.pending(self.store.read())
            if not rows:
                return None
            for run_id, group in itertools.groupby(rows, key=lambda row: row["run_id"]):
                batch = list(group)
                wait = seconds_until(batch[0]["next_attempt_at"])
                if wait > 0:
                    return wait
                if not self._send(run_id, batch):
                    return max(0.0, seconds_until(self.store.outbox.pending(self.store.read(), 1)[0]["next_attempt_at"]))
        return None

    def _send(self, run_id: str, rows: list[dict[str, Any]]) -> bool:
        """Deliver one run's due rows; False when the platform failed (try again later)."""
        keyed = [(row["seq"], (row["key"], action)) for row, action in
                 zip(rows, ACTIONS.validate_python([row["action"] for row in rows]))]
        run = self.store.runs.get(self.store.read(), run_id)
        try:
            # Outside any transaction of the store: the platform may be slow.
            platform = self.platforms.of(run["project_id"])
            emitted = platform.apply([pair for _, pair in keyed], at=rows[0]["at"], run_id=run_id)
        # The platform refused them: they will not apply. (Its being unavailable, even as a
        # PluginRuntimeError such as PlatformUnavailable, is retried below.)
        except (NotFound, Conflict, Refused) as refusal:
            self._fail(run_id, rows, f"the platform refused it: {refusal}")
            return True
        except Exception as error:
            attempts = rows[0]["attempts"] + 1
            reason = f"the platform failed ({type(error).__name__}: {error})"
            if attempts >= self.max_attempts:
                self._fail(run_id, rows, f"{reason}, {attempts} times")
                return True
            delay = min(60.0, self.retry_base_s * 2 ** attempts)
            _log.warning("outbox: run %s's actions not applied (attempt %d of %d), again in %.1f s: %s", run_id,
                         attempts, self.max_attempts, delay, reason)
            with self.store.write() as db:
                self.store.outbox.failed_attempt(db, [row["key"] for row in rows], reason, later(delay))
            return False
        with self.store.write() as db:
            lanes = self.applier.delivered(db, run, keyed, emitted)
        self._notify(lanes)
        return True

    def _fail(self, run_id: str, rows: list[dict[str, Any]], reason: str) -> None:
        _log.error("outbox: run %s's actions failed for good: %s", run_id, reason)
        with self.store.write() as db:
            self.store.outbox.settle(db, [row["key"] for row in rows], OutboxStatus.FAILED, reason)
            settled_actions([row["action"]["type"] for row in rows], "failed")
            self.store.run_records.add_actions(
                db, run_id, [(row["seq"], row["action"], ActionStatus.REJECTED, reason) for row in rows])
