"""Plugins: upload and update (a zip body), versions, build logs, rollback, delete, and their
activation per project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from plugin_runtime.api.deps import RuntimeDep, admin, read_body
from plugin_runtime.api.models import (
    MAX_VERSION,
    Activation,
    BuildLog,
    Deleted,
    PluginDetail,
    PluginSummary,
    Rollback,
    Version,
    VersionWithLog,
    refusals,
)
from plugin_runtime.errors import RegistryNotFound
from plugin_runtime.event_matcher import with_event_matcher
from plugin_runtime.source import load_archive
from plugin_sdk import _wire

router = APIRouter(tags=["plugins"], dependencies=[Depends(admin)])

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_ZIP_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/zip": {"schema": {
    "type": "string", "format": "binary",
    "description": "the plugin: a zip of its folder (main.py, optional requirements.txt)"}}}}}


@router.get("/v1/plugins", response_model=list[PluginSummary], responses=refusals(401))
def plugins(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return runtime.registry.plugins()


@router.post("/v1/plugins/{name}/versions", status_code=202, response_model=Version, openapi_extra=_ZIP_BODY,
             summary="Upload a version (zip body); create=true for a new plugin",
             responses=refusals(400, 401, 404, 409, 413, 422))
async def upload(name: str, request: Request, runtime: RuntimeDep, create: bool = False,
                 event_matcher: list[str] = Query(default=[], max_length=100, description=(
                     "dotted event names or globs on_event receives (asset.*), as Kili's upload_plugin "
                     "takes them; they replace the class attribute event_matcher")),
                 limits: str | None = Query(default=None, description='JSON, e.g. {"memory_mb": 1024}'),
                 candidate: bool = Query(default=False, description="built without going live (to shadow it)")
                 ) -> dict[str, Any]:
    requested: dict[str, Any] = {}
    if limits:
        try:
            requested = _wire.loads_untrusted(limits)  # nesting and NaN refused: no RecursionError
            if not isinstance(requested, dict):
                raise ValueError("limits is a JSON object")
            runtime.sandboxes.limits(requested)
        except (ValueError, TypeError) as error:
            raise HTTPException(422, f"invalid limits: {error}") from None
    body = await read_body(request, MAX_UPLOAD_BYTES)
    source = with_event_matcher(load_archive(body, f"{name}.zip"), event_matcher)
    return runtime.registry.upload(name, source, create=create, limits=requested, candidate=candidate)


@router.get("/v1/plugins/{name}", response_model=PluginDetail, responses=refusals(401, 404, 422))
def plugin(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    versions = runtime.registry.versions(name)
    current = next((p for p in runtime.registry.plugins() if p["name"] == name), None)
    if current is None:  # deleted since its versions were read
        raise RegistryNotFound(f"plugin {name!r} does not exist")
    return {**current, "versions": versions}


@router.get("/v1/plugins/{name}/versions", response_model=list[Version], responses=refusals(401, 404, 422))
def versions(name: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return runtime.registry.versions(name)


@router.get("/v1/plugins/{name}/versions/{version}", response_model=VersionWithLog,
            responses=refusals(401, 404, 422))
def version(name: str, runtime: RuntimeDep, version: int = Path(ge=1, le=MAX_VERSION),
            wait: float = Query(default=0, ge=0, le=600)) -> dict[str, Any]:
    if wait:
        runtime.registry.wait(name, version, wait)
    return runtime.registry.version(name, version, with_log=True)


@router.get("/v1/plugins/{name}/versions/{version}/archive", response_class=Response,
            summary="A version's files as kept, a zip (what `plugin-runtime diff NAME@VERSION` runs)",
            responses={200: {"content": {"application/zip": {}}, "description": "the version's files"},
                       **refusals(401, 404, 422)})
def archive(name: str, runtime: RuntimeDep, version: int = Path(ge=1, le=MAX_VERSION)) -> Response:
    return Response(runtime.registry.archive(name, version), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}-v{version}.zip"'})


@router.get("/v1/plugins/{name}/build-log", response_model=BuildLog, responses=refusals(401, 404, 422))
def build_log(name: str, runtime: RuntimeDep,
              version: int | None = Query(default=None, ge=1, le=MAX_VERSION)) -> dict[str, Any]:
    registry = runtime.registry
    info = registry.latest(name) if version is None else registry.version(name, version, with_log=True)
    return {"plugin": name, "version": info["version"], "status": info["status"],
            "build_error": info["build_error"], "build_log": info["build_log"]}


@router.post("/v1/plugins/{name}/rollback", response_model=Version, responses=refusals(401, 404, 409, 422))
def rollback(name: str, body: Rollback, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.registry.rollback(name, body.version)


@router.delete("/v1/plugins/{name}", response_model=Deleted, responses=refusals(401, 404, 422))
def delete(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    runtime.registry.delete(name)
    return {"deleted": name}


@router.put("/v1/plugins/{name}/projects/{project_id}", response_model=Activation,
            responses=refusals(400, 401, 404, 422))
def activate(name: str, project_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    changed = runtime.registry.activate(name, project_id)
    return {"plugin": name, "project_id": project_id, "active": True, "changed": changed}


@router.delete("/v1/plugins/{name}/projects/{project_id}", response_model=Activation,
               responses=refusals(401, 404, 422))
def deactivate(name: str, project_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    changed = runtime.registry.deactivate(name, project_id)
    return {"plugin": name, "project_id": project_id, "active": False, "changed": changed}
