"""Events: the signed webhook intake (``POST /v1/events``) and the export for dry-runs.

An event is stored before it is answered; a refused one (signature, size, shape, full queue)
stores nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from plugin_runtime import metrics
from plugin_runtime.api.deps import RuntimeDep, Service, ViewsDep, _bearer, admin, read_body
from plugin_runtime.api.models import EventAccepted, EventDuplicate, EventRuns, refusals
from plugin_runtime.errors import NotFound, PluginRuntimeError, SignatureError
from plugin_runtime.recordings import parse_event
from plugin_runtime.webhooks import verify

router = APIRouter(tags=["events"])
_log = logging.getLogger(__name__)


class JSONLines(PlainTextResponse):
    media_type = "application/x-ndjson"


#: The body and headers of a signed webhook, which the route reads itself (to check the
#: signature over the exact bytes before parsing anything).
_SIGNED: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["id", "type", "project_id"],
        "description": "One recorded event (README: wire formats)"}}}},
    "parameters": [{"in": "header", "name": n, "required": True, "schema": {"type": "string"}}
                   for n in ("webhook-id", "webhook-timestamp", "webhook-signature")],
}


@router.post("/v1/events", status_code=202, response_model=EventAccepted,
             summary="Receive one recorded event, signed (Standard Webhooks)", openapi_extra=_SIGNED,
             responses={200: {"model": EventDuplicate,
                              "description": "already stored: {\"duplicate\": true}, not processed again"},
                        **refusals(401, 409, 413, 422, 429)})
async def receive(request: Request, runtime: RuntimeDep) -> JSONResponse:
    try:
        return await _store(request, runtime)
    except (HTTPException, PluginRuntimeError) as refusal:
        _refused(request, refusal)
        raise


def _refused(request: Request, refusal: Exception) -> None:
    """One line per refused webhook: the id its sender gave, the status and why; never the
    body, the signature, nor an invalid event's reason (it may quote the body)."""
    from plugin_runtime.api.app import STATUS  # the app imports this module

    if isinstance(refusal, HTTPException):
        status, reason = refusal.status_code, str(refusal.detail)
    else:
        status = next((STATUS[kind] for kind in type(refusal).__mro__ if kind in STATUS), 500)
        reason = str(refusal)
    metrics.webhook_refused(status, signature=isinstance(refusal, SignatureError))
    _log.warning("webhook refused: id=%s status=%d: %s", (request.headers.get("webhook-id") or "-")[:200], status,
                 "not a valid event" if status == 422 else reason[:500])


async def _store(request: Request, runtime: Service) -> JSONResponse:
    settings = runtime.settings
    body = await read_body(request, settings.max_body_bytes)
    verify(runtime.webhook_secrets, request.headers, body)
    try:
        event = parse_event(body)
    except ValueError as error:
        raise HTTPException(422, f"invalid event: {error}") from None
    # Stored by the intake's writer thread with the events arriving meanwhile (refused with
    # Busy when a queue is full); answered once committed, and the event loop serves other
    # requests while it waits.
    if not await asyncio.wrap_future(runtime.dispatcher.submit_batched(event, source="webhook")):
        return JSONResponse({"id": event["id"], "duplicate": True}, status_code=200)
    return JSONResponse({"id": event["id"]}, status_code=202)


async def _sender_or_admin(event_id: str, request: Request, runtime: RuntimeDep,
                           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """The admin, or the event's sender without the admin token: a request signed as events
    are, its ``webhook-id`` the event's id, over an empty body."""
    if "webhook-signature" not in request.headers:
        await admin(request, runtime, credentials)
    elif verify(runtime.webhook_secrets, request.headers, b"") != event_id:
        raise SignatureError("webhook-id must be the event's id (sign the request over an empty body)")


@router.get("/v1/events/{event_id:path}/runs", response_model=EventRuns, dependencies=[Depends(_sender_or_admin)],
            summary="Whether an event's runs, and those of the events they caused, are done",
            description="The admin token, or signed as its sender signs events: `webhook-id` the event's id, "
                        "over an empty body (what `events send --wait-for-runs` polls).",
            openapi_extra={"parameters": [{**header, "required": False} for header in _SIGNED["parameters"]]},
            responses=refusals(401, 404, 422))
def event_runs(event_id: str, views: ViewsDep) -> dict[str, Any]:
    found = views.event_runs(event_id)
    if found is None:
        raise NotFound(f"event {event_id!r} was not received")
    return found


# response_class=Response (no media type of its own): the refusals are documented as JSON, the
# answer as JSON Lines.
@router.get("/v1/events", dependencies=[Depends(admin)], response_class=Response,
            summary="Export recorded events (JSON Lines), for dry-runs",
            responses={200: {"description": "one recorded event per line (README: wire formats)",
                             "content": {JSONLines.media_type: {"schema": {"type": "string"}}}},
                       **refusals(401, 422)})
def export(views: ViewsDep, project_id: str = Query(min_length=1), source: str | None = None) -> JSONLines:
    return JSONLines(views.export(project_id, source))
