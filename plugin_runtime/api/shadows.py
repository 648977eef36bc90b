"""Shadows: run a candidate version beside the live one on a project's events (its actions
stored, never applied), read what it would have done differently, promote it or end it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from plugin_runtime.api.deps import RuntimeDep, admin
from plugin_runtime.api.models import Promoted, Shadow, ShadowReports, ShadowsEnded, ShadowVersion, refusals
from plugin_runtime.shadow_report import DIFFERENCES, FAILURES, report

router = APIRouter(tags=["shadows"], dependencies=[Depends(admin)])


@router.put("/v1/plugins/{name}/shadows/{project_id}", response_model=Shadow, responses=refusals(401, 404, 409, 422),
            summary="Shadow a built version on a project's events from now on (idempotent; replaces another)")
def start(name: str, project_id: str, body: ShadowVersion, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.shadows.start(name, body.version, project_id)


@router.delete("/v1/plugins/{name}/shadows", response_model=ShadowsEnded, responses=refusals(401, 404, 422),
               summary="End the plugin's shadows (on one project, or all); their reports stay")
def stop(name: str, runtime: RuntimeDep, project_id: str | None = None) -> dict[str, Any]:
    return {"ended": runtime.shadows.stop(name, project_id)}


@router.post("/v1/plugins/{name}/promote", response_model=Promoted, responses=refusals(401, 404, 409, 422),
             summary="Make a built version live and end the plugin's shadows")
def promote(name: str, body: ShadowVersion, runtime: RuntimeDep) -> dict[str, Any]:
    return {"plugin": name, "version": body.version, "ended": runtime.shadows.promote(name, body.version)}


@router.get("/v1/shadows", response_model=ShadowReports, responses=refusals(401, 404, 422),
            summary="Reports of the newest shadow of each plugin and project (ended or not)")
def reports(runtime: RuntimeDep, plugin: str | None = None, project_id: str | None = None,
            differences: int = Query(default=DIFFERENCES, ge=0, le=1000),
            failures: int = Query(default=FAILURES, ge=0, le=1000)) -> dict[str, Any]:
    store = runtime.store
    db = store.read()
    if plugin is not None:
        runtime.registry.plugin_row(db, plugin)  # 404 for an unknown plugin
    return {"shadows": [report(store, row, differences, failures)
                        for row in store.shadows.latest(db, plugin, project_id)]}
