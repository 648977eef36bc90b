"""Label Studio's webhooks in: the connection's secret header checked, a person's saved
annotation turned into the event plugins receive.

Label Studio signs nothing and sends each webhook once, inside the annotator's save: the
intake checks the secret header that ``connect`` set on the webhook (a new one each time
``connect`` runs: Community shows a webhook's headers to every member), and answers at once.
``ANNOTATION_CREATED`` and ``ANNOTATION_UPDATED`` of a person become ``onSubmit``; the
runtime's own edits, cancelled (skipped) annotations and every other action are ignored. The
event's id is its annotation's id and saved time, so a webhook delivered twice, replayed, or
also found by the reconciliation is stored once.

The webhook ``connect`` makes carries no payload (``send_payload: false``): it is a *poke*,
``{"action": ...}`` alone, on which the runtime looks at the project's recently changed tasks
at once (``reconcile``). Serializing the annotation, its task and its project for a payload
is most of what a webhook costs the annotator's save (measured in ``bench/label_studio.py``).
A webhook that does carry its annotation (one a user set up) is still turned into its event
directly.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from plugin_runtime.errors import PlatformRefused, Unauthorized
from plugin_runtime.platforms.label_studio import records
from plugin_runtime.recordings import parse_event
from plugin_runtime.store.connections import Connection

#: The header carrying the connection's secret (set on the webhook by ``connect``).
SECRET_HEADER = "X-Plugin-Runtime-Secret"
#: The webhook actions that carry a person's saved annotation.
ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


def receive(connection: Connection, headers: Any, body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The events one webhook carries (none when it is to be ignored), and whether it is a
    poke: a saved annotation's webhook without its payload, to look at Label Studio for."""
    given = headers.get(SECRET_HEADER) or headers.get(SECRET_HEADER.lower()) or ""
    if not hmac.compare_digest(given.encode(), connection.secret.encode()):
        raise Unauthorized(f"missing or wrong {SECRET_HEADER} header: only the webhook `plugin-runtime connect` "
                           "set on the Label Studio project is received (run connect again to renew it)")
    try:
        payload = json.loads(body)
    except ValueError:
        raise PlatformRefused("the body is not JSON: not a Label Studio webhook") from None
    if not isinstance(payload, dict) or payload.get("action") not in ACTIONS:
        return [], False
    if "annotation" not in payload:
        return [], True
    annotation = payload.get("annotation")
    if not isinstance(annotation, dict) or not isinstance(annotation.get("id"), int):
        raise PlatformRefused(f"a {payload['action']} webhook without its annotation")
    remote = int(connection.config["project"])
    if annotation.get("project") != remote:
        raise PlatformRefused(f"the annotation is of Label Studio project {annotation.get('project')}, "
                              f"not of the connected project {remote}")
    task = payload.get("task") if isinstance(payload.get("task"), dict) else None
    project = payload.get("project") if isinstance(payload.get("project"), dict) else None
    event = records.submitted(connection.project_id, remote, annotation, task, project,
                              int(connection.config["bot_user_id"]))
    if event is None:
        return [], False
    try:
        return [parse_event(json.dumps(event))], False
    except ValueError as error:
        raise PlatformRefused(f"the annotation does not make a valid event: {error}") from None
