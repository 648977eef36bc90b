"""Connecting a runtime project to a Kili project (``plugin-runtime connect kili``), and
disconnecting it, through Kili's official client.

``connect`` checks the API key and the project, then registers a Kili webhook (Kili's
``create_webhook``: a plugin of the organization, named after the runtime's project, calling
the runtime's Kili intake with a secret ``Authorization`` header, for every hook's event type)
or updates the one it made before (idempotent, a new secret each time), and activates it on
the project. Every failure is a ``ConnectionRefused`` saying what to do; a webhook registered
by a connect that then fails is deleted again.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from plugin_runtime.errors import ConnectionRefused, PlatformError
from plugin_runtime.platforms.kili.client import DEFAULT_ENDPOINT, open_client
from plugin_runtime.platforms.kili.client import project as kili_project
from plugin_runtime.platforms.router import refused_params, webhook_url
from plugin_runtime.store.codec import now
from plugin_runtime.store.connections import Connection
from plugin_sdk.subscriptions import HOOKS

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.platforms.kili.platform import KiliPlatform
    from plugin_runtime.store import Store

KIND = "kili"


class Params(BaseModel):
    """What ``connect kili`` is given."""

    api_key: str = Field(min_length=1, description="A Kili API key of the user the runtime acts as")
    api_endpoint: str | None = Field(default=None, description="Kili's GraphQL endpoint (default: Kili's SaaS)")
    project: str = Field(min_length=1, max_length=200, description="The Kili project's id")


class Kili:
    """The Kili kind of platform (``router.Kind``)."""

    name = KIND

    def connect(self, project_id: str | None, params: dict[str, Any], runtime_url: str,
                previous: Connection | None) -> Connection:
        try:
            given = Params.model_validate(params)
        except ValidationError as error:
            raise refused_params(error, "connect kili needs --api-key and --project ID") from None
        endpoint = given.api_endpoint or DEFAULT_ENDPOINT
        try:
            kili = open_client(given.api_key, endpoint)
            remote = kili_project(kili, given.project, ["id", "title"])
        except PlatformError as error:
            raise ConnectionRefused(str(error)) from None
        local = project_id or f"kili-{given.project}"
        same = previous is not None and previous.config.get("project") == given.project
        plugin = previous.config["plugin_name"] if same and previous else f"plugin-runtime-{local}"
        url, secret = webhook_url(runtime_url, local), secrets.token_urlsafe(32)
        created, active = self._webhook(kili, plugin, url, secret, given.project)
        try:
            if not active:
                kili.activate_plugin_on_project(plugin_name=plugin, project_id=given.project)
        except Exception as error:  # the client's errors: said, and the webhook made here removed
            if created:
                _quietly(kili.delete_plugin, plugin)
            raise ConnectionRefused(f"Kili did not activate the webhook on project {given.project}: {error}") from None
        stamp = now()
        config = {"url": endpoint, "api_endpoint": endpoint, "project": given.project, "title": remote.get("title"),
                  "plugin_name": plugin, "webhook_id": plugin, "webhook_url": url, "token_kind": "api-key",
                  "runtime_url": runtime_url}
        return Connection(local, KIND, config, secret, {"api_key": given.api_key},
                          previous.created_at if previous else stamp, stamp)

    def _webhook(self, kili: Any, plugin: str, url: str, secret: str, project: str) -> tuple[bool, bool]:
        """Register the webhook as ``plugin``, or update it; whether it was created here, and
        whether it is active on ``project`` already."""
        types = list(HOOKS)
        try:
            found = [p for p in kili.list_plugins(fields=["name", "projectIds"]) or [] if p.get("name") == plugin]
            exists = bool(found)
            if exists:
                kili.update_webhook(new_webhook_url=url, plugin_name=plugin, new_header=secret, verbose=False,
                                    handler_types=types)
            else:
                kili.create_webhook(webhook_url=url, plugin_name=plugin, header=secret, verbose=False,
                                    handler_types=types)
        except Exception as error:  # the client's errors (GraphQL, HTTP), whatever their class
            raise ConnectionRefused(f"Kili refused the webhook to {url}: {error}. Kili must reach that URL: give "
                                    "--runtime-url an address of the runtime that Kili can call (https)") from None
        return not exists, exists and project in (found[0].get("projectIds") or [])

    def disconnect(self, connection: Connection) -> None:
        """Deactivate and delete the webhook on Kili (already gone is fine); PlatformError when
        Kili cannot be reached."""
        kili = open_client(connection.credentials["api_key"], connection.config.get("api_endpoint"))
        plugin = connection.config["plugin_name"]
        _quietly(kili.deactivate_plugin_on_project, plugin, connection.config["project"])
        _quietly(kili.delete_plugin, plugin)

    def open(self, connection: Connection, store: Store, settings: Settings) -> KiliPlatform:
        from plugin_runtime.platforms.kili.platform import KiliPlatform

        return KiliPlatform(connection, store, settings)


def _quietly(call: Any, *args: Any) -> None:
    """Undo on Kili as far as it goes: what is gone already is fine."""
    try:
        call(*args)
    except Exception:  # noqa: BLE001 - the client raises several classes for "not found"
        pass
