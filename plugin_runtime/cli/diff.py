"""``plugin-runtime diff A B --events FILE``: what two versions of a plugin do differently on
the same recorded events (``plugin_runtime.diff``)."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plugin_runtime.cli._common import Progress, checked_url, fail, missing_here, settings, wait_for_runtime
from plugin_runtime.client import segment
from plugin_runtime.errors import ClientError, PluginInvalid, PluginRuntimeError
from plugin_runtime.source import PluginSource

if TYPE_CHECKING:
    from plugin_runtime.client import Client

#: An uploaded plugin's version: NAME@3, or NAME@live for the version its events go to now.
UPLOADED = re.compile(r"(?P<name>[a-z0-9][a-z0-9._-]{0,62})@(?P<version>live|[1-9][0-9]{0,9})")


class _Runtime:
    """The service holding uploaded plugins, reached only when a side names one."""

    def __init__(self, url: str | None, token: str | None, data_dir: str | None) -> None:
        self.url, self.token, self.data_dir = url, token, data_dir
        self._client: Client | None = None

    def client(self) -> Client:
        from plugin_runtime.client import Client

        if self._client is None:
            config = settings(self.data_dir)
            target = checked_url(self.url or config.client_url)
            wait_for_runtime(target, config.data_dir)
            token = self.token or config.resolved_token(create=False)
            if not token:
                fail(f"no admin token to read uploaded plugins: {missing_here(config.data_dir, 'token', '--token')}")
            self._client = Client(target, token)
        return self._client

    def source(self, name: str, version: str) -> tuple[PluginSource, str]:
        """The version's files as uploaded, and what to call it (``name@3``)."""
        from plugin_runtime.source import load_archive

        client = self.client()
        if version == "live":
            live = client.get(f"/v1/plugins/{segment(name)}")["current_version"]
            if live is None:
                raise PluginInvalid([(f"{name} has no live version yet (`plugin-runtime plugins status {name}` "
                                      "shows its versions): name one, NAME@VERSION")])
            version = str(live)
        archive = client.get(f"/v1/plugins/{segment(name)}/versions/{version}/archive", expect_json=False).content
        return load_archive(archive, f"{name}@{version}.zip"), f"{name}@{version}"


def _load(side: str, runtime: _Runtime) -> tuple[PluginSource, str]:
    """A side as given: a path (main.py, folder, zip) when one exists, else NAME@VERSION."""
    from plugin_runtime.source import load_source

    if Path(side).exists():
        return load_source(side), side
    uploaded = UPLOADED.fullmatch(side)
    if uploaded is None:
        raise PluginInvalid([(f"{side}: no such file or folder, and not an uploaded plugin's version: give a "
                              "plugin's path (a main.py, a folder or a .zip) or NAME@VERSION / NAME@live")])
    return runtime.source(uploaded["name"], uploaded["version"])


@click.command("diff", short_help="Compare what two versions of a plugin do on recorded events.")
@click.argument("a")
@click.argument("b")
@click.option("--events", "events", required=True, type=click.Path(allow_dash=True),
              help="Recorded events, one JSON object per line ('-' for stdin): a plugin's events.jsonl, "
                   "`events export` output, events recorded from Kili.")
@click.option("--sandbox", type=click.Choice(["process", "docker"]), default="process", show_default=True,
              help="Where both plugins run.")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              help="Seconds each event's hook may take.")
@click.option("--format", "output_format", type=click.Choice(["auto", "json", "human"]), default="auto",
              show_default=True, help="json: one line per event; human: readable; auto: human on a terminal.")
@click.option("--url", envvar="PLUGIN_RUNTIME_URL", help="The service holding NAME@VERSION plugins.")
@click.option("--token", envvar="PLUGIN_RUNTIME_TOKEN", help="Admin bearer token (default: the data dir's).")
@click.option("--data-dir", envvar="PLUGIN_RUNTIME_DATA_DIR", type=click.Path(file_okay=False),
              help="Data directory of a server on this machine (its token is read there).")
def diff(a: str, b: str, events: str, sandbox: str, timeout: float, output_format: str, url: str | None,
         token: str | None, data_dir: str | None) -> None:
    """Run A and B over the same recorded EVENTS and print, for each event, whether they did the
    same: {"event_id", "same", "a": {"status", "actions"}, "b": ..., "only_a", "only_b"}.

    \b
    A and B: a plugin's path (a main.py, a folder or a .zip), or an uploaded plugin's version
    read from the runtime: NAME@VERSION, or NAME@live for its live version.
      plugin-runtime diff invoice-bot@live ./invoice-bot --events recorded.jsonl

    The summary (events compared, differing, by action type) goes to stderr. Exit code 0 when
    no event differs, 1 when some do, 2 when an input is refused."""
    from plugin_runtime.diff import run_diff
    from plugin_runtime.sandbox.base import Limits

    human = output_format == "human" or (output_format == "auto" and sys.stdout.isatty())
    # A terminated diff still removes its containers (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runtime = _Runtime(url, token, data_dir)
    try:
        (source_a, name_a), (source_b, name_b) = _load(a, runtime), _load(b, runtime)
        with Progress() as progress:
            code = run_diff(source_a, source_b, events, names=(name_a, name_b), sandbox=sandbox,
                            limits=Limits(timeout_s=timeout), echo=click.echo, err=sys.stderr, human=human,
                            style=lambda text, colour: click.style(text, fg=colour),
                            progress=None if human else progress)
    except ClientError as error:
        fail(f"cannot read an uploaded plugin: {error}")
    except PluginRuntimeError as error:
        fail(error)
    sys.exit(code)


COMMANDS = [diff]
