"""``plugin-runtime runs list|show|retry``."""

from __future__ import annotations

import json

import click

from plugin_runtime.dryrun import HUMAN_LOG_LINES, shorten
from plugin_runtime.terminal import escape

from plugin_runtime.cli._common import client_options, emit_json, json_option, table

STATUSES = ["pending", "running", "succeeded", "failed", "dead"]


@click.group()
def runs() -> None:
    """Runs: one plugin version on one event."""


@runs.command("list")
@click.option("--plugin")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--project", "project_id")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@client_options
def list_(client, plugin: str | None, status: str | None, project_id: str | None, limit: int, as_json: bool) -> None:
    """Recent runs, newest first."""
    rows = client.get("/v1/runs", params={"plugin": plugin, "status": status, "project_id": project_id, "limit": limit})
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            row["duration_ms"] = None if row["duration_ms"] is None else round(row["duration_ms"], 1)
        table(rows, ["id", "event_id", "asset_id", "plugin", "version", "status", "outcome", "rejected", "duration_ms"],
              "no runs")


@runs.command()
@click.argument("run_id")
@json_option
@client_options
def show(client, run_id: str, as_json: bool) -> None:
    """One run with its actions (applied or rejected, with the reason) and logs."""
    run = client.get(f"/v1/runs/{run_id}")
    if as_json:
        emit_json(run)
        return
    for key in ("id", "event_id", "plugin", "version", "project_id", "asset_id", "status", "outcome",
                "attempts", "duration_ms", "created_at", "finished_at"):
        click.echo(f"{key:12} {escape(str(run.get(key)))}")
    if run.get("error"):
        click.echo(f"error:\n{escape(run['error'], multiline=True)}")
    click.echo("actions:" if run["actions"] else "actions: none")
    for item in run["actions"]:
        reason = f"  ({escape(item['reason'])})" if item["reason"] else ""
        click.echo(f"  {item['status']:8} {shorten(json.dumps(item['action'], ensure_ascii=False))}{reason}")
    click.echo("logs:" if run["logs"] else "logs: none")
    for line in run["logs"][:HUMAN_LOG_LINES]:
        message = shorten(line["message"], multiline=True).replace("\n", "\n    ")
        click.echo(f"  [{escape(line['level'].lower())}] {message}")
    if len(run["logs"]) > HUMAN_LOG_LINES:
        click.echo(f"  ... {len(run['logs']) - HUMAN_LOG_LINES} more lines (--json shows all)")


@runs.command()
@click.argument("run_id")
@click.option("--live-version", is_flag=True,
              help="Run the event through the plugin's live version (after a fix) rather than the run's own.")
@json_option
@client_options
def retry(client, run_id: str, live_version: bool, as_json: bool) -> None:
    """Run a failed or dead run again."""
    info = client.post(f"/v1/runs/{run_id}/retry", params={"live_version": str(live_version).lower()})
    if as_json:
        emit_json(info)
    elif info["id"] != run_id:
        click.echo(f"{run_id}: the event is queued for version {info['version']} as {info['id']}")
    else:
        click.echo(f"{run_id} queued again")


COMMANDS = [runs]
