"""``plugin-runtime events record --from kili``: a live Kili project's labels as a recorded
events file, so a plugin author dry-runs against their real data with no server."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import click

from plugin_runtime.cli._common import fail
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.terminal import escape


@click.command(short_help="Record a live Kili project's labels as events, for dry-runs.")
@click.option("--from", "platform", type=click.Choice(["kili"]), required=True, help="The platform to record from.")
@click.option("--project", "project_id", required=True, help="The Kili project's id.")
@click.option("--api-key", envvar="KILI_API_KEY", help="A Kili API key (default: $KILI_API_KEY).")
@click.option("--api-endpoint", envvar="KILI_API_ENDPOINT",
              help="Kili's GraphQL endpoint (default: $KILI_API_ENDPOINT, else Kili's SaaS).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
              help="Only labels created at or after this date (UTC).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events (the oldest first).")
@click.option("--as", "as_project", help="The project id the events carry (default: the Kili project's).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The events file to write ('-' for stdout).")
def record(platform: str, project_id: str, api_key: str | None, api_endpoint: str | None, since: datetime | None,
           limit: int | None, as_project: str | None, output: str) -> None:
    """Write recorded events (JSON Lines, with their context: the asset with its labels and
    issues, the project with its jsonInterface) from a live Kili project's labels: DEFAULT
    labels as onSubmit, REVIEW labels as onReview. Then: plugin-runtime dry-run PLUGIN --events FILE."""
    from plugin_runtime.platforms.kili.client import open_client
    from plugin_runtime.platforms.kili.records import record_events
    from plugin_sdk.models import Event

    folder = Path(output).parent
    if output != "-" and not folder.is_dir():  # said before Kili is read, not after
        fail(f"cannot write {output}: there is no folder {folder} (create it, or give -o another path)")
    moment = since.replace(tzinfo=timezone.utc) if since else None
    lines: list[str] = []
    counts: Counter[str] = Counter()
    try:
        with tempfile.TemporaryDirectory(prefix="plugin-runtime-kili-") as cache:
            kili = open_client(api_key or "", api_endpoint, Path(cache))
            for event in record_events(kili, project_id, moment, limit, as_project):
                Event.model_validate(event)
                lines.append(json.dumps(event, ensure_ascii=False) + "\n")
                counts[event["type"]] += 1
    except PluginRuntimeError as error:
        fail(error)
    except Exception as error:  # the client's own errors (GraphQL, HTTP): said, not a traceback
        fail(f"recording from Kili failed: {type(error).__name__}: {error}")
    _write(output, "".join(lines))
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no labels"
    click.echo(f"{len(lines)} event(s) recorded from Kili project {escape(project_id)} ({kinds})"
               + ("" if output == "-" else f" into {escape(output)}"), err=True)


def _write(output: str, text: str) -> None:
    """The whole file or nothing: written beside its place, then renamed over it."""
    if output == "-":
        sys.stdout.write(text)
        return
    target = Path(output)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:  # a folder that went away, or one this user cannot write in
        fail(f"cannot write {output}: {error.strerror}")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        fail(f"cannot write {output}: {error.strerror}")
