"""``/metrics``: the runtime's metrics for Prometheus, open unless ``PLUGIN_RUNTIME_METRICS_TOKEN``
sets a bearer token for it (the admin token is always accepted)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from plugin_runtime import metrics
from plugin_runtime.api.deps import RuntimeDep, Service
from plugin_runtime.errors import Unauthorized
from plugin_runtime.statuses import RunStatus
from plugin_runtime.store.codec import seconds_until
from plugin_runtime.store.console import Console

router = APIRouter(tags=["service"])
_console = Console()


# Prometheus' endpoint, not part of the API's document (README: Metrics and logs).
@router.get("/metrics", response_class=Response, include_in_schema=False)
def scrape(request: Request, runtime: RuntimeDep) -> Response:
    required = runtime.settings.metrics_token
    if required:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        accepted = [t for t in (required, runtime.token) if t]
        if scheme.lower() != "bearer" or not any(secrets.compare_digest(given.encode(), t.encode()) for t in accepted):
            raise Unauthorized("/metrics needs Authorization: Bearer <PLUGIN_RUNTIME_METRICS_TOKEN> (or the admin token)")
    return Response(request.app.state.metrics(), media_type=metrics.CONTENT_TYPE_LATEST)


def gauges(runtime: Service) -> metrics.Gauges:
    """The scrape-time gauges of ``runtime``: in-memory counts and indexed queries."""
    store = runtime.store

    def queued() -> dict[str, int]:
        return {row[0]: row[1] for row in store.runs.queued_by_project(store.read())}

    def oldest_pending_s() -> float:
        created = _console.oldest_pending_created(store.read())
        return 0.0 if created is None else max(0.0, -seconds_until(created))

    return metrics.Gauges(queued=queued, oldest_pending_s=oldest_pending_s, warm=runtime.sandboxes.warm,
                          dead=lambda: _console.count_status(store.read(), RunStatus.DEAD))
