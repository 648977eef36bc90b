"""Shadows: each candidate version running (or that ran) beside a live one, and what it would
have done: events seen and compared, those whose actions differ (with the differences), the
candidate's errors and timeouts, and the latency of both (``shadow_report``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from plugin_runtime.api.deps import RuntimeDep
from plugin_runtime.api.ui.auth import require_session
from plugin_runtime.api.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_session)])
#: Differences and failures shown per shadow (the CLI's shadow-report has them all).
DIFFERENCES, FAILURES = 10, 5


@router.get("/ui/shadows")
def shadows(request: Request, runtime: RuntimeDep) -> Response:
    return page(request, "shadows.html", reports=_reports(runtime))


def _reports(runtime: Any) -> list[dict[str, Any]] | None:
    """The newest shadow of each plugin and project; None for a runtime without shadows."""
    store = runtime.store
    if getattr(store, "shadows", None) is None:
        return None
    from plugin_runtime.shadow_report import report

    return [report(store, row, DIFFERENCES, FAILURES) for row in store.shadows.latest(store.read())]
