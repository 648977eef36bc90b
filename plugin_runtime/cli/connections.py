"""``plugin-runtime connect PLATFORM ...`` and ``connections list|remove``: projects on a
labeling platform of their own (``connect label-studio`` now, ``connect kili`` later).

Through the runtime's HTTP API, so the platform's token is kept by the runtime (its data
directory, owner-only) and never printed: neither in an answer, nor in an error.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from plugin_runtime.cli._common import (
    checked_url,
    client_options,
    emit_json,
    fail,
    json_option,
    missing_here,
    settings,
    table,
    wait_for_runtime,
)
from plugin_runtime.client import ClientError, segment
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.terminal import escape


def runtime_options(function: Callable) -> Callable:
    """Where the runtime is (``--runtime-url``: also where the platform sends its webhooks)
    and its admin token: ``connect``'s own ``--url`` and ``--token`` are the platform's."""

    @click.option("--runtime-url", envvar="PLUGIN_RUNTIME_URL",
                  help="The runtime, as the platform reaches it (default http://127.0.0.1:8400; PLUGIN_RUNTIME_URL).")
    @click.option("--runtime-token", envvar="PLUGIN_RUNTIME_TOKEN",
                  help="The runtime's admin token (default: the data dir's; PLUGIN_RUNTIME_TOKEN).")
    @click.option("--data-dir", envvar="PLUGIN_RUNTIME_DATA_DIR", type=click.Path(file_okay=False),
                  help="Data directory of a server on this machine (its admin token is read there).")
    @functools.wraps(function)
    def wrapper(*args: Any, runtime_url: str | None, runtime_token: str | None, data_dir: str | None,
                **kwargs: Any) -> Any:
        from plugin_runtime.client import Client

        config = settings(data_dir)
        target = checked_url(runtime_url or config.client_url)
        wait_for_runtime(target, config.data_dir)
        resolved = runtime_token or config.resolved_token(create=False)
        try:
            return function(*args, client=Client(target, resolved), runtime_url=target, **kwargs)
        except ClientError as error:
            if error.status == 401 and not resolved:
                fail(f"no admin token: {missing_here(config.data_dir, 'token', '--runtime-token')}", 1)
            fail(error, 1)
        except PluginRuntimeError as error:
            fail(error, 1)

    return wrapper


@click.group("connect", short_help="Connect a project to its own labeling platform (Label Studio).")
def connect() -> None:
    """Connect a project to a labeling platform of its own: its events come in by webhook,
    plugins' actions are applied there, plugins' reads answered from there."""


@connect.command("label-studio")
@click.option("--url", required=True, help="Label Studio's URL, e.g. http://127.0.0.1:8080.")
@click.option("--token", envvar="LABEL_STUDIO_TOKEN", required=True,
              help="The token of the Label Studio user the runtime acts as (a bot account): a legacy token or a "
                   "personal access token; '-' reads it from stdin (LABEL_STUDIO_TOKEN).")
@click.option("--project", "remote", type=click.IntRange(min=1), required=True,
              help="The Label Studio project's id (the N of /projects/N/).")
@click.option("--as", "project_id", help="The runtime's project id (default label-studio-N).")
@json_option
@runtime_options
def connect_label_studio(client, runtime_url: str, url: str, token: str, remote: int, project_id: str | None,
                         as_json: bool) -> None:
    """Connect a Label Studio project: checks the token and the project, then sets up (or
    updates) the project's webhook to this runtime. Edits made with the token's user never
    trigger runs. Then: plugin-runtime plugins activate NAME --project label-studio-N."""
    if token == "-":
        token = sys.stdin.readline().strip()
    answer = client.post("/v1/connections", json={
        "kind": "label-studio", "project_id": project_id, "runtime_url": runtime_url,
        "params": {"url": url, "token": token, "project": remote}})
    if as_json:
        emit_json({"project_id": answer["project_id"], "webhook_id": answer["webhook_id"],
                   "token_kind": answer["token_kind"]})
        return
    config = answer["config"]
    click.echo(escape(f"connected Label Studio project {remote} ({config.get('title')}) at {config.get('url')} "
                      f"as {answer['project_id']}"))
    click.echo(escape(f"  token: {answer['token_kind']}, user {config.get('bot_user')} (its edits trigger nothing)"))
    click.echo(escape(f"  webhook {answer['webhook_id']} -> {config.get('webhook_url')}"))
    click.echo(escape(f"next: plugin-runtime plugins activate NAME --project {answer['project_id']}"))


@connect.command("kili")
@click.option("--api-key", envvar="KILI_API_KEY", required=True,
              help="A Kili API key of the user the runtime acts as (Kili: My account > API KEY); '-' reads it from "
                   "stdin (KILI_API_KEY).")
@click.option("--api-endpoint", envvar="KILI_API_ENDPOINT",
              help="Kili's GraphQL endpoint, for an on-premise Kili (default: Kili's SaaS; KILI_API_ENDPOINT).")
@click.option("--project", "remote", required=True, help="The Kili project's id.")
@click.option("--as", "project_id", help="The runtime's project id (default kili-ID).")
@json_option
@runtime_options
def connect_kili(client, runtime_url: str, api_key: str, api_endpoint: str | None, remote: str,
                 project_id: str | None, as_json: bool) -> None:
    """Connect a Kili project: checks the key and the project with Kili's official client, then
    registers (or updates) a Kili webhook to this runtime and activates it on the project.
    Then: plugin-runtime plugins activate NAME --project kili-ID."""
    if api_key == "-":
        api_key = sys.stdin.readline().strip()
    answer = client.post("/v1/connections", json={
        "kind": "kili", "project_id": project_id, "runtime_url": runtime_url,
        "params": {"api_key": api_key, "api_endpoint": api_endpoint, "project": remote}})
    if as_json:
        emit_json({"project_id": answer["project_id"], "webhook_id": answer["webhook_id"]})
        return
    config = answer["config"]
    click.echo(escape(f"connected Kili project {remote} ({config.get('title')}) as {answer['project_id']}"))
    click.echo(escape(f"  webhook {answer['webhook_id']} -> {config.get('webhook_url')}"))
    click.echo(escape(f"next: plugin-runtime plugins activate NAME --project {answer['project_id']}"))


@click.group("connections", short_help="List or remove the connected projects.")
def connections() -> None:
    """Projects connected to a labeling platform of their own."""


@connections.command("list")
@json_option
@client_options
def connections_list(client, as_json: bool) -> None:
    rows = client.get("/v1/connections")
    if as_json:
        emit_json(rows)
        return
    table([{"project_id": r["project_id"], "kind": r["kind"], "url": r["config"].get("url"),
            "remote_project": r["config"].get("project"), "webhook": r["webhook_id"], "token": r["token_kind"],
            "since": r["created_at"]} for r in rows],
          ["project_id", "kind", "url", "remote_project", "webhook", "token", "since"], "no connected projects")


@connections.command("remove")
@click.argument("project_id")
@json_option
@client_options
def connections_remove(client, project_id: str, as_json: bool) -> None:
    """Disconnect PROJECT_ID; its webhook on the platform is removed too."""
    answer = client.request("DELETE", f"/v1/connections/{segment(project_id)}")
    if as_json:
        emit_json(answer)
        return
    click.echo(f"{escape(project_id)} disconnected" + ("" if answer["webhook_removed"] else " (webhook left)"))
    if answer.get("detail"):
        click.echo(f"warning: {escape(answer['detail'])}", err=True)


COMMANDS = [connect, connections]
