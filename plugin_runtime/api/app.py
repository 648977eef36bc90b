"""The application: routers, and one table from the kind of an error to its HTTP status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from plugin_runtime import metrics as runtime_metrics
from plugin_runtime.api import connections, events, health, metrics, platform, plugins, runs, shadows, ui
from plugin_runtime.api.deps import Service
from plugin_runtime.errors import (
    Busy,
    Conflict,
    Forbidden,
    NotFound,
    PluginInvalid,
    Refused,
    PlatformUnavailable,
    StoreUnavailable,
    Unauthorized,
)
from plugin_runtime.views import RunViews

#: The status of each kind of refusal, whichever module raised it. A class not listed answers
#: with the status of its nearest listed base (PluginInvalid: 422, not Refused's 400).
STATUS: dict[type[Exception], int] = {
    Refused: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PluginInvalid: 422,
    Busy: 429,
    PlatformUnavailable: 502,
    StoreUnavailable: 503,
}


def create_app(runtime: Service) -> FastAPI:
    """The HTTP API of ``runtime``, which it starts (resumes its work) when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield

    # /docs is the dashboard's (served from this origin, no CDN); no /redoc.
    app = FastAPI(title="plugin-runtime", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Runs event-triggered QA bots on labeling projects.")
    app.state.runtime = runtime
    app.state.views = RunViews(runtime.store)
    app.state.metrics = runtime_metrics.exposition(metrics.gauges(runtime))
    for router in (health.router, events.router, plugins.router, runs.router, platform.router, metrics.router,
                   shadows.router, connections.router):
        app.include_router(router)
    ui.install(app, runtime.settings.session_hours)
    for kind, status in STATUS.items():
        app.add_exception_handler(kind, _answer(status))
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    return app


def status_of(error: Exception) -> int:
    """The HTTP status a refusal is answered with (500: not a refusal)."""
    return next((STATUS[kind] for kind in type(error).__mro__ if kind in STATUS), 500)


def _answer(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def answer(request: Request, error: Exception) -> Response:
        headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Busy) else None
        if ui.wants_page(request):
            return ui.refusal_page(request, status, str(error), headers)
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    return answer


async def _invalid(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's validation errors as one readable ``detail``, like every other refusal."""
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:10]]
    if ui.wants_page(request):
        return ui.refusal_page(request, 422, "; ".join(problems))
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
