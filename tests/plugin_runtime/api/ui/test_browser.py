"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright's
Python package with ``executable_path``: no browser download): log in, see a plugin and its
runs, open a failed run and read its error, retry a dead letter, watch a run appear live, and
read /docs; every request the pages make is recorded, and none leaves the runtime's origin."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_runtime.api.ui.conftest import SCRIPT_IN_ERROR, SCRIPT_IN_LOG, Console, open_console, run_of, submit
from tests.plugin_runtime.api.workload import wait_for

pytestmark = pytest.mark.browser
#: Playwright waits at most this long for a page or an element (a loaded machine is slow).
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The dashboard's service on SQLite alone: the browser sees the same pages on either store."""
    yield from open_console(tmp_path_factory, None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright; fails without it (skips with
    ``PLUGIN_RUNTIME_SKIP_BROWSER=1``)."""
    path = os.environ.get("PLUGIN_RUNTIME_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = None if Path(path).exists() else f"no Chromium at {path} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("PLUGIN_RUNTIME_SKIP_BROWSER") == "1":
            pytest.skip(problem)
        pytest.fail(problem, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, console: Console):
    """A fresh browser context; every request it makes is kept in ``page.requests``, and one for
    another origin is refused before it leaves."""
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(WAIT_MS)
    seen: list[str] = []

    def record(route, request) -> None:
        seen.append(request.url)
        if request.url.startswith(console.service.url + "/"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", record)
    tab = context.new_page()
    tab.requests = seen
    yield tab
    context.close()
    outside = [url for url in seen if not url.startswith(console.service.url + "/")]
    assert outside == [], f"the dashboard asked for {outside}"
    assert seen, "no request was recorded"


def log_in(page, console: Console) -> None:
    page.goto(f"{console.service.url}/ui")
    page.wait_for_url("**/ui/login?next=*")
    page.fill("input[name=token]", console.service.runtime.token)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/runs")


def test_log_in_see_a_plugin_and_its_runs_and_read_a_failed_runs_error(page, console: Console, tmp_path: Path) -> None:
    log_in(page, console)
    assert page.title() == "Runs · plugin-runtime"
    page.click("nav >> text=Plugins")
    page.click("text=console-bot")
    page.wait_for_url("**/ui/plugins/console-bot")
    assert "active" in page.inner_text("table")
    latest = page.inner_text("table.runs")
    assert console.succeeded in latest and console.failed in latest
    page.click("nav >> text=Runs")
    page.select_option("select[name=status]", "failed")
    page.click("text=Filter")
    page.wait_for_url("**/ui/runs?*status=failed*")
    page.click(f"text={console.failed}")
    page.wait_for_url(f"**/ui/runs/{console.failed}")
    error = page.inner_text("#run-error")
    assert error == run_of(console.service, "evt-fail")["error"] and SCRIPT_IN_ERROR in error
    assert SCRIPT_IN_LOG in page.inner_text("table.logs")
    # The hostile text stayed text: no script ran, no element came from it.
    assert page.title().startswith("Run ") and page.locator("main img").count() == 0
    # For a person to look at (PLUGIN_RUNTIME_SCREENSHOTS=folder keeps it).
    page.screenshot(path=str(Path(os.environ.get("PLUGIN_RUNTIME_SCREENSHOTS", tmp_path)) / "dashboard-run.png"),
                    full_page=True)


def test_retry_a_dead_letter(page, console: Console) -> None:
    log_in(page, console)
    page.click("nav >> text=Dead letters")
    assert console.dead in page.inner_text("table.runs")
    page.click("button:has-text('Retry')")
    page.wait_for_url("**/ui/dead-letters?retried=*")
    assert f"Run {console.dead} is queued again." in page.inner_text(".notice")
    wait_for(lambda: run_of(console.service, "evt-dead")["status"] == "succeeded", 60)
    page.goto(f"{console.service.url}/ui/runs/{console.dead}")
    assert "succeeded" in page.inner_text("h1")


def test_runs_appear_on_the_runs_page_as_they_finish(page, console: Console) -> None:
    log_in(page, console)
    page.evaluate("window.loadedOnce = true")
    submit(console.service, "evt-browser-live")
    console.service.settle()
    live = run_of(console.service, "evt-browser-live")["id"]
    page.wait_for_selector(f"#runs-rows >> text={live}")
    assert page.evaluate("window.loadedOnce") is True  # the rows changed, the page was not reloaded


def test_docs_render_offline(page, console: Console) -> None:
    page.goto(f"{console.service.url}/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert "/v1/events" in page.inner_text(".swagger-ui")
    assert page.locator("link[rel='shortcut icon']").get_attribute("href") == "/ui/static/favicon.svg"
    assert f"{console.service.url}/docs/assets/swagger-ui-bundle.js" in page.requests
