"""``plugin-runtime plugins ...``: upload, update, list, versions, rollback, delete, activate,
deactivate, status, build-log, logs."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from plugin_runtime.cli._common import (
    Progress, client_options, emit_json, event_matcher, event_matcher_option, fail, json_option, table,
)
from plugin_runtime.client import segment
from plugin_runtime.errors import PluginInvalid
from plugin_runtime.statuses import VersionStatus
from plugin_runtime.terminal import escape


@click.group()
def plugins() -> None:
    """Manage plugins and their versions."""


def _limits(pairs: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            fail(f"--limit takes NAME=NUMBER (e.g. memory_mb=1024, timeout_s=120), not {pair!r}")
    return out


def _deploy(client, path: str, name: str, create: bool, wait: bool, as_json: bool, limits: tuple[str, ...] = (),
            candidate: bool = False) -> None:
    from plugin_runtime.event_matcher import with_event_matcher
    from plugin_runtime.source import load_source

    try:
        source = with_event_matcher(load_source(path), event_matcher())
    except PluginInvalid as error:
        fail(error)
    params: dict[str, Any] = {"create": str(create).lower()}
    if source.event_matcher:
        params["event_matcher"] = source.event_matcher
    if limits:
        params["limits"] = json.dumps(_limits(limits))
    if candidate:
        params["candidate"] = "true"
    version = client.post(f"/v1/plugins/{segment(name)}/versions", params=params,
                          data=source.archive(), headers={"Content-Type": "application/zip"})
    if not as_json:  # once it is accepted: a refused upload says only why
        for dropped in source.dropped:
            click.echo(f"dropped: {escape(dropped)}", err=True)
        for warning in source.warnings:
            click.echo(f"warning: {escape(warning, multiline=True)}", err=True)
    if wait:
        version = _wait_for_build(client, name, version, quiet=as_json)
    if as_json:
        emit_json(version)
    else:
        _report(client, name, version, _recorded_projects(source.files.get("events.jsonl")))
    if version["status"] == VersionStatus.FAILED:
        sys.exit(1)


def _default_name(path: str) -> str:
    """The name of the plugin's folder (as ``init`` made it), or of its zip, when --name is not given."""
    from plugin_runtime.registry import NAME

    target = Path(os.path.abspath(path))
    name = target.stem if target.suffix.lower() == ".zip" else target.name if target.is_dir() else target.parent.name
    if not NAME.fullmatch(name):
        fail(f"pass --name NAME: the plugin's folder {name!r} cannot name a plugin (1 to 63 characters among a-z, "
             "0-9, '.', '_' and '-', starting with a letter or digit)")
    return name


def _wait_for_build(client, name: str, version: dict[str, Any], quiet: bool) -> dict[str, Any]:
    number = version["version"]
    started = time.monotonic()
    with Progress(None if quiet else f"building {name} v{number}...") as progress:
        while version["status"] == VersionStatus.DEPLOYING:
            if not quiet:
                progress.update(f"building {name} v{number}... {time.monotonic() - started:.0f} s")
            # A short wait on a terminal keeps the counter moving; a pipe shows no counter.
            version = client.get(f"/v1/plugins/{segment(name)}/versions/{number}",
                                 params={"wait": 1 if progress.live else 5})
    return version


def _recorded_projects(events: bytes | None) -> list[str]:
    """The projects of the plugin's own recorded events (``init`` writes some): the project to name
    in the next step. Data only, read as JSON."""
    found: list[str] = []
    for line in (events or b"").splitlines()[:1000]:
        try:
            project = json.loads(line).get("project_id")
        except (ValueError, AttributeError, RecursionError):
            continue
        if isinstance(project, str) and project and project not in found:
            found.append(project)
    return found


