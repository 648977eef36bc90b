"""``plugin-runtime events send|export``."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click
import requests

from plugin_runtime.cli._common import (
    Progress, checked_url, client_options, fail, missing_here, settings, wait_for_runtime)
from plugin_runtime.errors import EventsFileError
from plugin_runtime.terminal import escape

RETRY_BUDGET_S = 30.0
#: How long --wait-for-runs polls an event's runs at most between two looks.
_POLL_MAX_S = 0.25


@click.group(short_help="Send recorded events, or export them for dry-runs.")
def events() -> None:
    """Send recorded events to the service, or export them for dry-runs."""


@events.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--url", envvar="PLUGIN_RUNTIME_URL", help="The service, default http://127.0.0.1:8400.")
@click.option("--secret", envvar="PLUGIN_RUNTIME_WEBHOOK_SECRET",
              help="Webhook secret (default: the data dir's; the first of several signs).")
@click.option("--data-dir", envvar="PLUGIN_RUNTIME_DATA_DIR", type=click.Path(file_okay=False),
              help="Data directory of a server on this machine (its webhook secret is read there).")
@click.option("--token", envvar="PLUGIN_RUNTIME_TOKEN", hidden=True,
              help="Accepted like every client command; the intake checks signatures, not the token.")
@click.option("--wait-for-runs", is_flag=True,
              help="After each event, wait until its runs, and those of the events they caused, are done: a "
                   "replay then sees the platform as it was when the event happened.")
@click.option("--wait-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds --wait-for-runs waits for one event's runs before it says so and goes on.")
def send(file: str, url: str | None, secret: str | None, data_dir: str | None, token: str | None,
         wait_for_runs: bool, wait_timeout: float) -> None:
    """Sign and post the events of FILE (JSON Lines) to the webhook intake. Goes on past
    failures; exits non-zero naming the events that were not acknowledged."""
    from plugin_runtime.recordings import read_events
    from plugin_runtime.webhooks import headers

    config = settings(data_dir)
    base = checked_url(url or config.client_url).rstrip("/")
    try:
        records = list(read_events(file))
    except EventsFileError as error:
        fail(error)
    wait_for_runtime(base, config.data_dir)  # a runtime that is starting writes its secret first
    keys = secret.split() if secret else config.webhook_secrets(create=False)
    if not keys:
        fail(f"no webhook secret: {missing_here(config.data_dir, 'webhook-secret', '--secret')}")
    key = keys[0]
    target = base + "/v1/events"
    session = requests.Session()
    sent, duplicates, failed = 0, 0, []
    with Progress() as progress:
        for number, recorded in enumerate(records, 1):
            progress.update(f"sending {number}/{len(records)}")
            if recorded.error is not None:
                reason = recorded.error.removeprefix(f"{file}:{recorded.line}: ")  # said once, as "line N"
                failed.append((recorded.event_id or f"line {recorded.line}", reason))
                continue
            body = recorded.raw  # the exact bytes of the line are signed and sent
            outcome = _post(session, target, key, recorded.event_id or "", body, headers)
            if outcome in (None, "duplicate"):
                sent += 1
                duplicates += outcome == "duplicate"
                if wait_for_runs:
                    progress.update(f"waiting for the runs of event {number}/{len(records)}")
                    unfinished = _wait_for_runs(session, base, key, recorded.event_id or "", wait_timeout)
                    if unfinished is not None:
                        progress.close()
                        click.echo(f"warning: {escape(unfinished)}", err=True)
            else:
                failed.append((recorded.event_id or f"line {recorded.line}", outcome))
    already = f" ({duplicates} already received: not processed again)" if duplicates else ""
    click.echo(f"{sent} event(s) acknowledged{already}, {len(failed)} not", err=True)
    if duplicates:
        # Replaying a file after `plugins update` is the usual way to meet this: say how to see the new version's actions.
        click.echo(f"an event is processed once per id; what a new version does with these: plugin-runtime dry-run "
                   f"PLUGIN_FOLDER --events {escape(shlex.quote(file))}", err=True)
    for event_id, reason in failed:
        click.echo(f"not acknowledged: {escape(f'{event_id}: {reason}')}", err=True)
    if any(reason.startswith("401") for _, reason in failed):
        click.echo("the runtime accepts only events signed with its webhook secret (the webhook-secret file of its "
                   "data directory): run this from the folder where `plugin-runtime serve` runs, or pass "
                   "--data-dir PATH or the right --secret", err=True)
    if failed:
        sys.exit(1)


def _wait_for_runs(session: requests.Session, base: str, secret: str, event_id: str, timeout: float) -> str | None:
    """Wait until the runs of one event (and of the events they caused) are done; None when they
    are, else what kept it from knowing. Asked signed with the webhook secret, as the event was
    sent: no admin token needed, and another project's runs do not count."""
    from plugin_runtime.client import segment
    from plugin_runtime.webhooks import headers

    url = f"{base}/v1/events/{segment(event_id)}/runs"
    deadline = time.monotonic() + timeout
    delay, pending = 0.05, None
    while True:
        try:
            response = session.get(url, headers=headers(secret, event_id, b""), timeout=30)
            if response.status_code != 200:
                return f"cannot wait for the runs of event {event_id}: {response.status_code}: {_detail(response)}"
            pending = response.json()["pending"]
            if pending == 0:
                return None
        except (requests.RequestException, ValueError, KeyError, TypeError):
            pass  # the runtime restarting, or a garbled answer: asked again until the deadline
        if time.monotonic() + delay > deadline:
            still = f"{pending} run(s)" if pending is not None else "its runs (the runtime did not answer)"
            return (f"event {event_id}: {still} not done after {timeout:g} s (--wait-timeout); going on without "
                    f"waiting for them (plugin-runtime runs list shows them)")
        time.sleep(delay)
        delay = min(delay * 1.5, _POLL_MAX_S)


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except (ValueError, AttributeError):
        return response.text[:200]


def _post(session: requests.Session, url: str, secret: str, event_id: str, body: bytes, sign) -> str | None:
    """None when acknowledged (202), "duplicate" for an id already stored (200), else the reason."""
    deadline = time.monotonic() + RETRY_BUDGET_S
    delay = 0.25
    while True:
        try:
            response = session.post(url, data=body, timeout=30,
                                    headers={"Content-Type": "application/json", **sign(secret, event_id, body)})
        except requests.ConnectionError as error:
            if time.monotonic() + delay > deadline:
                return f"connection failed for {RETRY_BUDGET_S:.0f} s ({error.__class__.__name__})"
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
            continue
        if response.status_code == 429 and time.monotonic() < deadline:
            time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), 5.0))
            continue
        if response.status_code == 202:
            return None
        if response.status_code == 200:
            return "duplicate"
        return f"{response.status_code}: {_detail(response)}"


@events.command()
@click.option("--project", "project_id", required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Default: stdout.")
@client_options
def export(client, project_id: str, output: str | None) -> None:
    """Write the project's recorded events (JSON Lines), ready for `plugin-runtime dry-run`."""
    response = client.get("/v1/events", params={"project_id": project_id}, expect_json=False)
    if output:
        try:
            Path(output).write_text(response.text, encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {output}: {error.strerror} (give -o a file in a folder that exists)")
        click.echo(f"{len(response.text.splitlines())} event(s) written to {output}", err=True)
    else:
        click.echo(response.text, nl=False)


def _with_record() -> None:
    from plugin_runtime.cli.record import record

    events.add_command(record)


_with_record()
COMMANDS = [events]
