"""What the routers share: the runtime behind the app, the admin check, bounded bodies.

The API sees the runtime through ``Service``, what it uses of it, so it never imports the
server module that assembles the runtime (``server.serve`` imports the API, not the reverse).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from plugin_runtime.errors import Unauthorized
from plugin_runtime.views import RunViews

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.dispatcher import Dispatcher
    from plugin_runtime.platforms.embedded import EmbeddedPlatform
    from plugin_runtime.registry import Registry
    from plugin_runtime.sandbox.manager import SandboxManager
    from plugin_runtime.store import Store


class Service(Protocol):
    """What the API uses of the runtime (``plugin_runtime.server.Runtime``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def token(self) -> str | None: ...
    @property
    def webhook_secrets(self) -> list[str]: ...
    @property
    def store(self) -> Store: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def platform(self) -> EmbeddedPlatform: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def sandboxes(self) -> SandboxManager: ...

    def start(self) -> None: ...

    def pending_runs(self, project_id: str | None = None) -> int: ...


# async: resolved on the event loop, without a thread hop on the webhook's hot path.
async def _runtime(request: Request) -> Service:
    runtime: Service = request.app.state.runtime
    return runtime


async def _views(request: Request) -> RunViews:
    views: RunViews = request.app.state.views
    return views


RuntimeDep = Annotated[Service, Depends(_runtime)]
ViewsDep = Annotated[RunViews, Depends(_views)]

_bearer = HTTPBearer(auto_error=False, description="The admin token (PLUGIN_RUNTIME_TOKEN)")


async def admin(runtime: RuntimeDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Every route under /v1 but the webhook needs the admin token."""
    given = credentials.credentials if credentials is not None else ""
    # compare_digest: the time taken says nothing of how much of the token was right.
    if not given or not secrets.compare_digest(given.encode(), str(runtime.token).encode()):
        raise Unauthorized("missing or wrong bearer token (Authorization: Bearer <PLUGIN_RUNTIME_TOKEN>; "
                           "the CLI reads it from --token, PLUGIN_RUNTIME_TOKEN or --data-dir)")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes before more is read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
