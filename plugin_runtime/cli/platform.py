"""``plugin-runtime projects|assets|labels ...``: the embedded platform."""

from __future__ import annotations

import json
from typing import Any

import click

from plugin_runtime.cli._common import client_options, emit_json, fail, json_option, table
from plugin_runtime.client import segment
from plugin_runtime.terminal import escape


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            fail(f"{what}: cannot read {text[1:]}: {error.strerror}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{what} is not valid JSON: {error}")


@click.group()
def projects() -> None:
    """Projects of the embedded platform."""


@projects.command("list")
@json_option
@client_options
def projects_list(client, as_json: bool) -> None:
    rows = client.get("/v1/projects")
    emit_json(rows) if as_json else table(rows, ["id", "title", "inputType"], "no projects")


@projects.command("create")
@click.argument("project_id")
@click.option("--title")
@click.option("--json-interface", help="The ontology as JSON (or @file.json).")
@click.option("--min-consensus-size", type=click.IntRange(1, 10), default=1, show_default=True)
@click.option("--review-coverage", type=click.IntRange(0, 100), default=0, show_default=True)
@json_option
@client_options
def projects_create(client, project_id: str, title: str | None, json_interface: str | None, min_consensus_size: int,
                    review_coverage: int, as_json: bool) -> None:
    info = client.post("/v1/projects", json={"id": project_id, "title": title,
                                             "json_interface": _json_arg(json_interface, "--json-interface"),
                                             "min_consensus_size": min_consensus_size,
                                             "review_coverage": review_coverage})
    emit_json(info) if as_json else click.echo(f"project {project_id} created")


@projects.command("update")
@click.argument("project_id")
@click.option("--title")
@click.option("--description")
@click.option("--instructions")
@click.option("--json-interface", help="The ontology as JSON (or @file.json).")
@click.option("--min-consensus-size", type=click.IntRange(1, 10))
@click.option("--consensus-tot-coverage", type=click.IntRange(0, 100))
@click.option("--review-coverage", type=click.IntRange(0, 100))
@json_option
@client_options
def projects_update(client, project_id: str, json_interface: str | None, as_json: bool, **settings: Any) -> None:
    """Change project settings: plugins with on_project_updated receive what changed."""
    body = {name: value for name, value in settings.items() if value is not None}
    if json_interface is not None:
        body["json_interface"] = _json_arg(json_interface, "--json-interface")
    if not body:
        fail("nothing to change: give at least one of --title, --description, --instructions, --json-interface, "
             "--min-consensus-size, --consensus-tot-coverage, --review-coverage")
    info = client.request("PATCH", f"/v1/projects/{segment(project_id)}", json=body)
    if as_json:
        emit_json(info)
    elif info["event_id"] is None:
        click.echo(f"project {escape(project_id)}: nothing changed")
    else:
        keys = ", ".join(item["key"] for item in info["settings_updated"])
        click.echo(f"project {escape(project_id)} updated ({escape(keys)}): event {info['event_id']}")


@projects.command("show")
@click.argument("project_id")
@json_option
@client_options
def projects_show(client, project_id: str, as_json: bool) -> None:
    info = client.get(f"/v1/projects/{segment(project_id)}")
    emit_json(info) if as_json else click.echo(escape(json.dumps(info, indent=2, ensure_ascii=False), multiline=True))


def asset_view(asset: dict[str, Any]) -> dict[str, Any]:
    """An asset as the CLI shows it: snake_case fields, labels and issues as lists."""
    return {
        "id": asset["id"], "external_id": asset.get("externalId"), "content": asset.get("content"),
        "status": asset.get("status"), "json_metadata": asset.get("jsonMetadata") or {},
        "priority": asset.get("priority"), "to_be_labeled_by": asset.get("toBeLabeledBy") or [],
        "is_used_for_consensus": asset.get("isUsedForConsensus"), "is_honeypot": asset.get("isHoneypot"),
        "consensus_mark": asset.get("consensusMark"), "honeypot_mark": asset.get("honeypotMark"),
        "inference_mark": asset.get("inferenceMark"), "labels": asset.get("labels") or [],
        "issues": asset.get("issues") or [],
    }


