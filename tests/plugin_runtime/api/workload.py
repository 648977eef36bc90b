"""What the API tests run: a plugin whose runs apply each kind of action, events with a
recorded context, a submitted label, a failed run retried; and helpers to read answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from plugin_runtime.store.connections import Connection
from tests.plugin_runtime.service_fixtures import Service

BOT = '''
from plugin_sdk import PluginCore


class PluginHandler(PluginCore):
    def on_submit(self, label, asset_id):
        self.logger.info("checked %s", asset_id)
        if label["jsonResponse"].get("FAIL"):
            raise RuntimeError("asked to fail")
        self.kili.create_issues(project_id=self.project_id, label_id_array=[label["id"]], text_array=["look again"])
        self.kili.update_properties_in_assets(asset_ids=[asset_id], json_metadatas=[{"checked": True}])
        self.kili.append_labels(asset_id_array=[asset_id], json_response_array=[{"A": {"text": "model"}}],
                                label_type="PREDICTION", model_name="model-1")
'''
PROJECT = "proj-api"


def submitted(event_id: str, asset_id: str, label_id: str, response: dict[str, Any]) -> dict[str, Any]:
    """An onSubmit event whose context carries the asset with a recorded label (with fields
    the platform does not know, kept as they were)."""
    recorded = {"id": f"{label_id}-old", "labelType": "DEFAULT", "jsonResponse": {}, "authorId": "user-1",
                "createdAt": "2026-01-01T00:00:00Z", "isLatestLabelForUser": True, "numberOfAnnotations": 0}
    return {"id": event_id, "type": "onSubmit", "project_id": PROJECT, "asset_id": asset_id,
            "occurred_at": "2026-01-02T00:00:00Z",
            "label": {"id": label_id, "labelType": "DEFAULT", "authorId": "user-2", "secondsToLabel": 12,
                      "jsonResponse": response},
            "context": {"project": {"id": PROJECT, "title": "API", "jsonInterface": {"jobs": {}}},
                        "asset": {"id": asset_id, "externalId": f"{asset_id}.pdf", "jsonMetadata": {"k": 1},
                                  "labels": [recorded]}}}


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def fill(service: Service) -> None:
    """Deploy ``BOT`` on ``PROJECT``, send it three events (the second fails), submit a review
    label, retry the failed run; returns once every run has ended."""
    service.deploy("api-bot", BOT, project=PROJECT)
    for number, response in ((1, {"A": {"text": "x"}}), (2, {"FAIL": True}), (3, {"A": {"text": "y"}})):
        event = submitted(f"evt-api-{number}", f"asset-api-{number}", f"label-api-{number}", response)
        answer = service.post_event(event)
        assert answer.status_code == 202, answer.text
    service.settle()
    url, admin = service.url, service.admin
    label = admin.post(f"{url}/v1/projects/{PROJECT}/assets/asset-api-3/labels",
                       json={"json_response": {"A": {"text": "z"}}, "label_type": "REVIEW"}, timeout=30)
    assert label.status_code == 201, label.text
    failed = admin.get(f"{url}/v1/runs", params={"status": "failed"}, timeout=30).json()
    assert len(failed) == 1
    assert admin.post(f"{url}/v1/runs/{failed[0]['id']}/retry", timeout=30).status_code == 200
    service.settle()
    # A connected project, as `connect` stores one (its platform is never called by these tests).
    store = service.runtime.store
    with store.write() as db:
        store.connections.put(db, Connection(
            "label-studio-7", "label-studio", {"url": "http://127.0.0.1:9", "project": 7, "webhook_id": 3,
                                               "bot_user_id": 2, "token_kind": "legacy"},
            "webhook-secret", {"token": "never-shown"}, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"))


def read_json(service: Service, path: str, **params: Any) -> Any:
    response = service.admin.get(service.url + path, params=params, timeout=30)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def same_json(value: Any) -> Any:
    """``value`` as its JSON text reads back (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def serve(app: FastAPI) -> tuple[str, uvicorn.Server]:
    """``app`` served on a free port of 127.0.0.1 in a thread, without its lifespan (nothing
    of the runtime is started); stop it with ``server.should_exit = True``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server
