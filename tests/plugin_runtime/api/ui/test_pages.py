"""The dashboard's pages, read as a browser reads them: Plugins, Runs (filters, keyset pages,
live rows), a run, Dead letters (retry), Shadows, Platforms; plugin text shown as text; /docs
and the favicon served from this origin."""

from __future__ import annotations

import html
import io
import re
import zipfile

import pytest
import requests
from markupsafe import escape

from plugin_runtime.api.ui import render
from plugin_runtime.store.connections import Connection
from plugin_runtime.api.ui import runs as runs_page
from tests.plugin_runtime.api.ui.conftest import BOT, PROJECT, SCRIPT_IN_ERROR, SCRIPT_IN_LOG, Console, run_of, submit
from tests.plugin_runtime.api.workload import wait_for

#: Every attribute that makes a browser fetch something.
FETCHED = re.compile(r'''(?:src|href|action)\s*=\s*["']([^"']*)["']''', re.IGNORECASE)


def rows_of(text: str) -> list[str]:
    """The run ids the runs table shows, in order."""
    return re.findall(r'<td><a href="/ui/runs/([^"]+)">', text)


def test_the_runs_page_shows_every_run_newest_first_with_its_status_in_words(console: Console) -> None:
    session = console.login()
    text = session.get(f"{console.service.url}/ui/runs", timeout=30).text
    assert rows_of(text) == [console.dead, console.failed, console.succeeded]
    for word in ("succeeded", "failed", "dead"):
        assert f'<span class="status status-{word}">{word}</span>' in text
    assert 'data-live="/ui/runs/rows?"' in text  # the newest page updates itself
    for label in ("Plugins", "Runs", "Dead letters", "Shadows", "Platforms"):
        assert f">{label}</a>" in text


@pytest.mark.parametrize(("query", "expected"), [
    ({"status": "failed"}, "failed"), ({"status": "dead"}, "dead"), ({"plugin": "console-bot", "status": "succeeded"},
                                                                     "succeeded"),
    ({"project_id": PROJECT, "status": "failed"}, "failed"), ({"plugin": "nobody"}, None),
    ({"project_id": "proj-elsewhere"}, None), ({"plugin": "", "project_id": "", "status": ""}, "all")])
def test_the_runs_page_filters_by_plugin_project_and_status(console: Console, query: dict, expected: str | None) -> None:
    text = console.login().get(f"{console.service.url}/ui/runs", params=query, timeout=30).text
    wanted = {"failed": [console.failed], "dead": [console.dead], "succeeded": [console.succeeded], None: [],
              "all": [console.dead, console.failed, console.succeeded]}[expected]
    assert rows_of(text) == wanted
    if not wanted:
        assert "No run matches these filters." in text


def test_an_unknown_status_or_cursor_is_refused_with_a_page_that_says_why(console: Console) -> None:
    session = console.login()
    for query, reason in (({"status": "exploded"}, "unknown status"), ({"before": "x"}, "not a page cursor")):
        answer = session.get(f"{console.service.url}/ui/runs", params=query, headers={"Accept": "text/html"}, timeout=30)
        assert answer.status_code == 400 and reason in answer.text and "<h1>Not a valid request</h1>" in answer.text


def test_older_runs_are_one_page_after_another_without_gaps_or_repeats(console: Console,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_page, "PAGE", 2)
    session, url = console.login(), console.service.url
    first = session.get(f"{url}/ui/runs", timeout=30).text
    assert rows_of(first) == [console.dead, console.failed]
    older = html.unescape(re.search(r'<a rel="next" href="([^"]+)">Older runs</a>', first).group(1))
    second = session.get(f"{url}/ui/runs{older}", timeout=30).text
    assert rows_of(second) == [console.succeeded]
    assert "Older runs" not in second and "data-live" not in second  # an older page holds still


def test_a_failed_runs_page_shows_its_whole_error_and_plugin_text_as_text(console: Console) -> None:
    answer = console.login().get(f"{console.service.url}/ui/runs/{console.failed}", timeout=30)
    assert answer.status_code == 200
    text = answer.text
    error = run_of(console.service, "evt-fail")["error"]
    assert "Traceback" in error and SCRIPT_IN_ERROR in error
    assert f'<pre class="error" id="run-error">{escape(error)}</pre>' in text  # all of it, escaped
    assert escape(SCRIPT_IN_LOG) in text
    assert "<script>document.title" not in text and "<img src=x" not in text
    assert answer.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    assert answer.headers["cache-control"] == "no-store"


