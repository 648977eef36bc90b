"""Shadows: each candidate version running beside a live one, and what it would have done."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from plugin_runtime.api.ui.auth import require_session
from plugin_runtime.api.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_session)])


@router.get("/ui/shadows")
def shadows(request: Request) -> Response:
    return page(request, "shadows.html", reports=None)
