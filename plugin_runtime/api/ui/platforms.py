"""Platforms: the projects connected to a labeling platform of their own, and the embedded
platform's projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from plugin_runtime.api.deps import RuntimeDep
from plugin_runtime.api.ui.auth import require_session
from plugin_runtime.api.ui.render import page
from plugin_runtime.store.console import Console

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_session)])
console = Console()
#: Projects listed at most (a page, not a report).
MAX_PROJECTS = 500


@router.get("/ui/platforms")
def platforms(request: Request, runtime: RuntimeDep) -> Response:
    db = runtime.store.read()
    projects = console.projects(db, MAX_PROJECTS + 1)
    return page(request, "platforms.html", connections=_connections(runtime, db), projects=projects[:MAX_PROJECTS],
                more_projects=len(projects) > MAX_PROJECTS)


def _connections(runtime: Any, db: Any) -> list[dict[str, Any]] | None:
    """Every connection, without its secret and credentials; None for a runtime that has no
    connections (a store without them)."""
    connections = getattr(runtime.store, "connections", None)
    if connections is None:
        return None
    return [connection.public() for connection in connections.all(db)]
