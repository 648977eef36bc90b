"""The dashboard at ``/ui``, and the API's documentation at ``/docs``, served from this
origin only: pages rendered on the server (Jinja2), one stylesheet, one small script and the
favicon under ``/ui/static``, Swagger UI's files under ``/docs/assets``.

Nothing of the data shows without a session (``auth``); the static files, which hold none,
are served to anyone, so the login page has its style.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from plugin_runtime.api.deps import signed_in
from plugin_runtime.api.ui import auth, platforms, plugins, runs, shadows
from plugin_runtime.api.ui.render import STATIC, page
from plugin_runtime.api.ui.sessions import Sessions
from plugin_runtime.errors import LoginRequired

__all__ = ["install", "refusal_page", "wants_page"]

FAVICON = STATIC / "favicon.svg"
#: The title of a refusal's page, by status.
TITLES = {400: "Not a valid request", 401: "Not logged in", 403: "Refused", 404: "Not found",
          409: "Not possible now", 422: "Not a valid request", 429: "Too busy", 503: "Unavailable"}


def wants_page(request: Request) -> bool:
    """Whether a refusal should be a page: a browser asking for a dashboard page."""
    return request.url.path.startswith("/ui/") and "text/html" in request.headers.get("accept", "")


def refusal_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    answer = page(request, "message.html", status_code=status, title=TITLES.get(status, "Refused"), message=message,
                  signed_in=signed_in(request))
    answer.headers.update(headers or {})
    return answer


def install(app: FastAPI, session_hours: float) -> None:
    """Add the dashboard and ``/docs`` to ``app`` (created with ``docs_url=None``)."""
    app.state.sessions = Sessions(session_hours * 3600)
    for router in (auth.router, plugins.router, runs.router, shadows.router, platforms.router):
        app.include_router(router)
    app.add_exception_handler(LoginRequired, auth.login_required)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    swagger = Path(str(files("fastapi_offline").joinpath("static")))
    app.mount("/docs/assets", StaticFiles(directory=swagger), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # validatorUrl None: Swagger UI would otherwise send the document to an online validator.
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/ui/static/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/svg+xml")
