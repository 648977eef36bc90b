"""What the routers share: the runtime behind the app, the admin check, bounded bodies.

The admin check takes the bearer token (the CLI, scripts) or the dashboard's session cookie
(the dashboard's own requests); a request carrying only the cookie that changes anything must
come from a page of this server (its ``Origin``), on top of the cookie's SameSite=Strict.

The API sees the runtime through ``Service``, what it uses of it, so it never imports the
server module that assembles the runtime (``server.serve`` imports the API, not the reverse).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from plugin_runtime.errors import Forbidden, Unauthorized
from plugin_runtime.views import RunViews

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
    from plugin_runtime.dispatcher import Dispatcher
    from plugin_runtime.platforms.embedded import EmbeddedPlatform
    from plugin_runtime.platforms.router import Platforms
    from plugin_runtime.registry import Registry
    from plugin_runtime.sandbox.manager import SandboxManager
    from plugin_runtime.shadow import Shadows
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
    def platforms(self) -> Platforms: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def sandboxes(self) -> SandboxManager: ...
    @property
    def shadows(self) -> Shadows: ...

    def start(self) -> None: ...

    def pending_runs(self, project_id: str | None = None) -> int: ...

    def submit_checked(self, event: dict[str, Any], source: str) -> bool: ...


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


#: The dashboard's session cookie: a random session id (``api/ui/sessions``), never the token.
SESSION_COOKIE = "plugin_runtime_session"
#: Methods that change nothing, which a cookie alone may send from anywhere the browser allows.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def signed_in(request: Request) -> bool:
    """Whether the request carries a live dashboard session."""
    sessions = getattr(request.app.state, "sessions", None)
    return sessions is not None and sessions.valid(request.cookies.get(SESSION_COOKIE))


def same_origin(request: Request) -> bool:
    """Whether a browser sent the request from a page of this server: its ``Origin`` (or,
    without one, its ``Referer``) names the host the request was sent to."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    return source not in ("", "null") and urlsplit(source).netloc == request.headers.get("host", "")


def check_same_origin(request: Request) -> None:
    """Refuse a request that changes something, authenticated by the cookie alone, from
    another site (cross-site request forgery)."""
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise Forbidden("refused: a request that changes something with the dashboard's session must come from the "
                        "dashboard's own pages (its Origin header); scripts use the bearer token")


async def admin(request: Request, runtime: RuntimeDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Every route under /v1 but the webhook needs the admin token, or a dashboard session."""
    if credentials is None and signed_in(request):
        check_same_origin(request)
        return
    given = credentials.credentials if credentials is not None else ""
    # A runtime without a token lets no one in (str(None) made "Bearer None" the admin token);
    # compare_digest: the time taken says nothing of how much of the token was right.
    if not given or not runtime.token or not secrets.compare_digest(given.encode(), runtime.token.encode()):
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
