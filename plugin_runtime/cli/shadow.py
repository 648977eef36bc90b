"""``plugin-runtime plugins shadow|shadow-report|promote``: a candidate version beside the live
one on a project's live events, its actions stored and never applied, then made live."""

from __future__ import annotations

from typing import Any

import click

from plugin_runtime.cli._common import client_options, emit_json, fail, json_option
from plugin_runtime.cli.plugins import plugins
from plugin_runtime.client import segment
from plugin_runtime.diff import describe
from plugin_runtime.terminal import escape


@plugins.command(short_help="Run a candidate version beside the live one on a project's events.")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="The candidate: a built version that is not live.")
@click.option("--project", "project_id", help="The project whose events it sees (with --stop: only this one).")
@click.option("--stop", is_flag=True, help="End the plugin's shadows (their reports stay).")
@json_option
@client_options
def shadow(client, name: str, version: int | None, project_id: str | None, stop: bool, as_json: bool) -> None:
    """Run version N of NAME beside its live version on every event of a project: its actions
    are computed and stored, never applied, and cause no events; it runs after the live runs,
    never delaying them. `plugins shadow-report NAME` says what it would have done otherwise,
    `plugins promote NAME --version N` makes it live, `--stop` ends it.

    \b
      plugin-runtime plugins update ./bot --name bot --candidate   # a version that does not go live
      plugin-runtime plugins shadow bot --version 2 --project proj-invoices"""
    if stop:
        if version is not None:
            fail("--stop ends the plugin's shadows whatever their version: leave --version out")
        ended = client.request("DELETE", f"/v1/plugins/{segment(name)}/shadows",
                               params={"project_id": project_id} if project_id else {})["ended"]
        if as_json:
            emit_json(ended)
        elif not ended:
            click.echo(f"{name} has no shadow running{f' on {escape(project_id)}' if project_id else ''}")
        for row in [] if as_json else ended:
            click.echo(f"{name} v{row['version']} no longer shadows on {escape(row['project_id'])} "
                       f"(its report: plugin-runtime plugins shadow-report {name})")
        return
    if version is None or project_id is None:
        fail("give the candidate and the project: plugins shadow NAME --version N --project ID (or --stop)")
        return
    row = client.request("PUT", f"/v1/plugins/{segment(name)}/shadows/{segment(project_id)}",
                         json={"version": version})
    if as_json:
        emit_json(row)
        return
    click.echo(f"{name} v{version} shadows the live version on {escape(project_id)} from its next event: its "
               "actions are stored, never applied")
    if project_id not in (client.get(f"/v1/plugins/{segment(name)}").get("projects") or []):
        click.echo(f"note: {name} is not active on {escape(project_id)}: no live run there to compare with, so the "
                   f"report counts what v{version} does as differing (plugins activate {name} --project "
                   f"{escape(project_id)} runs the live version there)", err=True)
    click.echo(f"  plugin-runtime plugins shadow-report {name}        what it would have done differently")
    click.echo(f"  plugin-runtime plugins promote {name} --version {version}   make it live")


@plugins.command("shadow-report", short_help="What a shadowed candidate would have done differently.")
@click.argument("name")
@click.option("--project", "project_id", help="One project's shadow (default: every project's).")
@click.option("--differences", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Differing events to show, newest first (the counts cover all).")
@json_option
@client_options
def shadow_report(client, name: str, project_id: str | None, differences: int, as_json: bool) -> None:
    """The newest shadow of NAME on each project (running or ended): events seen, events whose
    actions differ from the live version's (with the differences), the candidate's errors and
    timeouts, and the run durations of both."""
    params: dict[str, Any] = {"plugin": name, "differences": differences}
    if project_id:
        params["project_id"] = project_id
    reports = client.get("/v1/shadows", params=params)["shadows"]
    if as_json:
        emit_json(reports)
        return
    if not reports:
        click.echo(f"{name} has no shadow{f' on {escape(project_id)}' if project_id else ''} (start one: "
                   f"plugin-runtime plugins shadow {name} --version N --project ID)")
    for number, report in enumerate(reports):
        click.echo("\n".join(([""] if number else []) + _lines(report)))


def _lines(report: dict[str, Any]) -> list[str]:
    live = report["live_version"]
    head = (f"{report['plugin']} v{report['version']} beside live v{live if live is not None else '-'} on "
            f"{escape(report['project_id'])}, since {report['started_at']}")
    state = "running" if report["ended_at"] is None else f"ended {report['ended_at']}: {report['end_reason']}"
    events, candidate = report["events"], report["candidate"]
    lines = [f"{head} ({escape(state)})",
             f"  events: {events['seen']} seen, {events['compared']} compared, "
             + click.style(f"{events['differing']} differ", fg="yellow" if events["differing"] else None)
             + f", {events['waiting']} waiting, {events['not_run']} not run",
             f"  candidate: {candidate['ok']} ok, {candidate['no_hook']} without a hook, "
             + (", ".join(f"{n} {outcome}" for outcome, n in sorted(candidate["failed"].items())) or "no failure")]
    lines.append(f"  {'run duration ms':<15}" + "".join(f"{k:>11}" for k in ("p50", "p95", "max")) + "   (runs)")
    for side in ("live", "candidate"):
        latency = report[side]["latency_ms"]
        cells = "".join(f"{'-' if latency[k] is None else f'{latency[k]:.1f}':>11}" for k in ("p50", "p95", "max"))
        lines.append(f"    {side:<13}{cells}   ({latency['count']})")
    if report["differences"]:
        lines.append(f"  differences (newest {len(report['differences'])} of {events['differing']}):")
    for item in report["differences"]:
        sides = f"live: {_outcome(item['live'])}  candidate: {_outcome(item['candidate'])}"
        lines.append(f"    {escape(item['event_id'])}  {sides}")
        lines += [click.style(f"      - {describe(action)}", fg="red") for action in item["only_live"]]
        lines += [click.style(f"      + {describe(action)}", fg="green") for action in item["only_candidate"]]
        if item["reordered"]:
            lines.append("      ~ the same actions, in another order")
    if report["failures"]:
        lines.append("  candidate failures (newest first):")
    for failure in report["failures"]:
        last = (escape(failure["error"] or "", multiline=True).strip().splitlines() or [""])[-1]
        lines.append(f"    {escape(failure['event_id'])}  {failure['outcome']}: {last}")
    return lines


def _outcome(side: dict[str, Any]) -> str:
    if side.get("run_id") is None and side["status"] == "ok" and not side["actions"]:
        return "no run"
    return f"{side['status']}, {len(side['actions'])} action(s)" if side["status"] == "ok" else side["status"].upper()


@plugins.command(short_help="Make a version live and end the plugin's shadows.")
@click.argument("name")
@click.option("--version", required=True, type=click.IntRange(min=1), help="The built version to make live.")
@json_option
@client_options
def promote(client, name: str, version: int, as_json: bool) -> None:
    """Make version N of NAME live (its next events run it) and end the plugin's shadows."""
    answer = client.post(f"/v1/plugins/{segment(name)}/promote", json={"version": version})
    if as_json:
        emit_json(answer)
        return
    click.echo(f"{name} v{version} is live")
    for row in answer["ended"]:
        click.echo(f"its shadow on {escape(row['project_id'])} ended (report: plugin-runtime plugins shadow-report "
                   f"{name} --project {escape(row['project_id'])})")


#: Registered on the ``plugins`` group above.
COMMANDS: list[click.Command] = []
