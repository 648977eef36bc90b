"""Kili's webhooks in: the secret header ``connect kili`` gave Kili (``create_webhook(header=...)``,
sent back as ``Authorization``) checked, Kili's payload turned into the event plugins receive.

Kili posts ``{"eventType", "logPayload": {"runId", "projectId"}, "payload": {...}}``; for
``onSubmit`` and ``onReview`` the payload holds ``label`` and ``asset_id``, for
``onSendBackToQueue`` ``asset_id``, for ``onProjectUpdated`` the settings updated, for an
event matched by an event matcher its own fields. The event's id is Kili's run id, so a webhook
delivered twice is stored once.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from plugin_runtime.errors import PlatformRefused, Unauthorized
from plugin_runtime.recordings import parse_event
from plugin_runtime.store.connections import Connection
from plugin_sdk.subscriptions import ASSET_EVENTS, LABEL_EVENTS, PROJECT_UPDATED, is_generic

#: The header Kili sends the webhook's ``header`` in.
SECRET_HEADER = "Authorization"


def receive(connection: Connection, headers: Any, body: bytes) -> list[dict[str, Any]]:
    """The event one Kili webhook carries (none for an event type plugins cannot receive)."""
    given = headers.get(SECRET_HEADER) or headers.get(SECRET_HEADER.lower()) or ""
    if not hmac.compare_digest(given.encode(), connection.secret.encode()):
        raise Unauthorized(f"missing or wrong {SECRET_HEADER} header: only the webhook `plugin-runtime connect kili` "
                           "registered on Kili is received (run connect again to renew it)")
    try:
        message = json.loads(body)
    except ValueError:
        raise PlatformRefused("the body is not JSON: not a Kili webhook") from None
    if not isinstance(message, dict) or not isinstance(message.get("logPayload"), dict):
        raise PlatformRefused("not a Kili webhook: it has no logPayload (eventType, logPayload, payload)")
    remote = message["logPayload"].get("projectId")
    if remote != connection.config["project"]:
        raise PlatformRefused(f"the event is of Kili project {remote!r}, not of the connected project "
                              f"{connection.config['project']!r}")
    event = event_of(connection.project_id, message)
    if event is None:
        return []
    try:
        return [parse_event(json.dumps(event))]
    except ValueError as error:
        raise PlatformRefused(f"Kili's {message.get('eventType')} does not make a valid event: {error}") from None


def event_of(project_id: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded event of Kili's webhook ``message`` for the runtime's ``project_id``."""
    kind = message.get("eventType")
    run_id = message["logPayload"].get("runId")
    given = message.get("payload")
    payload: dict[str, Any] = given if isinstance(given, dict) else {}
    if not isinstance(kind, str) or not isinstance(run_id, str) or not run_id:
        raise PlatformRefused("a Kili webhook needs eventType and logPayload.runId")
    event: dict[str, Any] = {"id": f"kili-{run_id}", "type": kind, "project_id": project_id}
    if kind in ASSET_EVENTS:
        event["asset_id"] = payload.get("asset_id") or payload.get("assetId")
    if kind in LABEL_EVENTS:
        event["label"] = label_of(payload.get("label"))
        event["occurred_at"] = event["label"].get("createdAt")
    elif kind == PROJECT_UPDATED:
        event["settings_updated"] = payload.get("settings_updated") or payload.get("settingsUpdated") or []
    elif is_generic(kind):
        event["payload"] = payload.get("payload") if isinstance(payload.get("payload"), dict) else payload
        event["user_id"] = payload.get("userId")
        event["organization_id"] = payload.get("organizationId")
    elif kind not in ASSET_EVENTS:
        return None  # a handler type plugins have no hook for
    return event


def label_of(label: Any) -> dict[str, Any]:
    """Kili's label as hooks receive it: ``jsonResponse`` an object (Kili may send the JSON
    text), ``authorId`` set."""
    if not isinstance(label, dict):
        raise PlatformRefused("Kili's webhook has no label")
    out = dict(label)
    if isinstance(out.get("jsonResponse"), str):
        try:
            out["jsonResponse"] = json.loads(out["jsonResponse"] or "{}")
        except ValueError:
            raise PlatformRefused("the label's jsonResponse is not JSON") from None
    if out.get("authorId") is None and isinstance(out.get("author"), dict):
        out["authorId"] = out["author"].get("id")
    return out
