"""Pages from Jinja2 templates, every value escaped, with headers that keep them to this origin.

Plugins write the logs, errors, actions and ids the pages show: all of it is hostile text.
Autoescaping makes it text in the page, and the Content-Security-Policy runs no script but the
dashboard's own file (no inline script, no other origin), so an escape that was missed still
runs nothing; the pages also fetch nothing from another origin.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from plugin_runtime.statuses import RunStatus

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: The pages' headers: nothing from elsewhere, no framing, no caching of what an admin saw.
HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: The navigation, in order: (label, path).
NAVIGATION = (("Plugins", "/ui/plugins"), ("Runs", "/ui/runs"), ("Dead letters", "/ui/dead-letters"),
              ("Shadows", "/ui/shadows"), ("Platforms", "/ui/platforms"))


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _when(stamp: str | None) -> str:
    """A stored time (ISO 8601, UTC) as a reader takes it in: date and time to the second."""
    if not stamp:
        return "-"
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return stamp


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(duration=duration, when=_when, pretty=_pretty)
    environment.globals.update(navigation=NAVIGATION, statuses=[s.value for s in RunStatus])
    return environment


_ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    return _ENVIRONMENT.get_template(template).render(**context)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template rendered with ``context`` (and the request's path, for the navigation)."""
    return HTMLResponse(render(template, path=request.url.path, **context), status_code=status_code, headers=HEADERS)
