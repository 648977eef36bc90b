"""What every client command shares: where the service is, its token, output as text or JSON."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.terminal import escape


def fail(error: Exception | str, code: int = 2) -> None:
    """Refused input or unreachable service: the message alone, on stderr."""
    click.echo(f"error: {error}", err=True)
    sys.exit(code)


def settings(data_dir: str | None = None):
    from plugin_runtime.config import Settings

    return Settings(**({"data_dir": Path(data_dir)} if data_dir else {}))


def client_options(function: Callable) -> Callable:
    """``--url``, ``--token`` and ``--data-dir`` (where a local server keeps its token)."""

    @click.option("--url", envvar="PLUGIN_RUNTIME_URL", help="The service, default http://127.0.0.1:8400.")
    @click.option("--token", envvar="PLUGIN_RUNTIME_TOKEN", help="Admin bearer token (default: the data dir's).")
    @click.option("--data-dir", envvar="PLUGIN_RUNTIME_DATA_DIR", type=click.Path(file_okay=False),
                  help="Data directory of a server on this machine (its token is read there).")
    @functools.wraps(function)
    def wrapper(*args: Any, url: str | None, token: str | None, data_dir: str | None, **kwargs: Any) -> Any:
        from plugin_runtime.client import Client

        config = settings(data_dir)
        resolved = token or config.resolved_token(create=False)
        try:
            return function(*args, client=Client(url or config.client_url, resolved), **kwargs)
        except PluginRuntimeError as error:
            fail(error, 1)

    return wrapper


def json_option(function: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON only.")(function)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], empty: str = "(none)") -> None:
    """A plain text table of ``columns`` of ``rows``."""
    rows = list(rows)
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return escape(text if len(text) <= 60 else text[:57] + "...")  # cells hold plugin text
