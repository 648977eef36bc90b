"""Batches on the wire (``Worker.run_many``), against a scripted plugin process over real
pipes: a child that does not say it takes batches (an image built before them) gets one
``event`` message per event, and a batch left in the middle stops its worker, whose unread
results would otherwise answer the next events."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest

from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.channel import Worker


class Child:
    """Answers ``init`` with a hello (``batch`` as given) and every event with an ok result;
    ``received`` lists the message types it read."""

    def __init__(self, batch: bool) -> None:
        self.to_child_r, self.to_child_w = os.pipe()
        self.from_child_r, self.from_child_w = os.pipe()
        self.batch, self.received = batch, list[str]()
        self.killed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _send(self, message: dict) -> None:
        os.write(self.from_child_w, json.dumps(message).encode() + b"\n")

    def _serve(self) -> None:
        with os.fdopen(self.to_child_r, "rb") as lines:
            for line in lines:
                message = json.loads(line)
                self.received.append(message["type"])
                if message["type"] == "init":
                    self._send({"type": "hello", "protocol": 1, "plugin": {"hooks": ["on_submit"],
                                "subscriptions": ["onSubmit"]}, **({"batch": True} if self.batch else {})})
                elif message["type"] in ("event", "events"):
                    for event in message.get("events") or [message.get("event")]:
                        self._send({"type": "result", "event_id": event["id"], "status": "ok", "actions": []})
                else:
                    return

    def worker(self) -> Worker:
        def kill() -> None:
            if not self.killed:
                self.killed = True
                os.close(self.to_child_w)

        worker = Worker(lambda data: os.write(self.to_child_w, data), self.from_child_r, kill, lambda: "exit 0",
                        Limits(timeout_s=5, start_timeout_s=5))
        worker.start("proj")
        return worker

    def close(self) -> None:
        if not self.killed:
            os.close(self.to_child_w)
        self.thread.join(5)
        for fd in (self.from_child_r, self.from_child_w):
            os.close(fd)


@pytest.fixture
def child(request) -> Iterator[Child]:
    made = Child(request.param)
    yield made
    made.close()


EVENTS = [{"id": f"e-{k}", "type": "onSubmit", "project_id": "proj"} for k in range(4)]


@pytest.mark.parametrize(("child", "sent"), [(False, ["init"] + ["event"] * 4), (True, ["init", "events"])],
                         indirect=["child"])
def test_a_child_gets_batches_only_when_its_hello_says_it_takes_them(child: Child, sent: list[str]) -> None:
    worker = child.worker()
    results = list(worker.run_many(EVENTS))
    assert [(r.event_id, r.status) for r in results] == [(e["id"], "ok") for e in EVENTS]
    assert child.received == sent and not worker.dead


@pytest.mark.parametrize("child", [True], indirect=True)
def test_a_batch_left_in_the_middle_stops_its_worker(child: Child) -> None:
    worker = child.worker()
    results = worker.run_many(EVENTS)
    assert next(results).event_id == "e-0"
    results.close()
    assert worker.dead  # the pool starts a fresh one: e-1's result must not answer the next event
