"""Logging in to the dashboard with the admin token, and out; the check every page makes.

The login form posts the token once; the server answers with a session cookie (a random id,
HttpOnly, SameSite=Strict, Secure over HTTPS) and the token is never stored in the browser.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from plugin_runtime.api.deps import SESSION_COOKIE, RuntimeDep, check_same_origin, read_body, signed_in
from plugin_runtime.api.ui.render import HEADERS, page
from plugin_runtime.api.ui.sessions import Sessions
from plugin_runtime.errors import LoginRequired

router = APIRouter(include_in_schema=False)

#: A login form's body: a token, a path to go back to.
MAX_FORM_BYTES = 8 * 1024
HOME = "/ui/runs"


def require_session(request: Request) -> None:
    """Pages answer only a live session: otherwise the login page, then back here."""
    if not signed_in(request):
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))


async def login_required(request: Request, error: Exception) -> Response:
    """A page asked for without a session: to the login form, which comes back to it."""
    return RedirectResponse(f"/ui/login?next={quote(str(error), safe='')}", status_code=303, headers=HEADERS)


async def form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each), within a small size."""
    body = await read_body(request, MAX_FORM_BYTES)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}


def local_path(target: str | None, default: str = HOME) -> str:
    """``target`` when it is a dashboard path of this server, else ``default``: a login or a
    retry never sends the browser to another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target \
            and all(c.isprintable() for c in target):
        return target
    return default


@router.get("/ui")
@router.get("/ui/")
def home(request: Request) -> Response:
    require_session(request)
    return RedirectResponse(HOME, status_code=303, headers=HEADERS)


@router.get("/ui/login")
def login_form(request: Request, next: str = HOME) -> Response:
    if signed_in(request):
        return RedirectResponse(local_path(next), status_code=303, headers=HEADERS)
    return page(request, "login.html", next=local_path(next), error=None, signed_in=False)


@router.post("/ui/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    check_same_origin(request)
    sessions: Sessions = request.app.state.sessions
    fields = await form(request)
    given, target = fields.get("token", ""), local_path(fields.get("next"))
    client = request.client.host if request.client else ""
    if sessions.throttled(client):
        return page(request, "login.html", status_code=429, next=target, signed_in=False,
                    error="Too many wrong tokens from this address in the last minute: wait a minute, then try again.")
    # compare_digest: the time taken says nothing of how much of the token was right.
    if not given or not runtime.token or not secrets.compare_digest(given.encode(), runtime.token.encode()):
        sessions.failed(client)
        return page(request, "login.html", status_code=401, next=target, signed_in=False,
                    error="That is not the admin token. It is PLUGIN_RUNTIME_TOKEN, or the file token in the "
                          "runtime's data directory.")
    answer = RedirectResponse(target, status_code=303, headers=HEADERS)
    answer.set_cookie(SESSION_COOKIE, sessions.open(), max_age=int(sessions.lifetime_s), path="/", httponly=True,
                      samesite="strict", secure=request.url.scheme == "https")
    return answer


@router.post("/ui/logout")
def logout(request: Request) -> Response:
    check_same_origin(request)
    request.app.state.sessions.close(request.cookies.get(SESSION_COOKIE))
    answer = RedirectResponse("/ui/login", status_code=303, headers=HEADERS)
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                         secure=request.url.scheme == "https")
    return answer
