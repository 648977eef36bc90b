"""What every client command shares: where the service is, its token, output as text or JSON."""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plugin_runtime.client import ClientError
from plugin_runtime.errors import PluginRuntimeError

if TYPE_CHECKING:
    from plugin_runtime.config import Settings
from plugin_runtime.terminal import escape


def fail(error: Exception | str, code: int = 2) -> None:
    """Refused input or unreachable service: the message alone, on stderr."""
    click.echo(f"error: {escape(str(error), multiline=True)}", err=True)  # may quote plugin text
    sys.exit(code)


def settings(data_dir: str | None = None) -> Settings:
    from plugin_runtime.config import Settings

    return Settings(data_dir=Path(data_dir)) if data_dir else Settings()


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
        target = checked_url(url or config.client_url)
        wait_for_runtime(target, config.data_dir)
        # Read after the wait: a runtime that is starting writes its token first.
        resolved = token or config.resolved_token(create=False)
        try:
            return function(*args, client=Client(target, resolved), **kwargs)
        except ClientError as error:
            if error.status == 401 and not resolved:
                fail(f"no admin token: {missing_here(config.data_dir, 'token', '--token')}", 1)
            fail(f"{error}{_next_step(str(error))}", 1)
        except PluginRuntimeError as error:
            fail(error, 1)

    return wrapper


_MISSING = re.compile(r"404: (plugin|run|project|asset) '([^']*)' does not exist(?: in project '([^']*)')?")


def _next_step(message: str) -> str:
    """Where to find what exists, after the service said something does not."""
    missing = _MISSING.fullmatch(message)
    if missing is None:
        return ""
    kind, name, project = missing.groups()
    if kind == "asset":
        return (f" (`plugin-runtime assets list --project {project}` lists its assets; `plugin-runtime assets "
                f"create --project {project} --id {name}` creates this one)")
    if kind == "project":
        return (f" (`plugin-runtime projects list` lists the projects; `plugin-runtime projects create {name}` "
                "creates it, and so does sending a recorded event of that project)")
    return f" (`plugin-runtime {kind}s list` lists the {kind}s)"


def checked_url(url: str) -> str:
    """The service's URL, or a usage error that shows the expected shape."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{url!r} is not the runtime's URL: give it as http://HOST:PORT, e.g. http://127.0.0.1:8400 "
             "(--url or PLUGIN_RUNTIME_URL)")
    return url


def missing_here(data_dir: Path, what: str, option: str) -> str:
    """Why the runtime's ``what`` (token, webhook-secret) was not found, and how to point the CLI at it."""
    if (data_dir / what).is_file():
        return f"{data_dir / what} is not readable: run this as the user who runs `plugin-runtime serve`, or pass {option}"
    found = f"no {data_dir / what}" if data_dir.is_dir() else f"no runtime data directory ({data_dir}) in this folder"
    return (f"{found}; a runtime keeps its {what} in the data directory of the folder where `plugin-runtime "
            f"serve` runs: run this command from that folder, or pass --data-dir PATH or {option}")


def wait_for_runtime(url: str, data_dir: Path, starting_s: float = 30.0, grace_s: float = 3.0) -> None:
    """Wait for a runtime that is still starting (`plugin-runtime serve &` just before).

    While a server holds the data directory's lock, it is starting: wait for it to answer (up to
    ``starting_s``). Otherwise allow ``grace_s`` (a server launched a moment ago may not hold its
    lock yet), then let the command fail with the usual message."""
    import requests

    deadline = time.monotonic() + grace_s
    told = False
    while True:
        try:
            requests.get(f"{url.rstrip('/')}/healthz", timeout=5)
            return
        except requests.ConnectionError:
            pass
        except requests.RequestException:
            return  # it answers, if slowly: the command reports what follows
        held, serving = _server_lock(data_dir)
        if held and serving and _port(serving) not in (0, _port(url)):
            fail(f"nothing answers at {url}; the runtime of the data directory {data_dir} serves at {serving}: "
                 f"pass --url {serving} (or set PLUGIN_RUNTIME_URL)", 1)
        if held and not told:
            click.echo(f"waiting for the runtime at {url} to start...", err=True)
            told = True
            deadline = time.monotonic() + starting_s
        elif told and not held:
            return  # it stopped while starting: the command says it cannot reach it
        if time.monotonic() >= deadline:
            return
        time.sleep(0.2)


def _server_lock(data_dir: Path) -> tuple[bool, str | None]:
    """Whether a server holds the data directory's lock, and the URL it wrote there."""
    import fcntl

    try:
        with open(data_dir / "server.lock", "rb") as lock:
            serving = lock.read(200).decode("utf-8", "replace").strip() or None
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True, serving
    except OSError:
        pass
    return False, None


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


class Progress:
    """One status line on stderr, rewritten in place on a terminal and erased when done, so
    that what follows starts on a clean line; on a pipe or a file, only the ``whole`` line
    given at the start (no carriage returns for a log or another program to untangle)."""

    def __init__(self, whole: str | None = None) -> None:
        self.live = sys.stderr.isatty()
        self._shown = False
        if whole and not self.live:
            click.echo(whole, err=True)

    def update(self, text: str) -> None:
        if self.live:
            click.echo(f"\r\033[K{text}", nl=False, err=True)
            self._shown = True

    def close(self) -> None:
        if self._shown:
            click.echo("\r\033[K", nl=False, err=True)
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def json_option(function: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON only.")(function)


def event_matcher_option(function: Callable) -> Callable:
    """``--event-matcher PATTERN`` (repeatable), read with ``event_matcher()``."""
    def keep(ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
        ctx.meta["plugin_runtime.event_matcher"] = list(value)
        return value

    return click.option(
        "--event-matcher", multiple=True, metavar="PATTERN", expose_value=False, callback=keep,
        help="A dotted event name or glob on_event receives (asset.*, label.workflow.*), repeatable; as Kili's "
             "upload_plugin(..., event_matcher=[...]), in place of the class attribute event_matcher.")(function)


def event_matcher() -> list[str]:
    """The ``--event-matcher`` patterns of the running command (none outside one)."""
    context = click.get_current_context(silent=True)
    return list(context.meta.get("plugin_runtime.event_matcher", [])) if context is not None else []


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
    if value is None or value == []:
        return "-"
    if isinstance(value, list) and all(isinstance(item, (str, int)) for item in value):
        text = ", ".join(str(item) for item in value)  # projects, subscriptions: names, not JSON
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return escape(text if len(text) <= 60 else text[:57] + "...")  # cells hold plugin text