def _report(client, name: str, version: dict[str, Any], recorded: list[str]) -> None:
    """The outcome, then the next step only where one applies."""
    number = version["version"]
    if version["status"] == VersionStatus.FAILED:
        click.echo(f"{name} v{number} failed to deploy:\n{escape(version['build_error'], multiline=True)}", err=True)
        click.echo(f"the whole build log: plugin-runtime plugins build-log {name} --version {number}", err=True)
        plugin = client.get(f"/v1/plugins/{segment(name)}")
        if plugin.get("current_version") or plugin.get("projects"):
            click.echo(_what_runs(plugin), err=True)
        return
    if version["status"] == VersionStatus.DEPLOYING:
        click.echo(f"{name} v{number} uploaded; building (see: plugin-runtime plugins status {name})")
        return
    for warning in version.get("warnings") or []:
        click.echo(f"warning: {escape(warning, multiline=True)}", err=True)
    if version.get("candidate"):
        click.echo(f"{name} v{number} built as a candidate: the live version stays live. Next, see what it would do "
                   f"on a project's events: plugin-runtime plugins shadow {name} --version {number} --project ID")
        return
    subscriptions = escape(", ".join(version["subscriptions"]))
    click.echo(f"{name} v{number} deployed: the live version (subscribes to {subscriptions or 'nothing'})")
    projects = client.get(f"/v1/plugins/{segment(name)}").get("projects") or []
    if projects:
        click.echo(f"active on {', '.join(projects)}: their next events run v{number}")
    elif len(recorded) == 1:
        click.echo(f"next, run it on the project of its events.jsonl: plugin-runtime plugins activate {name} "
                   f"--project {escape(recorded[0])}")
    else:
        known = f" (its events.jsonl has {escape(', '.join(recorded))})" if recorded else ""
        click.echo(f"next, run it on a project's events: plugin-runtime plugins activate {name} --project "
                   f"PROJECT_ID{known}")


def _what_runs(info: dict[str, Any]) -> str:
    """What runs the plugin's events now that its newest version failed to build."""
    name, live, projects = info["name"], info.get("current_version"), info.get("projects") or []
    if live:
        return f"v{live} is still live and keeps running{' on ' + ', '.join(projects) if projects else ''}"
    if projects:
        return (f"{name} has no version that can run: events of {', '.join(projects)} get failed runs with this "
                "error (plugin-runtime runs list --status failed) until a version builds")
    return f"{name} has no version that can run: it cannot be activated until a version builds"


