"""``plugin-runtime runs list|show|retry``."""

from __future__ import annotations

import click

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
        table(rows, ["id", "event_id", "asset_id", "plugin", "version", "status", "outcome", "duration_ms"], "no runs")


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
        click.echo(f"{key:12} {run.get(key)}")
    if run.get("error"):
        click.echo(f"error:\n{run['error']}")
    click.echo("actions:" if run["actions"] else "actions: none")
    for item in run["actions"]:
        reason = f"  ({item['reason']})" if item["reason"] else ""
        click.echo(f"  {item['status']:8} {item['action']}{reason}")
    click.echo("logs:" if run["logs"] else "logs: none")
    for line in run["logs"]:
        click.echo(f"  [{line['level'].lower()}] {line['message']}")


@runs.command()
@click.argument("run_id")
@json_option
@client_options
def retry(client, run_id: str, as_json: bool) -> None:
    """Run a failed or dead run again."""
    info = client.post(f"/v1/runs/{run_id}/retry")
    emit_json(info) if as_json else click.echo(f"{run_id} queued again")


COMMANDS = [runs]
