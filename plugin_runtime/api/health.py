"""``/healthz``: answers without a token, for probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from plugin_runtime.api.deps import RuntimeDep
from plugin_runtime.api.models import Health

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health)
def healthz(runtime: RuntimeDep) -> dict[str, Any]:
    return {"status": "ok", "pending_runs": runtime.pending_runs()}
