"""``plugin-runtime worker``: run plugin runs from the shared queue on this host."""

from __future__ import annotations

import logging
import signal
import threading

import click

from plugin_runtime.cli._common import fail
from plugin_runtime.errors import PluginRuntimeError


@click.command(short_help="Run plugins' runs from the shared queue on this host.")
@click.option("--database-url", envvar="PLUGIN_RUNTIME_DATABASE_URL", required=True,
              help="postgresql://user:password@host:port/database (or PLUGIN_RUNTIME_DATABASE_URL).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Runs at a time (default PLUGIN_RUNTIME_CONCURRENCY, 4).")
@click.option("--name", envvar="PLUGIN_RUNTIME_WORKER_NAME",
              help="What runs record as their worker (runs list --json: worker). Default HOST:PID.")
@click.option("--sandbox", envvar="PLUGIN_RUNTIME_SANDBOX", type=click.Choice(["docker", "process"]),
              default="docker", show_default=True,
              help="docker isolates plugins; process (no isolation) is for development only.")
def worker(database_url: str, concurrency: int | None, name: str | None, sandbox: str) -> None:
    """Take runs from the shared queue and run them with this host's Docker engine, until
    SIGTERM or Ctrl-C (running runs end first). Needs the database URL and Docker only:
    plugin archives are in the database, images are built here on first use."""
    from plugin_runtime.config import Settings
    from plugin_runtime.scheduler.worker_process import WorkerProcess

    settings = Settings(database_url=database_url, sandbox=sandbox)
    _log_to_stderr(settings.log_level)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    try:
        process = WorkerProcess(settings, name=name, concurrency=concurrency)
    except PluginRuntimeError as error:
        fail(error, 1)
    click.echo(f"plugin-runtime worker {process.name} on {process.store.where} (sandbox {sandbox})", err=True)
    process.run(stop)


def _log_to_stderr(level: str) -> None:
    """A worker has no data directory: its log goes to stderr (procrastinate's from warnings)."""
    from plugin_runtime import logs

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    for name, at in ((logs.ROOT, level), ("procrastinate", "WARNING")):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(at)
        logger.propagate = False


COMMANDS = [worker]
