"""Runs: the filtered list (live while it shows the newest), one run, dead letters, retry."""

from __future__ import annotations

import platform as host
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from plugin_runtime.api.deps import RuntimeDep, ViewsDep, check_same_origin, signed_in
from plugin_runtime.api.ui.auth import form, local_path, require_session
from plugin_runtime.api.ui.render import HEADERS, page, render
from plugin_runtime.errors import Conflict, NotFound, Refused, Unauthorized
from plugin_runtime.statuses import QUEUED, RETRYABLE, RunStatus
from plugin_runtime.store.console import Console, Cursor

router = APIRouter(include_in_schema=False)
console = Console()

#: Runs on a page: a laptop screen's worth, a few milliseconds of the store's time.
PAGE = 50
#: Projects offered in the filter (typed in when there are more).
MAX_PROJECTS = 500


def _filters(plugin: str | None, project_id: str | None, status: str | None) -> dict[str, str | None]:
    """The filters as given in the form (an empty field: any)."""
    if status and status not in RunStatus.__members__.values():
        raise Refused(f"unknown status {status[:40]!r}: one of {', '.join(s.value for s in RunStatus)}")
    return {"plugin": plugin or None, "project_id": project_id or None, "status": status or None}


def _page_of_runs(runtime: Any, filters: dict[str, str | None], before: str | None) -> dict[str, Any]:
    """One page of runs, and the links to the newest page and the next older one."""
    try:
        cursor = Cursor.parse(before) if before else None
    except ValueError as error:
        raise Refused(f"{error}: follow the page's own links") from None
    rows = console.runs_page(runtime.store.read(), filters, cursor, PAGE + 1)
    given = {name: value for name, value in filters.items() if value}
    older = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        older = "?" + urlencode({**given, "before": str(Cursor(rows[-1]["event_seq"], rows[-1]["id"]))})
    return {"runs": rows, "older": older, "before": before, "newest": "?" + urlencode(given)}


@router.get("/ui/runs", dependencies=[Depends(require_session)])
def runs(request: Request, runtime: RuntimeDep, plugin: str | None = None, project_id: str | None = None,
         status: str | None = None, before: str | None = None) -> Response:
    filters = _filters(plugin, project_id, status)
    shown = _page_of_runs(runtime, filters, before)
    # Live while it shows the newest runs: an older page would shift under the reader.
    live = None if before else "/ui/runs/rows" + shown["newest"]
    db = runtime.store.read()
    return page(request, "runs.html", filters=filters, live=live,
                plugins=[row["name"] for row in runtime.store.plugins.names(db)],
                projects=console.run_projects(db, MAX_PROJECTS), **shown)


@router.get("/ui/runs/rows")
def rows(request: Request, runtime: RuntimeDep, plugin: str | None = None, project_id: str | None = None,
         status: str | None = None) -> Response:
    """The newest runs' rows, for the runs page to replace its own with (live updates)."""
    if not signed_in(request):
        raise Unauthorized("the session ended: log in again")
    shown = _page_of_runs(runtime, _filters(plugin, project_id, status), None)
    return HTMLResponse(render("_runs_rows.html", runs=shown["runs"], empty="No run matches these filters."),
                        headers=HEADERS)


@router.get("/ui/runs/{run_id}", dependencies=[Depends(require_session)])
def run(request: Request, run_id: str, runtime: RuntimeDep, views: ViewsDep, retried: str | None = None) -> Response:
    found = views.run(run_id)
    if found is None:
        return page(request, "message.html", status_code=404, title="No such run",
                    message=f"There is no run {run_id}: it may have belonged to a deleted plugin.")
    db = runtime.store.read()
    event = console.event(db, found["event_id"])
    row = runtime.store.runs.get(db, run_id)
    worker = row["worker"] if row is not None and "worker" in row.keys() and row["worker"] else None
    return page(request, "run.html", run=found, event=event, retryable=found["status"] in RETRYABLE,
                notice=f"Run {retried} is queued again." if retried else None,
                worker=worker or f"this runtime on {host.node()} ({runtime.settings.sandbox} sandbox)")


@router.get("/ui/runs/{run_id}/status")
def run_status(request: Request, run_id: str, runtime: RuntimeDep) -> Response:
    """A run's status alone: its page reloads when the run leaves the queue."""
    if not signed_in(request):
        raise Unauthorized("the session ended: log in again")
    row = runtime.store.runs.get(runtime.store.read(), run_id)
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return JSONResponse({"status": row["status"], "queued": row["status"] in QUEUED}, headers=HEADERS)


@router.post("/ui/runs/{run_id}/retry", dependencies=[Depends(require_session)])
async def retry(request: Request, run_id: str, runtime: RuntimeDep) -> Response:
    check_same_origin(request)
    fields = await form(request)
    try:
        queued = runtime.dispatcher.retry(run_id, fields.get("live_version") == "true")
    except KeyError:
        raise NotFound(f"run {run_id!r} does not exist") from None
    except ValueError as error:
        raise Conflict(str(error)) from None
    back = local_path(fields.get("back"), f"/ui/runs/{queued['id']}")
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}{urlencode({'retried': queued['id']})}", status_code=303,
                            headers=HEADERS)


@router.get("/ui/dead-letters", dependencies=[Depends(require_session)])
def dead_letters(request: Request, runtime: RuntimeDep, before: str | None = None,
                 retried: str | None = None) -> Response:
    shown = _page_of_runs(runtime, _filters(None, None, RunStatus.DEAD), before)
    notice = f"Run {retried} is queued again." if retried else None
    return page(request, "dead_letters.html", live=None, notice=notice, **shown)