def test_a_runs_page_shows_its_event_actions_logs_duration_and_worker(console: Console) -> None:
    text = console.login().get(f"{console.service.url}/ui/runs/{console.succeeded}", timeout=30).text
    run = run_of(console.service, "evt-ok")
    assert "<dt>Event</dt><dd><code>evt-ok</code> (onSubmit, from webhook" in text
    assert "<td>add_to_review</td>" in text and '<span class="status status-applied">applied</span>' in text
    assert f"<dt>Duration</dt><dd>{render.duration(run['duration_ms'])}</dd>" in text
    row = console.service.runtime.store.runs.get(console.service.runtime.store.read(), run["id"])
    if "worker" in row.keys() and row["worker"]:  # recorded by the worker that claimed the run
        assert f"<dt>Worker</dt><dd>{escape(row['worker'])}</dd>" in text
    else:
        assert "<dt>Worker</dt><dd>this runtime on " in text and "(process sandbox)" in text
    assert "Logs (1 line)" in text and "asset-evt-ok" in text  # the event as received


def test_a_rejected_action_shows_with_its_reason(console: Console) -> None:
    service = console.service
    service.deploy("meddler", "from plugin_sdk import PluginCore\n\nclass PluginHandler(PluginCore):\n"
                              "    def on_submit(self, label, asset_id):\n"
                              "        self.kili.add_to_review(asset_ids=['asset-of-another-project'])\n",
                   project="proj-meddled")
    event = {"id": "evt-meddle", "type": "onSubmit", "project_id": "proj-meddled", "asset_id": "asset-m",
             "label": {"id": "label-m", "jsonResponse": {}}}
    assert service.post_event(event).status_code == 202
    service.settle()
    [run] = service.admin.get(f"{service.url}/v1/runs", params={"plugin": "meddler"}, timeout=30).json()
    text = console.login().get(f"{service.url}/ui/runs/{run['id']}", timeout=30).text
    assert '<span class="status status-rejected">rejected</span>' in text
    assert "asset-of-another-project" in text and "project" in text.split("status-rejected")[1][:400]


def test_dead_letters_list_dead_runs_and_retry_runs_one_again(console: Console) -> None:
    session, url = console.login(), console.service.url
    page = session.get(f"{url}/ui/dead-letters", timeout=30).text
    assert rows_of(page) == [console.dead]
    assert f'action="/ui/runs/{console.dead}/retry"' in page
    retried = session.post(f"{url}/ui/runs/{console.dead}/retry", data={"back": "/ui/dead-letters"},
                           allow_redirects=False, timeout=30)
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/ui/dead-letters?retried={console.dead}"
    console.service.settle()
    assert run_of(console.service, "evt-dead")["status"] == "succeeded"
    after = session.get(f"{url}{retried.headers['location']}", timeout=30).text
    assert f"Run {console.dead} is queued again." in after and rows_of(after) == []
    again = session.post(f"{url}/ui/runs/{console.dead}/retry", headers={"Accept": "text/html"}, timeout=30)
    assert again.status_code == 409 and "only failed, dead or skipped runs are retried" in again.text


def test_the_newest_rows_follow_runs_as_they_finish(console: Console) -> None:
    session, url = console.login(), console.service.url
    before = session.get(f"{url}/ui/runs/rows", timeout=30).text
    submit(console.service, "evt-live")
    wait_for(lambda: "evt-live" in session.get(f"{url}/ui/runs/rows", timeout=30).text, 30)
    console.service.settle()
    rows = session.get(f"{url}/ui/runs/rows", params={"status": "succeeded"}, timeout=30).text
    assert rows_of(rows)[0] == run_of(console.service, "evt-live")["id"] and rows != before
    status = session.get(f"{url}/ui/runs/{console.failed}/status", timeout=30).json()
    assert status == {"status": "failed", "queued": False}
    assert requests.get(f"{url}/ui/runs/rows", timeout=30).status_code == 401


