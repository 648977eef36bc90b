"""Connecting a runtime project to a Label Studio project (``plugin-runtime connect
label-studio``), and disconnecting it.

``connect`` checks the URL, the token (whose user becomes the runtime's bot user) and the
project, then creates the project's webhook to the runtime's Label Studio intake, or updates
the one it made before (idempotent), with a new secret header. Every failure is a
``ConnectionRefused`` saying what to do; nothing is created on Label Studio before every check
passed, so a refused connect leaves nothing behind.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from plugin_runtime.errors import (
    ConnectionRefused,
    PlatformError,
    PlatformNotFound,
    PlatformRefused,
    PlatformTokenRefused,
    PlatformUnavailable,
)
from plugin_runtime.platforms.label_studio import interface
from plugin_runtime.platforms.label_studio.client import LabelStudioClient
from plugin_runtime.platforms.label_studio.webhooks import ACTIONS, SECRET_HEADER
from plugin_runtime.platforms.router import refused_params, webhook_url
from plugin_runtime.store.codec import now
from plugin_runtime.store.connections import Connection

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.platforms.label_studio.platform import LabelStudioPlatform
    from plugin_runtime.store import Store

KIND = "label-studio"


class Params(BaseModel):
    """What ``connect label-studio`` is given."""

    url: str = Field(min_length=1, description="Label Studio's URL, e.g. http://127.0.0.1:8080")
    token: str = Field(min_length=1, description="The bot user's legacy token or personal access token")
    project: int = Field(ge=1, description="The Label Studio project's id")


class LabelStudio:
    """The Label Studio kind of platform (``router.Kind``)."""

    name = KIND

    def connect(self, project_id: str | None, params: dict[str, Any], runtime_url: str,
                previous: Connection | None) -> Connection:
        try:
            given = Params.model_validate(params)
        except ValidationError as error:
            raise refused_params(error, "connect label-studio needs --url, --token and --project N") from None
        if not given.url.startswith(("http://", "https://")):
            raise ConnectionRefused(f"--url {given.url!r} is not Label Studio's URL: give it as http://HOST:PORT")
        try:
            client = LabelStudioClient(given.url, given.token)
        except PlatformRefused as error:
            raise ConnectionRefused(str(error)) from None
        try:
            return self._connect(client, given, project_id or f"label-studio-{given.project}", runtime_url, previous)
        finally:
            client.close()

    def _connect(self, client: LabelStudioClient, given: Params, project_id: str, runtime_url: str,
                 previous: Connection | None) -> Connection:
        url = client.url
        try:
            whoami = client.get("/api/current-user/whoami")
        except PlatformTokenRefused:
            raise ConnectionRefused(f"Label Studio at {url} refused the token: give the legacy token or the personal "
                                    "access token of the user the runtime acts as (Account & Settings in Label "
                                    "Studio; a legacy token needs legacy tokens enabled for the organization)") from None
        except PlatformError as error:
            raise ConnectionRefused(f"{url} does not answer as Label Studio ({error}): check --url") from None
        if not isinstance(whoami, dict) or not isinstance(whoami.get("id"), int):
            raise ConnectionRefused(f"{url} does not answer as Label Studio (no user at /api/current-user/whoami): "
                                    "check --url")
        try:
            remote = client.get(f"/api/projects/{given.project}/")
        except PlatformNotFound:
            raise ConnectionRefused(f"Label Studio at {url} has no project {given.project} that its user "
                                    f"{whoami.get('email')} can see: check --project (the number in the project's "
                                    "URL, /projects/N/) and that this user is a member of its organization") from None
        except PlatformError as error:
            raise ConnectionRefused(f"Label Studio at {url} did not give project {given.project}: {error}") from None
        try:
            interface.parse(str(remote.get("label_config") or "<View/>"))
        except PlatformRefused as error:
            raise ConnectionRefused(f"Label Studio project {given.project}: {error}") from None
        secret = secrets.token_urlsafe(32)
        hook = self._webhook(client, given.project, webhook_url(runtime_url, project_id), secret, previous)
        same = previous is not None and previous.config.get("url") == url and \
            previous.config.get("project") == given.project
        stamp = now()
        config = {
            "url": url, "project": given.project, "title": remote.get("title"), "webhook_id": hook["id"],
            "webhook_url": hook["url"], "bot_user_id": whoami["id"], "bot_user": whoami.get("email"),
            "token_kind": client.kind, "runtime_url": runtime_url,
            # Annotations saved before this are never events: Label Studio's own clock.
            "since": previous.config.get("since") if same and previous else hook.get("created_at") or stamp,
        }
        return Connection(project_id, KIND, config, secret, {"token": given.token},
                          previous.created_at if previous else stamp, stamp)

    def _webhook(self, client: LabelStudioClient, project: int, url: str, secret: str,
                 previous: Connection | None) -> dict[str, Any]:
        """Create the project's webhook to ``url``, or update the one made before."""
        # No payload: a poke the runtime answers by looking at the project (``webhooks``),
        # sparing the save Label Studio's serializing of the annotation, task and project.
        body = {"project": project, "url": url, "send_payload": False, "send_for_all_actions": False,
                "actions": list(ACTIONS), "headers": {SECRET_HEADER: secret}, "is_active": True}
        existing = [h for h in client.get("/api/webhooks/", project=project) or [] if h.get("url") == url]
        if previous is not None and previous.config.get("project") == project:
            existing = [h for h in existing if h.get("id") != previous.config.get("webhook_id")] + \
                [{"id": previous.config.get("webhook_id")}]
        try:
            for hook in reversed(existing):
                try:
                    answer: dict[str, Any] = client.patch(f"/api/webhooks/{hook['id']}/",
                                                          {k: v for k, v in body.items() if k != "project"})
                    return answer
                except PlatformNotFound:
                    continue  # removed in Label Studio meanwhile: make another
            created: dict[str, Any] = client.post("/api/webhooks/", body)
            return created
        except (PlatformRefused, PlatformTokenRefused) as error:
            # Its SSRF guard answers 400 or 403 (the token was accepted just before), naming the URL.
            if "url" in str(error).lower() or "network address" in str(error):
                raise ConnectionRefused(
                    f"Label Studio refused to call the runtime at {url} ({error}). Its SSRF protection blocks "
                    "webhooks to local and private addresses: start Label Studio with SSRF_PROTECTION_ENABLED=false, "
                    "or give --runtime-url an address of the runtime that Label Studio may call") from None
            raise ConnectionRefused(f"Label Studio refused the webhook: {error}") from None
        except PlatformUnavailable as error:
            raise ConnectionRefused(f"could not set up the webhook: {error}") from None

    def disconnect(self, connection: Connection) -> None:
        """Remove the project's webhook (already gone is fine); PlatformError when Label
        Studio cannot be reached."""
        client = LabelStudioClient(connection.config["url"], connection.credentials["token"])
        try:
            client.delete(f"/api/webhooks/{connection.config['webhook_id']}/")
        except PlatformNotFound:
            pass
        finally:
            client.close()

    def open(self, connection: Connection, store: Store, settings: Settings) -> LabelStudioPlatform:
        from plugin_runtime.platforms.label_studio.platform import LabelStudioPlatform

        return LabelStudioPlatform(connection, store, settings)
