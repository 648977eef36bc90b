"""``plugin-runtime db upgrade|version``: the shared database's schema, on purpose.

``serve`` and ``worker`` apply missing migrations when they start (under a lock: several
starting at once apply them once); ``db upgrade`` does it ahead of them, e.g. before a
rolling restart.
"""

from __future__ import annotations

import click

from plugin_runtime.cli._common import fail
from plugin_runtime.errors import PluginRuntimeError

database_url_option = click.option(
    "--database-url", envvar="PLUGIN_RUNTIME_DATABASE_URL", required=True,
    help="postgresql://user:password@host:port/database (or PLUGIN_RUNTIME_DATABASE_URL).")


@click.group(short_help="Migrate the shared PostgreSQL database (several machines).")
def db() -> None:
    """The shared PostgreSQL database of a runtime on several machines."""


@db.command()
@database_url_option
def upgrade(database_url: str) -> None:
    """Apply the migrations the database lacks; exit 0, also when it is up to date."""
    from plugin_runtime.store.backends import check_url
    from plugin_runtime.store.postgres import MIGRATIONS, upgrade as migrate, where

    try:
        applied = migrate(check_url(database_url))
    except PluginRuntimeError as error:
        fail(error, 1)
    if applied:
        click.echo(f"{where(database_url)}: applied migrations {applied[0]} to {applied[-1]}; "
                   f"schema version {len(MIGRATIONS)}")
    else:
        click.echo(f"{where(database_url)}: up to date (schema version {len(MIGRATIONS)})")


@db.command()
@database_url_option
def version(database_url: str) -> None:
    """The database's schema version and this runtime's; exit 1 when they differ."""
    from plugin_runtime.store.backends import check_url
    from plugin_runtime.store.postgres import MIGRATIONS, version as current

    try:
        found = current(check_url(database_url))
    except PluginRuntimeError as error:
        fail(error, 1)
    click.echo(f"database {found}, runtime {len(MIGRATIONS)}"
               + ("" if found == len(MIGRATIONS) else ": run `plugin-runtime db upgrade`"))
    raise SystemExit(0 if found == len(MIGRATIONS) else 1)


COMMANDS = [db]