def resolved_by(asset: dict[str, Any], issue: dict[str, Any]) -> str | None:
    """The id of the newer label (of the same kind) that replaced an open issue's label and got no
    issue itself. A bot may leave its issues open (closing them is ``update_issue_status``): such an
    issue reads "resolved by the next label" rather than plainly open."""
    labels = sorted(asset.get("labels") or [], key=lambda label: label.get("createdAt") or "")
    own = next((label for label in labels if label["id"] == issue.get("labelId")), None)
    if issue.get("status") != "OPEN" or own is None:
        return None
    newer = [label for label in labels[labels.index(own) + 1:] if label.get("labelType") == own.get("labelType")]
    flagged = {other.get("labelId") for other in asset.get("issues") or []}
    return str(newer[-1]["id"]) if newer and newer[-1]["id"] not in flagged else None


@click.group()
def assets() -> None:
    """Assets of the embedded platform."""


@assets.command("list")
@click.option("--project", "project_id", required=True)
@json_option
@client_options
def assets_list(client, project_id: str, as_json: bool) -> None:
    rows = [asset_view(a) for a in client.get(f"/v1/projects/{segment(project_id)}/assets")]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["labels"], row["issues"] = len(row["labels"]), len([i for i in row["issues"] if i["status"] == "OPEN"])
    table(rows, ["id", "external_id", "status", "priority", "labels", "issues", "json_metadata"], "no assets")


@assets.command("create")
@click.option("--project", "project_id", required=True)
@click.option("--id", "asset_id")
@click.option("--external-id")
@click.option("--content")
@click.option("--metadata", help="json_metadata as JSON (or @file.json).")
@json_option
@client_options
def assets_create(client, project_id: str, asset_id: str | None, external_id: str | None, content: str | None,
                  metadata: str | None, as_json: bool) -> None:
    info = client.post(f"/v1/projects/{segment(project_id)}/assets", json={
        "id": asset_id, "external_id": external_id, "content": content,
        "json_metadata": _json_arg(metadata, "--metadata")})
    emit_json(asset_view(info)) if as_json else click.echo(f"asset {info['id']} created")


@assets.command("show")
@click.argument("asset_id")
@click.option("--project", "project_id", required=True)
@json_option
@client_options
def assets_show(client, asset_id: str, project_id: str, as_json: bool) -> None:
    """One asset with its labels and issues."""
    view = asset_view(client.get(f"/v1/projects/{segment(project_id)}/assets/{segment(asset_id)}"))
    if as_json:
        emit_json(view)
        return
    for key in ("id", "external_id", "status", "priority", "json_metadata"):
        value = json.dumps(view[key], ensure_ascii=False) if key == "json_metadata" else str(view[key])
        click.echo(f"{key:14} {escape(value)}")
    click.echo(f"labels         {len(view['labels'])}")
    for label in view["labels"]:
        click.echo(escape(f"  {label['id']} {label['labelType']} by {label.get('authorId') or '-'}"))
    click.echo(f"issues         {len(view['issues'])}")
    for issue in view["issues"]:
        where = f"label {issue.get('labelId') or '-'}" + (f", object {issue['objectMid']}" if issue.get("objectMid") else "")
        newer = resolved_by(view, issue)
        state = f"{issue['status']}, resolved by the next label {newer}" if newer else issue["status"]
        click.echo(escape(f"  [{state}] {issue['text']} ({where})"))


@click.group()
def labels() -> None:
    """Labels of the embedded platform."""


@labels.command("submit")
@click.option("--project", "project_id", required=True)
@click.option("--asset", "asset_id", required=True)
@click.option("--json-response", required=True, help="The label's jsonResponse as JSON (or @file.json).")
@click.option("--type", "label_type", type=click.Choice(["DEFAULT", "REVIEW"]), default="DEFAULT", show_default=True,
              help="DEFAULT emits onSubmit, REVIEW onReview.")
@click.option("--author")
@click.option("--seconds", type=float)
@json_option
@client_options
def labels_submit(client, project_id: str, asset_id: str, json_response: str, label_type: str,
                  author: str | None, seconds: float | None, as_json: bool) -> None:
    """Submit a label, as a labeler (or reviewer) would: the plugins active on the project run."""
    info = client.post(f"/v1/projects/{segment(project_id)}/assets/{segment(asset_id)}/labels", json={
        "json_response": _json_arg(json_response, "--json-response"), "label_type": label_type,
        "author_id": author, "seconds_to_label": seconds})
    emit_json(info) if as_json else click.echo(f"label {info['label']['id']} submitted (event {info['event_id']})")


COMMANDS = [projects, assets, labels]
