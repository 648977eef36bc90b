"""``plugin-runtime runs list|show|retry``."""

from __future__ import annotations

import json

import click

from plugin_runtime.dryrun import HUMAN_LOG_LINES, shorten
from plugin_runtime.statuses import RunStatus
from plugin_runtime.terminal import escape

from plugin_runtime.cli._common import client_options, emit_json, json_option, table
from plugin_runtime.client import segment

STATUSES = [status.value for status in RunStatus]


@click.group()
def runs() -> None:
    """Runs: one plugin version on one event."""


@runs.command("list")
@click.option("--plugin")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--project", "project_id")
@click.option("--root", "root_id", metavar="EVENT_ID", help="Only the runs of this event's chain (the event and "
              "every event its runs' actions caused).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@client_options
def list_(client, plugin: str | None, status: str | None, project_id: str | None, root_id: str | None, limit: int,
          as_json: bool) -> None:
    """Recent runs, newest first."""
    rows = client.get("/v1/runs", params={"plugin": plugin, "status": status, "project_id": project_id,
                                          "root_id": root_id, "limit": limit})
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            row["duration_ms"] = None if row["duration_ms"] is None else round(row["duration_ms"], 1)
        table(rows, ["id", "event_id", "asset_id", "plugin", "version", "status", "outcome", "rejected", "duration_ms"],
              "no runs")
        spent = {row["root_id"]: row["root_budget_exceeded"] for row in rows if row.get("root_budget_exceeded")}
        for root_id, reason in spent.items():
            click.echo(f"budget exceeded by the chain of event {escape(root_id)}: {escape(reason)} "
                       f"(runs list --root {escape(root_id)})")


@runs.command()
@click.argument("run_id")
@json_option
@client_options
def show(client, run_id: str, as_json: bool) -> None:
    """One run with its actions (applied or rejected, with the reason) and logs."""
    run = client.get(f"/v1/runs/{segment(run_id)}")
    if as_json:
        emit_json(run)
        return
    for key in ("id", "event_id", "plugin", "version", "project_id", "asset_id", "status", "outcome",
                "attempts", "worker", "duration_ms", "created_at", "finished_at"):
        value = run.get(key)
        if key == "duration_ms" and isinstance(value, (int, float)):
            value = f"{value:.1f}"
        click.echo(f"{key:12} {'-' if value is None else escape(str(value))}")
    for line in _budget_lines(run):
        click.echo(line)
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


def _budget_lines(run: dict) -> list[str]:
    """Reads, what the run's actions caused, and its root event's budget, where there is something to say."""
    lines, metrics, root = [], run.get("metrics") or {}, run.get("root") or {}
    if metrics.get("reads"):
        reads = metrics["reads"]
        lines.append(f"{'reads':12} {reads['calls']} calls, {reads['seconds']:.3f} s, {reads['refused']} refused")
    if metrics.get("caused"):
        caused = metrics["caused"]
        parts = [_count(caused["events"], "event"), f"{_count(caused['runs'], 'run')} queued for them"]
        if caused.get("skipped_runs"):
            parts.append(f"{_count(caused['skipped_runs'], 'run')} skipped (queue full)")
        if caused.get("dropped_events"):
            parts.append(f"{_count(caused['dropped_events'], 'event')} dropped (budget)")
        lines.append(f"{'caused':12} {', '.join(parts)}")
    # The root's totals only add something when the run's event is not the root, or the budget ran out.
    if root.get("budget_exceeded") or (root.get("caused_events") and root.get("id") != run.get("event_id")):
        state = f"budget exceeded: {escape(root['budget_exceeded'])}" if root.get("budget_exceeded") else "within budget"
        lines.append(f"{'root':12} {escape(str(root['id']))}: caused {_count(root['caused_runs'], 'run')}, "
                     f"{_count(root['caused_events'], 'event')}, {root['dropped_events']} dropped; {state}")
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


@runs.command()
@click.argument("run_id")
@click.option("--live-version", is_flag=True,
              help="Run the event through the plugin's live version (after a fix) rather than the run's own.")
@json_option
@client_options
def retry(client, run_id: str, live_version: bool, as_json: bool) -> None:
    """Run a failed, dead or skipped run again."""
    info = client.post(f"/v1/runs/{segment(run_id)}/retry", params={"live_version": str(live_version).lower()})
    if as_json:
        emit_json(info)
    elif info["id"] != run_id:
        click.echo(f"{run_id}: the event is queued for version {info['version']} as {info['id']}")
    else:
        click.echo(f"{run_id} queued again")


COMMANDS = [runs]