def test_the_plugins_pages_show_versions_build_log_projects_and_runs(console: Console) -> None:
    session, url = console.login(), console.service.url
    listing = session.get(f"{url}/ui/plugins", timeout=30).text
    assert '<a href="/ui/plugins/console-bot">console-bot</a>' in listing and PROJECT in listing
    page = session.get(f"{url}/ui/plugins/console-bot", timeout=30).text
    assert '<span class="status status-active">active</span>' in page and "PluginHandler" in page
    assert f'href="/ui/runs?plugin=console-bot&amp;project_id={PROJECT}"' in page
    assert "Build of version 1" in page and console.failed in page
    assert session.get(f"{url}/ui/plugins/console-bot", params={"version": 9}, timeout=30).status_code == 404
    assert session.get(f"{url}/ui/plugins/nobody", timeout=30).status_code == 404


def test_shadows_show_what_a_candidate_would_have_done(console: Console) -> None:
    session, service = console.login(), console.service
    empty = session.get(f"{service.url}/ui/shadows", timeout=30).text
    assert "<h1>Shadows</h1>" in empty and "No shadow has run yet" in empty
    candidate = BOT.replace("add_to_review", "send_back_to_queue").replace(repr(SCRIPT_IN_ERROR), repr("<b>candidate</b> failed"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", candidate)
    uploaded = service.admin.post(f"{service.url}/v1/plugins/console-bot/versions", params={"candidate": "true"},
                                  data=buffer.getvalue(), timeout=60)
    assert uploaded.status_code == 202, uploaded.text
    version = uploaded.json()["version"]
    assert service.runtime.registry.wait("console-bot", version, 60)["status"] != "deploying"
    started = service.admin.put(f"{service.url}/v1/plugins/console-bot/shadows/{PROJECT}", json={"version": version},
                                timeout=30)
    assert started.status_code == 200, started.text
    submit(service, "evt-shadowed")
    submit(service, "evt-shadow-fails", FAIL=True)
    wait_for(lambda: service.admin.get(f"{service.url}/v1/shadows", timeout=30).json()["shadows"][0]["events"]
             ["compared"] == 2, 60)
    text = session.get(f"{service.url}/ui/shadows", timeout=30).text
    assert f"console-bot</a> version {version} beside version 1 on {PROJECT}" in text
    assert "2 seen, 2 compared, <strong>1 differing</strong>" in text and "evt-shadowed" in text
    assert "send_back_to_queue" in text and "add_to_review" in text
    assert "&lt;b&gt;candidate&lt;/b&gt; failed" in text and "<b>candidate</b>" not in text
    service.admin.delete(f"{service.url}/v1/plugins/console-bot/shadows", timeout=30)


def test_platforms_show_connections_and_the_embedded_projects(console: Console) -> None:
    session, url, store = console.login(), console.service.url, console.service.runtime.store
    before = session.get(f"{url}/ui/platforms", timeout=30).text
    assert "No project is connected to a platform of its own" in before
    assert "<h2>Embedded platform</h2>" in before and f'<a href="/ui/runs?project_id={PROJECT}">' in before
    connection = Connection(project_id="proj-ls", kind="label-studio",
                            config={"url": "http://127.0.0.1:8080", "project": 7}, secret="webhook-secret-value",
                            credentials={"token": "label-studio-token-value"}, created_at="2026-01-01T00:00:00Z",
                            updated_at="2026-01-01T00:00:00Z")
    with store.write() as db:
        store.connections.put(db, connection)
    try:
        text = session.get(f"{url}/ui/platforms", timeout=30).text
    finally:
        with store.write() as db:
            store.connections.remove(db, "proj-ls")
    assert "<td>proj-ls</td>" in text and "<td>label-studio</td>" in text and "http://127.0.0.1:8080" in text
    assert "webhook-secret-value" not in text and "label-studio-token-value" not in text


def test_pages_fetch_nothing_from_another_origin(console: Console) -> None:
    session, url = console.login(), console.service.url
    for path in ("/ui/login", "/ui/runs", f"/ui/runs/{console.failed}", "/ui/plugins/console-bot", "/ui/dead-letters",
                 "/ui/shadows", "/ui/platforms", "/docs"):
        text = session.get(url + path, timeout=30).text
        for target in FETCHED.findall(text):
            assert target.startswith(("/", "?", "#")) and not target.startswith("//"), (path, target)
    docs = session.get(f"{url}/docs", timeout=30).text
    assert "/docs/assets/swagger-ui-bundle.js" in docs and '"validatorUrl": null' in docs
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/ui/static/app.js",
                  "/ui/static/app.css", "/ui/static/favicon.svg", "/favicon.ico"):
        assert requests.get(url + asset, timeout=30).status_code == 200, asset
    assert requests.get(f"{url}/redoc", timeout=30).status_code == 404
