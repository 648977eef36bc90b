"""Plugins: the list, and one plugin's versions, build log, projects and latest runs."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from plugin_runtime.api.deps import RuntimeDep
from plugin_runtime.api.models import MAX_VERSION
from plugin_runtime.api.ui.auth import require_session
from plugin_runtime.api.ui.render import page
from plugin_runtime.errors import RegistryNotFound
from plugin_runtime.store.console import Console

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_session)])
console = Console()
#: A plugin's latest runs on its page (the runs page has the rest).
LATEST_RUNS = 10


@router.get("/ui/plugins")
def plugins(request: Request, runtime: RuntimeDep) -> Response:
    return page(request, "plugins.html", plugins=runtime.registry.plugins())


@router.get("/ui/plugins/{name}")
def plugin(request: Request, name: str, runtime: RuntimeDep,
           version: int | None = Query(default=None, ge=1, le=MAX_VERSION)) -> Response:
    registry = runtime.registry
    try:
        versions = registry.versions(name)
        summary = next((p for p in registry.plugins() if p["name"] == name), None)
        if summary is None:
            raise RegistryNotFound(name)
        shown = registry.latest(name) if version is None else registry.version(name, version, with_log=True)
    except RegistryNotFound:
        return page(request, "message.html", status_code=404, title="No such plugin or version",
                    message=f"Plugin {name} has no version {version}." if version else f"There is no plugin {name}.")
    runs = console.runs_page(runtime.store.read(), {"plugin": name}, None, LATEST_RUNS)
    return page(request, "plugin.html", plugin=summary, versions=versions, shown=shown, runs=runs,
                runs_link="/ui/runs?" + urlencode({"plugin": name}))
