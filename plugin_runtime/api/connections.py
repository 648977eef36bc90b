"""Projects connected to a labeling platform of their own (Label Studio, later Kili):
``connect``, list, remove, and each connection's webhook intake.

The platform's credentials come in the connect request and stay in the runtime's store (its
data directory, owner-only): no answer, log line or error message carries them. The intake
(``POST /v1/connections/{project_id}/webhook``) needs no admin token: the connection's secret
header proves the sender; it stores the events and answers at once (Label Studio waits for it
inside the annotator's save).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request

from plugin_runtime import metrics
from plugin_runtime.api.deps import RuntimeDep, admin, read_body
from plugin_runtime.api.models import Connect, ConnectionInfo, ConnectionRemoved, WebhookReceived, refusals
from plugin_runtime.errors import ConnectionNotFound, Conflict, PluginRuntimeError, Unauthorized
from plugin_runtime.platforms import router as platforms
from plugin_runtime.store.codec import now

router = APIRouter(tags=["connections"])
_log = logging.getLogger(__name__)


def _info(connection: Any) -> dict[str, Any]:
    public = connection.public()
    return {**public, "webhook_id": public["config"].get("webhook_id"),
            "token_kind": public["config"].get("token_kind")}


@router.post("/v1/connections", status_code=201, response_model=ConnectionInfo, dependencies=[Depends(admin)],
             summary="Connect a project to its platform (idempotent: run again, it updates)",
             responses=refusals(400, 401, 409, 422))
def connect(body: Connect, runtime: RuntimeDep) -> dict[str, Any]:
    kind = platforms.kind(body.kind)
    store = runtime.store
    project_id = body.project_id
    existing = store.connections.all(store.read())
    previous = next((c for c in existing if c.project_id == project_id), None) if project_id else None
    connection = kind.connect(project_id, body.params, body.runtime_url or runtime.settings.client_url, previous)
    previous = previous or next((c for c in existing if c.project_id == connection.project_id), None)
    same_remote = [c for c in existing if c.kind == connection.kind and c.project_id != connection.project_id
                   and c.config.get("url") == connection.config.get("url")
                   and c.config.get("project") == connection.config.get("project")]
    try:
        if previous is not None and previous.kind != connection.kind:
            raise Conflict(f"project {connection.project_id!r} is connected to {previous.kind}: "
                           f"`plugin-runtime connections remove {connection.project_id}` first")
        if same_remote:
            raise Conflict(f"that project is already connected as {same_remote[0].project_id!r}: "
                           f"`plugin-runtime connections remove {same_remote[0].project_id}` first, or connect "
                           f"with --as {same_remote[0].project_id}")
        with store.write() as db:
            store.connections.put(db, connection)
    except BaseException:
        # Nothing half-connected: the webhook this connect made or changed goes too.
        if previous is None or previous.config.get("webhook_id") != connection.config.get("webhook_id"):
            _quietly_disconnect(kind, connection)
        raise
    if previous is not None and previous.config.get("webhook_id") != connection.config.get("webhook_id"):
        _quietly_disconnect(kind, previous)  # connected to another remote project than before
    runtime.platforms.refresh()
    _log.info("project %s connected to %s (%s)", connection.project_id, connection.kind,
              connection.config.get("url"))
    return _info(connection)


def _quietly_disconnect(kind: platforms.Kind, connection: Any) -> None:
    try:
        kind.disconnect(connection)
    except PluginRuntimeError as error:
        _log.warning("connection %s: its webhook could not be removed: %s", connection.project_id, error)


@router.get("/v1/connections", response_model=list[ConnectionInfo], dependencies=[Depends(admin)],
            responses=refusals(401))
def connections(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [_info(c) for c in runtime.store.connections.all(runtime.store.read())]


@router.delete("/v1/connections/{project_id}", response_model=ConnectionRemoved, dependencies=[Depends(admin)],
               summary="Disconnect a project (its webhook on the platform is removed too)",
               responses=refusals(401, 404, 422))
def remove(project_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    store = runtime.store
    connection = store.connections.get(store.read(), project_id)
    if connection is None:
        raise ConnectionNotFound(f"no project is connected as {project_id!r} (`plugin-runtime connections list`)")
    detail = None
    try:
        platforms.kind(connection.kind).disconnect(connection)
        webhook_removed = True
    except PluginRuntimeError as error:
        webhook_removed = False
        detail = (f"the webhook on {connection.kind} could not be removed ({error}); its calls are now refused "
                  f"(no connection): delete webhook {connection.config.get('webhook_id')} there by hand")
    with store.write() as db:
        store.connections.remove(db, project_id)
    runtime.platforms.refresh()
    _log.info("project %s disconnected from %s at %s", project_id, connection.kind, now())
    return {"project_id": project_id, "removed": True, "webhook_removed": webhook_removed, "detail": detail}


@router.post("/v1/connections/{project_id}/webhook", response_model=WebhookReceived,
             summary="A connected platform's webhook (its secret header, no admin token)",
             responses=refusals(400, 401, 404, 413, 422, 429))
async def webhook(project_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    platform = runtime.platforms.connected(project_id)
    if not isinstance(platform, platforms.Receiver):
        raise ConnectionNotFound(f"no project is connected as {project_id!r}")
    body = await read_body(request, runtime.settings.max_body_bytes)
    try:
        events = platform.receive(dict(request.headers), body)
        stored = sum(runtime.submit_checked(event, "webhook") for event in events)
    except PluginRuntimeError as refusal:
        # Never the body nor the headers: they carry the secret and the annotation.
        _log.warning("connection %s: webhook refused: %s", project_id, str(refusal)[:300])
        from plugin_runtime.api.app import status_of  # the app imports this module

        metrics.webhook_refused(status_of(refusal), signature=isinstance(refusal, Unauthorized))
        raise
    return {"events": len(events), "stored": stored}
