"""The ``plugin-runtime`` command line."""

from __future__ import annotations

import signal
import sys

import click

from plugin_runtime.cli._common import event_matcher, event_matcher_option, fail
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.terminal import escape


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="plugin-runtime")
def main() -> None:
    """Run event-triggered QA bots (plugins) on labeling projects.

    \b
    A first plugin, in a folder of your own:
      plugin-runtime init my-bot          a working bot, recorded events, tests
      plugin-runtime dry-run my-bot       what it does with each recorded event
      pytest my-bot                       its tests
      plugin-runtime serve &              a runtime, then: plugins upload, activate
    """


@main.command("dry-run", short_help="Replay recorded events through a plugin, printing its actions.")
@click.argument("plugin", type=click.Path(exists=True, dir_okay=True, path_type=str))
@click.option("--events", "events", type=click.Path(allow_dash=True),
              help="Recorded events, one JSON object per line ('-' for stdin). Default: the plugin "
                   "folder's events.jsonl.")
@click.option("--sandbox", type=click.Choice(["process", "docker"]), default="process",
              show_default=True, help="Where the plugin runs.")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              help="Seconds each event's hook may take.")
@click.option("--format", "output_format", type=click.Choice(["auto", "json", "human"]),
              default="auto", show_default=True,
              help="json: one line per event; human: a summary; auto: human on a terminal.")
@event_matcher_option
def dry_run(plugin: str, events: str | None, sandbox: str, timeout: float, output_format: str) -> None:
    """Run PLUGIN (a main.py, a folder or a .zip) against recorded EVENTS, printing the
    actions each event would produce. Exit code 0 only if every event is ok."""
    from plugin_runtime.cli._common import settings
    from plugin_runtime.dryrun import run_dry_run
    from plugin_runtime.event_matcher import with_event_matcher
    from plugin_runtime.sandbox.base import Limits
    from plugin_runtime.source import load_source

    human = output_format == "human" or (output_format == "auto" and sys.stdout.isatty())
    # A terminated dry-run still removes its containers (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        source = with_event_matcher(load_source(plugin), event_matcher())
        code = run_dry_run(
            source, events or _default_events(plugin), sandbox=sandbox, limits=Limits(timeout_s=timeout),
            out=sys.stdout, err=sys.stderr, human=human, progress=sys.stderr.isatty(),
            default_packages=settings().default_requirements(),
        )
    except PluginRuntimeError as error:
        fail(error)
    sys.exit(code)


def _default_events(plugin: str) -> str:
    """The events.jsonl next to the plugin's main.py (as ``init`` writes it), said on stderr."""
    import os

    folder = plugin if os.path.isdir(plugin) else os.path.dirname(plugin) or "."
    found = os.path.join(folder, "events.jsonl")
    if plugin.endswith(".zip") or not os.path.isfile(found):
        raise click.UsageError(
            f"Missing option '--events': no events.jsonl next to the plugin ({found}). Give the recorded "
            "events to replay, one JSON object per line: --events FILE (`plugin-runtime events export` "
            "records a project's; `plugin-runtime init` writes an example)")
    click.echo(f"events: {escape(found)} (--events FILE for others)", err=True)
    return found


@main.command(short_help="Create a plugin folder: a QA bot, its events, its tests.")
@click.argument("name")
@click.option("--kili", is_flag=True,
              help="Import PluginCore from kili.plugins, as on Kili's hosted plugins (it works here without kili).")
def init(name: str, kili: bool) -> None:
    """Create the plugin folder NAME (or a path: its last part names the plugin; '.' fills the
    current, empty folder): a working QA bot (main.py), its requirements.txt, recorded events to
    dry-run it on (events.jsonl), its tests (test_main.py) and a README."""
    import os
    import shlex

    from plugin_runtime import scaffold

    try:
        made = scaffold.create(name, kili=kili)
    except PluginRuntimeError as error:
        fail(error)
    where = os.path.relpath(made.folder)
    if where.startswith(".."):
        where = os.path.abspath(made.folder)
    click.echo(f"created {made.name} in ./" if where == "." else f"created {escape(where)}/")
    width = max(len(file) for file in made.files)
    for file in made.files:
        click.echo(f"  {file:{width}}  {scaffold.FILES[file]}")
    # Copy-pasteable as printed: the folder quoted for the shell where it needs to be.
    folder, events = shlex.quote(where), shlex.quote(os.path.join(where, "events.jsonl") if where != "." else "events.jsonl")
    click.echo("next, from this folder:")
    click.echo(f"  plugin-runtime dry-run {escape(folder)} --events {escape(events)} --format human")
    click.echo(f"  pytest {escape(folder)}" if where != "." else "  pytest")
    click.echo(f"  plugin-runtime plugins upload {escape(folder)} --name {made.name}"
               "   # with `plugin-runtime serve` running in this folder")


@main.command("base-image", short_help="Build (once) the base image plugin containers start from.")
@click.option("--name", envvar="PLUGIN_RUNTIME_BASE_IMAGE", default="plugin-runtime-base:bookworm",
              show_default=True, help="Image name; a registry image (python:3.12-slim) is pulled.")
def base_image_command(name: str) -> None:
    """Build (once) or pull the base image plugin containers start from. Without a registry
    it is made locally with debootstrap (about a minute); commands that need it do this on
    first use."""
    from plugin_runtime import base_image
    from plugin_runtime.engine import connect

    try:
        image = base_image.ensure(connect(), name, lambda m: click.echo(m, err=True))
    except PluginRuntimeError as error:
        fail(error)
    click.echo(f"{image.name}: Python {image.python} ({image.machine}, glibc {image.glibc}), id {image.image_id[:19]}")


@main.command(short_help="Run the runtime service: webhooks, admin API, platform.")
@click.option("--host", envvar="PLUGIN_RUNTIME_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PLUGIN_RUNTIME_PORT", type=int, default=8400, show_default=True)
@click.option("--data-dir", envvar="PLUGIN_RUNTIME_DATA_DIR", type=click.Path(file_okay=False),
              help="Where the database and generated secrets live (default ./.plugin-runtime).")
@click.option("--sandbox", envvar="PLUGIN_RUNTIME_SANDBOX", type=click.Choice(["docker", "process"]),
              default="docker", show_default=True,
              help="docker isolates plugins; process (no isolation) is for development only.")
@click.option("--database-url", envvar="PLUGIN_RUNTIME_DATABASE_URL",
              help="postgresql://user:password@host:port/db: a store shared with other serve and worker processes "
                   "(default: SQLite in the data directory).")
@click.option("--workers", envvar="PLUGIN_RUNTIME_WORKERS", type=click.IntRange(0, 64),
              help="With --database-url: runs this process runs from the shared queue (default "
                   "PLUGIN_RUNTIME_CONCURRENCY, 4; 0: API and intake only).")
def serve(host: str, port: int, data_dir: str | None, sandbox: str, database_url: str | None,
          workers: int | None) -> None:
    """Run the runtime service: webhook intake, admin API, embedded platform."""
    from plugin_runtime.cli._common import settings
    from plugin_runtime.server import serve as run

    config = settings(data_dir).model_copy(update={"host": host, "port": port, "sandbox": sandbox})
    if database_url is not None:
        config = config.model_copy(update={"database_url": database_url})
    if workers is not None:
        config = config.model_copy(update={"workers": workers})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run(config)
    except PluginRuntimeError as error:
        fail(error)


def _register() -> None:
    from plugin_runtime.cli import connections, db, demo, diff, events, platform, plugins, runs, shadow, worker

    for module in (plugins, events, runs, platform, demo, diff, shadow, connections, worker, db):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":
    main()
