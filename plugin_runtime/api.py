"""The HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

``POST /v1/events`` is the signed webhook intake; everything else under ``/v1`` needs the
admin bearer token. Bad input is a 4xx whose ``detail`` says what is wrong, and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from plugin_runtime.errors import PluginInvalid
from plugin_runtime.platforms.embedded import PlatformError
from plugin_runtime.recordings import parse_event
from plugin_runtime.registry import RegistryError
from plugin_runtime.server import Runtime
from plugin_runtime.source import load_archive
from plugin_runtime.views import RunViews
from plugin_runtime.webhooks import SignatureError, verify


class Rollback(BaseModel):
    version: int = Field(ge=1)


class NewProject(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    title: str | None = None
    json_interface: dict[str, Any] | None = None
    input_type: str | None = None
    min_consensus_size: int = Field(default=1, ge=1, le=10)
    consensus_tot_coverage: int = Field(default=0, ge=0, le=100)
    review_coverage: int = Field(default=0, ge=0, le=100)


class NewAsset(BaseModel):
    id: str | None = Field(default=None, min_length=1, max_length=256)
    external_id: str | None = Field(default=None, max_length=1024)
    content: str | None = None
    json_metadata: dict[str, Any] | None = None
    priority: int = 0


class NewLabel(BaseModel):
    json_response: dict[str, Any]
    label_type: str = Field(default="DEFAULT", pattern="^(DEFAULT|REVIEW)$")
    author_id: str | None = None
    seconds_to_label: float | None = Field(default=None, ge=0)
    id: str | None = Field(default=None, min_length=1, max_length=256)


def create_app(runtime: Runtime) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime.start()
        yield

    app = FastAPI(title="plugin-runtime", version="0.1.0", lifespan=lifespan,
                  description="Runs event-triggered QA bots on labeling projects.")
    views = RunViews(runtime.store)
    settings = runtime.settings

    bearer = HTTPBearer(auto_error=False, description="The admin token (PLUGIN_RUNTIME_TOKEN)")

    def admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials if credentials is not None else ""
        if not given or not secrets.compare_digest(given.encode(), str(runtime.token).encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <PLUGIN_RUNTIME_TOKEN>; "
                                     "the CLI reads it from --token, PLUGIN_RUNTIME_TOKEN or --data-dir)")

    def handled(error: Exception, status: int) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status)

    app.add_exception_handler(RegistryError, lambda r, e: handled(e, e.status))  # type: ignore[arg-type, attr-defined]
    app.add_exception_handler(PlatformError, lambda r, e: handled(e, 404 if "does not exist" in str(e) else 409))
    app.add_exception_handler(PluginInvalid, lambda r, e: handled(e, 422))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:10]]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "pending_runs": runtime.pending_runs()}

    # Webhook intake ----------------------------------------------------------------------

    @app.post("/v1/events", status_code=202, tags=["events"],
              summary="Receive one recorded event, signed (Standard Webhooks)",
              openapi_extra={
                  "requestBody": {"required": True, "content": {"application/json": {"schema": {
                      "type": "object", "required": ["id", "type", "project_id"],
                      "description": "One recorded event (README: wire formats)"}}}},
                  "parameters": [{"in": "header", "name": n, "required": True, "schema": {"type": "string"}}
                                 for n in ("webhook-id", "webhook-timestamp", "webhook-signature")],
              },
              responses={200: {"description": "already stored: {\"duplicate\": true}, not processed again"},
                         401: {"description": "missing, wrong or stale signature"},
                         413: {"description": "body over the size limit"},
                         422: {"description": "not a valid event (detail says why)"},
                         429: {"description": "queue full; retry after Retry-After seconds"}})
    async def receive(request: Request) -> JSONResponse:
        body = await _body(request, settings.max_body_bytes)
        try:
            verify(runtime.webhook_secrets, request.headers, body)
        except SignatureError as error:
            raise HTTPException(401, str(error)) from None
        try:
            event = parse_event(body)
        except ValueError as error:
            raise HTTPException(422, f"invalid event: {error}") from None
        if runtime.dispatcher.pending() >= settings.max_queue:
            return JSONResponse({"detail": "the runtime is busy; retry later"}, status_code=429,
                                headers={"Retry-After": "5"})
        if runtime.dispatcher.pending(event["project_id"]) >= settings.max_queue_per_project:
            return JSONResponse({"detail": f"project {event['project_id']!r} has too many pending runs; retry later"},
                                status_code=429, headers={"Retry-After": "5"})
        stored = runtime.dispatcher.submit(event, source="webhook")
        if not stored:
            return JSONResponse({"id": event["id"], "duplicate": True}, status_code=200)
        return JSONResponse({"id": event["id"]}, status_code=202)

    @app.get("/v1/events", dependencies=[Depends(admin)], tags=["events"],
             summary="Export recorded events (JSON Lines), for dry-runs")
    def export(project_id: str = Query(min_length=1), source: str | None = None) -> PlainTextResponse:
        return PlainTextResponse(views.export(project_id, source), media_type="application/x-ndjson")

    # Plugins -----------------------------------------------------------------------------

    @app.get("/v1/plugins", dependencies=[Depends(admin)], tags=["plugins"])
    def plugins() -> list[dict[str, Any]]:
        return runtime.registry.plugins()

    @app.post("/v1/plugins/{name}/versions", status_code=202, dependencies=[Depends(admin)], tags=["plugins"],
              summary="Upload a version (zip body); create=true for a new plugin")
    async def upload(name: str, request: Request, create: bool = False,
                     limits: str | None = Query(default=None, description='JSON, e.g. {"memory_mb": 1024}')) -> dict[str, Any]:
        requested: dict[str, Any] = {}
        if limits:
            try:
                requested = json.loads(limits)
                if not isinstance(requested, dict):
                    raise ValueError("limits is a JSON object")
                runtime.sandboxes.limits(requested)
            except (ValueError, TypeError) as error:
                raise HTTPException(422, f"invalid limits: {error}") from None
        body = await _body(request, 20 * 1024 * 1024)
        source = load_archive(body, f"{name}.zip")
        return runtime.registry.upload(name, source, create=create, limits=requested)

    @app.get("/v1/plugins/{name}", dependencies=[Depends(admin)], tags=["plugins"])
    def plugin(name: str) -> dict[str, Any]:
        versions = runtime.registry.versions(name)
        current = next((p for p in runtime.registry.plugins() if p["name"] == name), None)
        return {**(current or {}), "versions": versions}

    @app.get("/v1/plugins/{name}/versions", dependencies=[Depends(admin)], tags=["plugins"])
    def versions(name: str) -> list[dict[str, Any]]:
        return runtime.registry.versions(name)

    @app.get("/v1/plugins/{name}/versions/{version}", dependencies=[Depends(admin)], tags=["plugins"])
    def version(name: str, version: int, wait: float = Query(default=0, ge=0, le=600)) -> dict[str, Any]:
        if wait:
            runtime.registry.wait(name, version, wait)
        return runtime.registry.version(name, version, with_log=True)

    @app.get("/v1/plugins/{name}/build-log", dependencies=[Depends(admin)], tags=["plugins"])
    def build_log(name: str, version: int | None = None) -> dict[str, Any]:
        info = runtime.registry.latest(name) if version is None else runtime.registry.version(name, version, with_log=True)
        return {"plugin": name, "version": info["version"], "status": info["status"],
                "build_error": info["build_error"], "build_log": info["build_log"]}

    @app.post("/v1/plugins/{name}/rollback", dependencies=[Depends(admin)], tags=["plugins"])
    def rollback(name: str, body: Rollback) -> dict[str, Any]:
        return runtime.registry.rollback(name, body.version)

    @app.delete("/v1/plugins/{name}", dependencies=[Depends(admin)], tags=["plugins"])
    def delete(name: str) -> dict[str, Any]:
        runtime.registry.delete(name)
        return {"deleted": name}

    @app.put("/v1/plugins/{name}/projects/{project_id}", dependencies=[Depends(admin)], tags=["plugins"])
    def activate(name: str, project_id: str) -> dict[str, Any]:
        changed = runtime.registry.activate(name, project_id)
        return {"plugin": name, "project_id": project_id, "active": True, "changed": changed}

    @app.delete("/v1/plugins/{name}/projects/{project_id}", dependencies=[Depends(admin)], tags=["plugins"])
    def deactivate(name: str, project_id: str) -> dict[str, Any]:
        changed = runtime.registry.deactivate(name, project_id)
        return {"plugin": name, "project_id": project_id, "active": False, "changed": changed}

    # Runs and logs -----------------------------------------------------------------------

    @app.get("/v1/runs", dependencies=[Depends(admin)], tags=["runs"])
    def runs(plugin: str | None = None,
             status: Literal["pending", "running", "succeeded", "failed", "dead", "skipped"] | None = None,
             project_id: str | None = None,
             limit: int = Query(default=100, ge=1, le=10_000),
             root_id: str | None = Query(default=None, description="runs of one webhook's chain of caused events")
             ) -> list[dict[str, Any]]:
        return views.runs(plugin=plugin, status=status, project_id=project_id, limit=limit, root_id=root_id)

    @app.get("/v1/runs/{run_id}", dependencies=[Depends(admin)], tags=["runs"])
    def run(run_id: str) -> dict[str, Any]:
        found = views.run(run_id)
        if found is None:
            raise HTTPException(404, f"run {run_id!r} does not exist")
        return found

    @app.post("/v1/runs/{run_id}/retry", dependencies=[Depends(admin)], tags=["runs"])
    def retry(run_id: str, live_version: bool = False) -> dict[str, Any]:
        try:
            return runtime.dispatcher.retry(run_id, live_version)
        except KeyError:
            raise HTTPException(404, f"run {run_id!r} does not exist") from None
        except ValueError as error:
            raise HTTPException(409, str(error)) from None

    @app.get("/v1/logs", dependencies=[Depends(admin)], tags=["runs"])
    def logs(plugin: str | None = None, project_id: str | None = None, after: int = 0,
             limit: int = Query(default=1000, ge=1, le=10_000)) -> dict[str, Any]:
        if plugin is not None:
            runtime.registry.plugin_row(runtime.store.read(), plugin)  # 404 for an unknown plugin
        return views.logs(plugin=plugin, project_id=project_id, after=after, limit=limit)

    # Embedded platform -------------------------------------------------------------------

    @app.get("/v1/projects", dependencies=[Depends(admin)], tags=["platform"])
    def projects() -> list[dict[str, Any]]:
        return runtime.platform.projects(runtime.store.read())

    @app.post("/v1/projects", status_code=201, dependencies=[Depends(admin)], tags=["platform"])
    def create_project(body: NewProject) -> dict[str, Any]:
        with runtime.store.write() as db:
            return runtime.platform.create_project(db, body.id, body.title, body.json_interface, body.input_type, {
                "minConsensusSize": body.min_consensus_size, "consensusTotCoverage": body.consensus_tot_coverage,
                "reviewCoverage": body.review_coverage})

    @app.get("/v1/projects/{project_id}", dependencies=[Depends(admin)], tags=["platform"])
    def project(project_id: str) -> dict[str, Any]:
        return runtime.platform.project(runtime.store.read(), project_id)

    @app.get("/v1/projects/{project_id}/assets", dependencies=[Depends(admin)], tags=["platform"])
    def assets(project_id: str) -> list[dict[str, Any]]:
        db = runtime.store.read()
        runtime.platform.project(db, project_id)
        return runtime.platform.assets(db, project_id)

    @app.post("/v1/projects/{project_id}/assets", status_code=201, dependencies=[Depends(admin)], tags=["platform"])
    def create_asset(project_id: str, body: NewAsset) -> dict[str, Any]:
        with runtime.store.write() as db:
            return runtime.platform.create_asset(db, project_id, {
                "id": body.id, "externalId": body.external_id, "content": body.content,
                "jsonMetadata": body.json_metadata or {}, "priority": body.priority})

    @app.get("/v1/projects/{project_id}/assets/{asset_id}", dependencies=[Depends(admin)], tags=["platform"])
    def asset(project_id: str, asset_id: str) -> dict[str, Any]:
        return runtime.platform.asset(runtime.store.read(), project_id, asset_id)

    @app.post("/v1/projects/{project_id}/assets/{asset_id}/labels", status_code=201, dependencies=[Depends(admin)],
              tags=["platform"], summary="Submit a label (DEFAULT emits onSubmit, REVIEW onReview)")
    def submit(project_id: str, asset_id: str, body: NewLabel) -> dict[str, Any]:
        import uuid

        label = {"id": body.id, "labelType": body.label_type, "jsonResponse": body.json_response,
                 "authorId": body.author_id, "secondsToLabel": body.seconds_to_label}
        def change(db) -> dict[str, Any]:
            return {**runtime.platform.submit_label(db, project_id, asset_id, label), "id": f"evt-{uuid.uuid4().hex[:16]}"}

        event = runtime.dispatcher.submit_change(change)
        return {"event_id": event["id"], "label": event["label"]}

    return app


async def _body(request: Request, limit: int) -> bytes:
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

