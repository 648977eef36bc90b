"""``plugin-runtime demo``: the main job, end to end on the embedded platform.

Starts the runtime on 127.0.0.1, creates the invoice project and its assets, uploads and
activates the invoice QA bot, replays its recorded events through the signed webhook, and
prints the issues, metadata and statuses that resulted.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import click

from plugin_runtime.cli._common import Progress, fail
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.statuses import RunStatus, VersionStatus
from plugin_runtime.terminal import escape

#: The invoice QA bot and its recorded events, shipped in the package (an installed wheel has no
#: example_plugins/): a copy of example_plugins/invoice_qa that a test keeps identical.
EXAMPLE = Path(__file__).resolve().parents[1] / "demo_data" / "invoice_qa"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _step(message: str) -> None:
    click.echo(click.style(f"==> {message}", bold=True), err=True)


@click.command(short_help="The invoice QA bot end to end, with the result.")
@click.option("--plugin", "plugin_path", type=click.Path(exists=True), default=str(EXAMPLE), show_default=True)
@click.option("--events", "events_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--sandbox", type=click.Choice(["docker", "process"]), default="docker", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Default: a fresh temporary directory.")
@click.option("--keep-serving", is_flag=True, help="Keep the runtime running afterwards (Ctrl-C stops it).")
def demo(plugin_path: str, events_path: str | None, sandbox: str, data_dir: str | None, keep_serving: bool) -> None:
    """Run the invoice QA bot on recorded events through the runtime, and show the result."""
    import uvicorn

    from plugin_runtime import logs
    from plugin_runtime.api import create_app
    from plugin_runtime.client import Client
    from plugin_runtime.config import Settings
    from plugin_runtime.recordings import read_events
    from plugin_runtime.server import Runtime

    events_file = Path(events_path or Path(plugin_path) / "events.jsonl")
    folder = Path(data_dir or tempfile.mkdtemp(prefix="plugin-runtime-demo-"))
    settings = Settings(data_dir=folder, port=_free_port(), sandbox=sandbox)
    # The runtime's log goes to runtime.log in the data directory; stderr keeps the demo's story,
    # with only the runtime's warnings and errors in it.
    detach_log = logs.configure(folder, settings.log_level, stderr_level="WARNING")
    try:
        runtime = Runtime(settings)
    except PluginRuntimeError as error:
        fail(error)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=settings.port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = settings.client_url
        _step(f"runtime started on {url} (data in {folder}, sandbox {sandbox})")
        client = Client(url, runtime.token)
        recorded = [r for r in read_events(events_file) if r.event is not None and r.error is None]
        _prepare_platform(client, recorded)
        version = _deploy(client, plugin_path, sandbox)
        projects = sorted({r.event["project_id"] for r in recorded if r.event is not None})
        for project_id in projects:
            client.request("PUT", f"/v1/plugins/invoice-qa/projects/{project_id}")
        _step(f"invoice-qa v1 active on {', '.join(projects)}; sending its {len(recorded)} recorded events as "
              "signed webhooks, each once the runs of the one before are done")
        _replay(client, url, runtime.webhook_secrets[0], recorded)
        _step("result")
        _explain(client, recorded, projects, version["subscriptions"])
        _show(client, projects)
        if keep_serving:
            _step(f"serving on {url} (token in {folder / 'token'}); Ctrl-C to stop")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except PluginRuntimeError as error:
        fail(error, 1)
    finally:
        server.should_exit = True
        time.sleep(0.2)
        runtime.close()
        detach_log()
        if data_dir is None and not keep_serving:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _prepare_platform(client, recorded) -> None:
    """Create the projects and assets the events refer to, from their context."""
    created_projects, created_assets = set(), set()
    for item in recorded:
        event = item.event
        context = event.get("context") or {}
        project_id = event["project_id"]
        if project_id not in created_projects:
            project = context.get("project") or {}
            client.post("/v1/projects", json={"id": project_id, "title": project.get("title"),
                                              "json_interface": project.get("jsonInterface")})
            created_projects.add(project_id)
        asset_id = event.get("asset_id")
        if asset_id and asset_id not in created_assets:
            asset = context.get("asset") or {}
            client.post(f"/v1/projects/{project_id}/assets", json={
                "id": asset_id, "external_id": asset.get("externalId"), "json_metadata": asset.get("jsonMetadata")})
            created_assets.add(asset_id)
    _step(f"created {len(created_projects)} project(s) and {len(created_assets)} asset(s) on the embedded platform")


def _deploy(client, plugin_path: str, sandbox: str) -> dict:
    from plugin_runtime.source import load_source

    doing = "building its image" if sandbox == "docker" else "checking and loading it once: no image as processes"
    _step(f"uploading {plugin_path} as invoice-qa ({doing})")
    source = load_source(plugin_path)
    version = client.post("/v1/plugins/invoice-qa/versions", params={"create": "true"}, data=source.archive())
    started = time.monotonic()
    with Progress("    building...") as progress:
        while version["status"] == VersionStatus.DEPLOYING:
            progress.update(f"    building... {time.monotonic() - started:.0f} s")
            version = client.get("/v1/plugins/invoice-qa/versions/1", params={"wait": 1})
    if version["status"] != VersionStatus.ACTIVE:
        fail(f"the plugin failed to deploy: {version['build_error']}", 1)
    return version


def _replay(client, url: str, secret: str, recorded) -> None:
    from plugin_runtime.webhooks import headers

    with Progress() as progress:
        for number, item in enumerate(recorded, 1):
            progress.update(f"    {number}/{len(recorded)} events sent")
            response = client.session.post(f"{url}/v1/events", data=item.raw,
                                           headers=headers(secret, item.event["id"], item.raw))
            if response.status_code not in (200, 202):
                fail(f"event {item.event['id']} refused: {response.status_code} {response.text}", 1)
            # As on a live platform, each event's effects land before the next label arrives.
            _wait_for_runs(client)


def _wait_for_runs(client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/healthz")["pending_runs"] == 0:
            return
        time.sleep(0.1)
    click.echo("warning: some runs are still pending", err=True)


def _explain(client, recorded, projects: list[str], subscriptions: list[str]) -> None:
    """The numbers, adding up: events sent and caused, runs, and the events that ran nothing."""
    sent = [item.event for item in recorded]
    caused = [event for project_id in projects for event in _stored_events(client, project_id) if event.get("cause")]
    runs = client.get("/v1/runs", params={"limit": 10_000})
    statuses = Counter(run["status"] for run in runs)
    shown = (RunStatus.SUCCEEDED, RunStatus.FAILED)
    others = "".join(f", {n} {s}" for s, n in sorted(statuses.items()) if s not in shown)
    click.echo(f"events: {len(sent)} sent ({_by_type(sent)})"
               + (f", {len(caused)} caused by the bot's actions ({_by_type(caused)})" if caused else ""))
    succeeded, failed = statuses[RunStatus.SUCCEEDED], statuses[RunStatus.FAILED]
    click.echo(f"runs: {len(runs)} ({succeeded} succeeded, {failed} failed{others}): "
               f"one per event of a type the bot has a hook for ({', '.join(subscriptions)})")
    with_run = {run["event_id"] for run in runs}
    idle = [event for event in sent + caused if event["id"] not in with_run]
    if not idle:
        return
    no_hook = [event for event in idle if event["type"] not in subscriptions]
    if no_hook:
        click.echo(f"no run for {len(no_hook)} event(s) of types invoice-qa has no hook for: {_by_origin(no_hook)}")
    if len(no_hook) < len(idle):
        other = [event for event in idle if event["type"] in subscriptions]
        click.echo(f"no run for: {_by_origin(other)} (see plugin-runtime runs list and the runtime's log)")


def _by_origin(events: list[dict]) -> str:
    """``onReview (1 sent), onSendBackToQueue (4 caused)``."""
    counts = Counter((event["type"], "caused" if event.get("cause") else "sent") for event in events)
    return ", ".join(f"{kind} ({count} {origin})" for (kind, origin), count in counts.items())


def _stored_events(client, project_id: str) -> list[dict]:
    text = client.get("/v1/events", params={"project_id": project_id}, expect_json=False).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _by_type(events: list[dict]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in Counter(event["type"] for event in events).items())


def _show(client, projects: list[str]) -> None:
    for project_id in projects:
        rows = client.get(f"/v1/projects/{project_id}/assets")
        click.echo(f"\nproject {project_id}")
        header = f"{'ASSET':10} {'EXTERNAL ID':18} {'STATUS':10} {'ACCURACY':>8}  ISSUES"
        click.echo(header)
        click.echo("-" * len(header))
        for asset in rows:
            accuracy = (asset.get("jsonMetadata") or {}).get("accuracy")
            issues = _issue_lines(asset)
            first = issues[0] if issues else "-"
            click.echo(f"{asset['id']:10} {asset.get('externalId') or '-':18} {asset['status']:10} "
                       f"{'-' if accuracy is None else f'{accuracy:.0f}%':>8}  {first}")
            for more in issues[1:]:
                click.echo(f"{'':52}{more}")
    click.echo("\nACCURACY: the share of the bot's rules that the asset's latest label passes.\n"
               "ISSUES: 'open' until a newer label passes every rule; the bot then marks the issues it opened\n"
               "'solved' (a bot that leaves its issues open shows them 'resolved by the next label').")
    sys.stdout.flush()


def _issue_lines(asset: dict) -> list[str]:
    """Each issue, open or resolved by a newer label of the same kind that got no issue."""
    from plugin_runtime.cli.platform import resolved_by

    lines = []
    for issue in asset.get("issues") or []:
        text = escape(str(issue["text"]))
        newer = resolved_by(asset, issue)
        if newer:
            lines.append(f"resolved by the next label ({escape(newer)}): {text}")
        else:
            lines.append(f"{str(issue.get('status') or 'open').lower()}: {text}")
    return lines


COMMANDS = [demo]
