"""Runs and their logs: list, show, retry, and the log lines of finished runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from plugin_runtime.api.deps import RuntimeDep, ViewsDep, admin
from plugin_runtime.api.models import MAX_CURSOR, LogPage, Retried, Run, RunDetail, refusals
from plugin_runtime.errors import Conflict, NotFound
from plugin_runtime.statuses import RunStatus

router = APIRouter(tags=["runs"], dependencies=[Depends(admin)])


@router.get("/v1/runs", response_model=list[Run], responses=refusals(401, 422))
def runs(views: ViewsDep, plugin: str | None = None, status: RunStatus | None = None, project_id: str | None = None,
         limit: int = Query(default=100, ge=1, le=10_000),
         root_id: str | None = Query(default=None, description="runs of one webhook's chain of caused events")
         ) -> list[dict[str, Any]]:
    return views.runs(plugin=plugin, status=status, project_id=project_id, limit=limit, root_id=root_id)


@router.get("/v1/runs/{run_id}", response_model=RunDetail, responses=refusals(401, 404, 422))
def run(run_id: str, views: ViewsDep) -> dict[str, Any]:
    found = views.run(run_id)
    if found is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return found


@router.post("/v1/runs/{run_id}/retry", response_model=Retried, responses=refusals(401, 404, 409, 422))
def retry(run_id: str, runtime: RuntimeDep, live_version: bool = False) -> dict[str, Any]:
    try:
        return runtime.dispatcher.retry(run_id, live_version)
    # The dispatcher says "no such run" and "not in a retryable state" with these two.
    except KeyError:
        raise NotFound(f"run {run_id!r} does not exist") from None
    except ValueError as error:
        raise Conflict(str(error)) from None


@router.get("/v1/logs", response_model=LogPage, responses=refusals(401, 404, 422))
def logs(runtime: RuntimeDep, views: ViewsDep, plugin: str | None = None, project_id: str | None = None,
         after: int = Query(default=0, ge=0, le=MAX_CURSOR), limit: int = Query(default=1000, ge=1, le=10_000)
         ) -> dict[str, Any]:
    if plugin is not None:
        runtime.registry.plugin_row(runtime.store.read(), plugin)  # 404 for an unknown plugin
    return views.logs(plugin=plugin, project_id=project_id, after=after, limit=limit)
