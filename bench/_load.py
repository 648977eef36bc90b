"""The webhook load of the end-to-end benchmarks (e2e.py, shadow.py): signed events posted by a
few concurrent senders, as fast as they can or paced, and what one phase of them measured.

The senders keep one connection each and use ``http.client``, not ``requests``: on two cores
the load generator shares the CPU with the server, and ``requests`` spent ~0.7 ms of it per
event, as much as the server's own work.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from plugin_runtime.webhooks import headers

TRIVIAL = '''
from plugin_sdk import PluginCore

class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        if not label["jsonResponse"].get("OK"):
            self.kili.add_to_review(asset_ids=[asset_id])
'''
SECRET = "bench-secret"


def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def event(i: int) -> bytes:
    return json.dumps({
        "id": f"bench-{i}", "type": "onSubmit", "project_id": "proj-bench", "asset_id": f"asset-{i % 200}",
        "label": {"id": f"label-{i}", "labelType": "DEFAULT", "jsonResponse": {"OK": i % 2 == 0}},
    }).encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sender:
    """One keep-alive connection posting signed events."""

    def __init__(self, host: str, port_: int) -> None:
        self.connection = http.client.HTTPConnection(host, port_, timeout=60)

    def send(self, i: int, sent_at: dict[str, float]) -> None:
        body = event(i)
        signed = {**headers(SECRET, f"bench-{i}", body), "Content-Type": "application/json"}
        sent_at[f"bench-{i}"] = time.time()
        self.connection.request("POST", "/v1/events", body, signed)
        response = self.connection.getresponse()
        answer = response.read()
        assert response.status == 202, (response.status, answer)


@dataclass
class Phase:
    intake: float  # acknowledged events/s
    applied: float  # applied events/s
    latencies: list[float]  # sorted, ms
    server_cpu_ms: float  # per event
    client_cpu_ms: float  # per event


def phase(port_: int, server_pid: int, events: int, senders: int, offset: int, rate: float | None,
          idle: Callable[[], None], runs: Callable[[], list[dict[str, Any]]]) -> Phase:
    """Send ``events`` events (bench-OFFSET...) from ``senders`` connections, paced at ``rate``
    events/s when given; ``idle`` returns once their runs are done, ``runs`` lists recent runs."""
    sent_at: dict[str, float] = {}
    connections = [Sender("127.0.0.1", port_) for _ in range(senders)]
    gap = senders / rate if rate else 0.0
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    started = time.time()

    def send_all(sender: Sender, indexes: range) -> None:
        for k, i in enumerate(indexes):
            if gap:
                time.sleep(max(0.0, started + k * gap - time.time()))
            sender.send(offset + i, sent_at)

    threads = [threading.Thread(target=send_all, args=(sender, range(k, events, senders)))
               for k, sender in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_s = time.time() - started
    client_cpu = time.process_time() - client_cpu
    idle()
    server_cpu = cpu_seconds(server_pid) - server_cpu
    ran = [r for r in runs() if r["event_id"] in sent_at]
    assert len(ran) == events and all(r["status"] == "succeeded" for r in ran), len(ran)
    finished = {r["event_id"]: datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")).timestamp() for r in ran}
    latencies = sorted((finished[e] - sent_at[e]) * 1000 for e in finished)
    return Phase(events / sent_s, events / (max(finished.values()) - started), latencies,
                 1000 * server_cpu / events, 1000 * client_cpu / events)
