"""The dashboard's login: a form taking the admin token, an HttpOnly SameSite=Strict session
cookie holding a random id, logout; nothing of the data without a session or the bearer token;
cross-site requests carrying the cookie refused."""

from __future__ import annotations

import re

import requests
from fastapi.routing import APIRoute

from plugin_runtime.api.deps import SESSION_COOKIE
from plugin_runtime.api.ui import auth, platforms, plugins, runs, shadows
from plugin_runtime.api.ui.sessions import MAX_FAILURES_PER_MINUTE, Sessions
from tests.plugin_runtime.api.ui.conftest import Console


def test_no_page_and_no_api_answer_shows_anything_without_a_session_or_the_token(console: Console) -> None:
    url = console.service.url
    pages = sorted({route.path for module in (auth, plugins, runs, shadows, platforms) for route in module.router.routes
                    if isinstance(route, APIRoute) and "GET" in route.methods and route.path != "/ui/login"})
    assert len(pages) == 11, pages
    secrets = ("console-bot", console.succeeded, console.failed, console.dead, "proj-console")
    for cookie in ({}, {SESSION_COOKIE: "forged-session-id"}, {SESSION_COOKIE: console.service.runtime.token}):
        for path in pages:
            filled = re.sub(r"\{run_id\}", console.failed, path).replace("{name}", "console-bot")
            answer = requests.get(url + filled, cookies=cookie, allow_redirects=False, timeout=30)
            assert answer.status_code in (303, 401), (filled, answer.status_code)
            if answer.status_code == 303:
                assert answer.headers["location"].startswith("/ui/login?next=%2Fui"), answer.headers
            assert not any(secret in answer.text for secret in secrets), (filled, answer.text)
        api = requests.get(f"{url}/v1/runs", cookies=cookie, timeout=30)
        assert api.status_code == 401 and console.failed not in api.text


def test_login_keeps_a_random_session_id_in_an_httponly_samesite_strict_cookie(console: Console) -> None:
    url, token = console.service.url, console.service.runtime.token
    form = requests.get(f"{url}/ui/login", timeout=30)
    assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text
    answer = requests.post(f"{url}/ui/login", data={"token": token, "next": "/ui/plugins"},
                           headers={"Origin": url}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/plugins"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert token not in str(answer.headers)
    value = answer.cookies[SESSION_COOKIE]
    assert len(value) >= 40
    runs = requests.get(f"{url}/ui/runs", cookies={SESSION_COOKIE: value}, timeout=30)
    assert runs.status_code == 200 and console.failed in runs.text
    # The dashboard's own fetches: the API takes the session too.
    api = requests.get(f"{url}/v1/runs", cookies={SESSION_COOKIE: value}, timeout=30)
    assert api.status_code == 200 and console.failed in api.text


def test_a_wrong_token_gets_the_form_again_with_the_reason_and_no_cookie(console: Console) -> None:
    url = console.service.url
    answer = requests.post(f"{url}/ui/login", data={"token": "not-the-token"}, headers={"Origin": url},
                           allow_redirects=False, timeout=30)
    assert answer.status_code == 401
    assert "That is not the admin token" in answer.text and 'name="token"' in answer.text
    assert "set-cookie" not in answer.headers


def test_logins_fail_for_a_minute_after_many_wrong_tokens_from_that_address_only() -> None:
    sessions = Sessions(lifetime_s=60)
    for _ in range(MAX_FAILURES_PER_MINUTE - 1):
        sessions.failed("203.0.113.9")
    assert not sessions.throttled("203.0.113.9")
    sessions.failed("203.0.113.9")
    assert sessions.throttled("203.0.113.9")
    # Counted for everyone, anyone's wrong tokens kept the admin out of the dashboard.
    assert not sessions.throttled("192.0.2.1")


def test_the_form_refuses_an_address_that_sent_too_many_wrong_tokens(console: Console) -> None:
    url, token = console.service.url, console.service.runtime.token
    sessions: Sessions = console.service.server.config.app.state.sessions
    for _ in range(MAX_FAILURES_PER_MINUTE):
        sessions.failed("127.0.0.1")
    try:
        answer = requests.post(f"{url}/ui/login", data={"token": token}, headers={"Origin": url},
                               allow_redirects=False, timeout=30)
        assert answer.status_code == 429 and "from this address" in answer.text
    finally:
        sessions._failures.clear()


def test_a_session_ends_when_it_expires_or_logs_out() -> None:
    assert not Sessions(lifetime_s=0).valid(Sessions(lifetime_s=0).open())
    sessions = Sessions(lifetime_s=60)
    session_id = sessions.open()
    assert sessions.valid(session_id) and not sessions.valid(session_id + "x") and not sessions.valid(None)
    sessions.close(session_id)
    assert not sessions.valid(session_id)


def test_logout_ends_the_session_on_the_server(console: Console) -> None:
    session = console.login()
    value = session.cookies[SESSION_COOKIE]
    out = session.post(f"{console.service.url}/ui/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    # The cookie a thief kept is dead too.
    again = requests.get(f"{console.service.url}/ui/runs", cookies={SESSION_COOKIE: value}, allow_redirects=False,
                         timeout=30)
    assert again.status_code == 303
    assert requests.get(f"{console.service.url}/v1/runs", cookies={SESSION_COOKIE: value}, timeout=30).status_code == 401


def test_a_request_that_changes_something_with_the_cookie_must_come_from_the_dashboard(console: Console) -> None:
    url, failed = console.service.url, console.failed
    session = console.login()
    cookie = {SESSION_COOKIE: session.cookies[SESSION_COOKIE]}
    for origin in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {"Origin": "null"}, {}):
        for path in (f"/v1/runs/{failed}/retry", f"/ui/runs/{failed}/retry"):
            answer = requests.post(url + path, cookies=cookie, headers=origin, allow_redirects=False, timeout=30)
            assert answer.status_code == 403, (path, origin, answer.text)
            assert "dashboard's own pages" in answer.text
    stolen = requests.post(f"{url}/ui/logout", cookies=cookie, headers={"Origin": "http://evil.example"}, timeout=30)
    assert stolen.status_code == 403
    assert console.service.admin.get(f"{url}/v1/runs/{failed}", timeout=30).json()["status"] == "failed"
    # Reading is no change: allowed with the cookie alone, from anywhere the browser sends it.
    assert requests.get(f"{url}/v1/runs/{failed}", cookies=cookie, headers={"Origin": "http://evil.example"},
                        timeout=30).status_code == 200


def test_the_login_never_sends_the_browser_elsewhere(console: Console) -> None:
    url, token = console.service.url, console.service.runtime.token
    for target, expected in (("//evil.example/ui/", "/ui/runs"), ("https://evil.example/", "/ui/runs"),
                             ("/ui/\\evil", "/ui/runs"), ("/ui/dead-letters", "/ui/dead-letters")):
        answer = requests.post(f"{url}/ui/login", data={"token": token, "next": target}, headers={"Origin": url},
                               allow_redirects=False, timeout=30)
        assert answer.headers["location"] == expected, target
    refused = requests.post(f"{url}/ui/login", data={"token": token}, headers={"Origin": "http://evil.example"},
                            allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