@plugins.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", help="Plugin name: a-z, 0-9, '.', '_', '-'. Default: the plugin folder's name.")
@click.option("--no-wait", is_flag=True, help="Return once uploaded, without waiting for the build.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="A sandbox limit within the admin's maxima: memory_mb, timeout_s, cpus, pids, ...")
@event_matcher_option
@json_option
@client_options
def upload(client, path: str, name: str | None, no_wait: bool, limits: tuple[str, ...], as_json: bool) -> None:
    """Upload a new plugin (a main.py, a folder or a .zip) and wait for its build."""
    _deploy(client, path, name or _default_name(path), True, not no_wait, as_json, limits)


@plugins.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", help="The plugin's name, as uploaded. Default: the plugin folder's name.")
@click.option("--no-wait", is_flag=True, help="Return once uploaded, without waiting for the build.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="A sandbox limit within the admin's maxima: memory_mb, timeout_s, cpus, pids, ...")
@click.option("--candidate", is_flag=True,
              help="Keep the live version live: this one is built to be shadowed (plugins shadow), then promoted.")
@event_matcher_option
@json_option
@client_options
def update(client, path: str, name: str | None, no_wait: bool, limits: tuple[str, ...], candidate: bool,
           as_json: bool) -> None:
    """Upload a new version of an existing plugin and wait for its build."""
    _deploy(client, path, name or _default_name(path), False, not no_wait, as_json, limits, candidate)


@plugins.command("list")
@json_option
@client_options
def list_(client, as_json: bool) -> None:
    """The plugins, their live version and projects."""
    rows = client.get("/v1/plugins")
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["name", "current_version", "latest_version", "latest_status", "projects"], "no plugins")


@plugins.command()
@click.argument("name")
@json_option
@client_options
def versions(client, name: str, as_json: bool) -> None:
    """Every version of a plugin."""
    rows = client.get(f"/v1/plugins/{segment(name)}/versions")
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["digest"] = (row.get("digest") or "")[:12] or None  # enough to tell versions apart; --json has it all
    table(rows, ["version", "status", "digest", "subscriptions", "created_at", "build_error"])


@plugins.command()
@click.argument("name")
@click.option("--to", "version", required=True, type=int, help="The version to make live again.")
@json_option
@client_options
def rollback(client, name: str, version: int, as_json: bool) -> None:
    """Make an older built version live again."""
    info = client.post(f"/v1/plugins/{segment(name)}/rollback", json={"version": version})
    emit_json(info) if as_json else click.echo(f"{name}: v{version} is live again")


@plugins.command()
@click.argument("name")
@json_option
@client_options
def delete(client, name: str, as_json: bool) -> None:
    """Delete a plugin and deactivate it everywhere."""
    info = client.request("DELETE", f"/v1/plugins/{segment(name)}")
    emit_json(info) if as_json else click.echo(f"{name} deleted")


@plugins.command()
@click.argument("name")
@click.option("--project", "project_id", required=True)
@json_option
@client_options
def activate(client, name: str, project_id: str, as_json: bool) -> None:
    """Run the plugin on a project's events (idempotent). Refused while no version of it can
    run (every build failed), with the build error."""
    info = client.request("PUT", f"/v1/plugins/{segment(name)}/projects/{segment(project_id)}")
    if as_json:
        emit_json(info)
        return
    plugin = client.get(f"/v1/plugins/{segment(name)}")
    building = "" if plugin.get("current_version") else (
        f" (v{plugin['latest_version']} is still building: its events wait for it)")
    click.echo(f"{name} is active on {project_id}{building}")


@plugins.command()
@click.argument("name")
@click.option("--project", "project_id", required=True)
@json_option
@client_options
def deactivate(client, name: str, project_id: str, as_json: bool) -> None:
    """Stop running the plugin on a project (idempotent)."""
    info = client.request("DELETE", f"/v1/plugins/{segment(name)}/projects/{segment(project_id)}")
    emit_json(info) if as_json else click.echo(f"{name} is inactive on {project_id}")


@plugins.command()
@click.argument("name")
@json_option
@client_options
def status(client, name: str, as_json: bool) -> None:
    """A plugin's live version, projects and versions."""
    info: dict[str, Any] = client.get(f"/v1/plugins/{segment(name)}")
    if as_json:
        emit_json(info)
        return
    click.echo(f"{name}: live version {info.get('current_version') or '-'}, projects: "
               f"{', '.join(info.get('projects') or []) or 'none'}")
    if info.get("latest_status") == VersionStatus.FAILED:
        error = escape((info.get("latest_error") or "").strip().splitlines()[0] if info.get("latest_error") else "")
        click.echo(f"v{info['latest_version']} failed to build: {error}")
        click.echo(f"{_what_runs(info)} (the whole error: plugin-runtime plugins build-log {name})")
    elif info.get("latest_status") == VersionStatus.DEPLOYING:
        click.echo(f"v{info['latest_version']} is building; "
                   + (f"v{info['current_version']} runs until it is live" if info.get("current_version")
                      else "events wait for it"))
    table(info["versions"], ["version", "status", "subscriptions", "ready_at", "build_error"])


@plugins.command("build-log")
@click.argument("name")
@click.option("--version", type=int, help="Default: the newest version.")
@json_option
@client_options
def build_log(client, name: str, version: int | None, as_json: bool) -> None:
    """The build log of a version (and its error when it failed)."""
    info = client.get(f"/v1/plugins/{segment(name)}/build-log", params={"version": version} if version else {})
    if as_json:
        emit_json(info)
        return
    number = info["version"]
    if info["status"] == VersionStatus.DEPLOYING:
        click.echo(f"{name} v{number} is still building: its log comes when the build ends")
        return
    detail = client.get(f"/v1/plugins/{segment(name)}/versions/{number}")
    if detail.get("image"):
        click.echo(f"{name} v{number}: image {detail['image']}, ready at {detail.get('ready_at') or '-'}")
    elif info["status"] != VersionStatus.FAILED:
        click.echo(f"{name} v{number}: no image (the runtime runs plugins as processes, --sandbox process)")
        if not info["build_log"]:
            click.echo("nothing is built for such a runtime, so there is no build log: the version was checked "
                       "and loaded once from its files before going live")
            return
    click.echo(escape(info["build_log"] or "", multiline=True) or "(empty log)")
    if info["build_error"]:
        click.echo(f"\nerror: {escape(info['build_error'], multiline=True)}", err=True)


@plugins.command()
@click.argument("name")
@click.option("--project", "project_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@json_option
@client_options
def logs(client, name: str, project_id: str | None, follow: bool, as_json: bool) -> None:
    """Log lines of the plugin's runs (its logger and prints)."""
    cursor = 0
    while True:
        page = client.get("/v1/logs", params={"plugin": name, "project_id": project_id, "after": cursor})
        for line in page["lines"]:
            if as_json:
                click.echo(__import__("json").dumps(line, ensure_ascii=False))
            else:
                head = escape(f"{line['event_id']} {line['asset_id'] or '-'} [{line['level'].lower()}]")
                # Continuation lines indented: a plugin cannot print a line that passes for another run's.
                click.echo(f"{head} {escape(line['message'], multiline=True)}".replace("\n", "\n    "))
        cursor = page["cursor"]
        if not follow:
            return
        if not page["lines"]:
            time.sleep(1)


COMMANDS = [plugins]
