"""The process sandbox: the plugin runs in a child Python process on this machine.

Not a security boundary (the child has the user's permissions and network): it is for
authors dry-running their own plugins. It still keeps the plugin out of the CLI's interpreter,
enforces the time and output limits, and strips the runtime's environment.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
import plugin_sdk
from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.channel import Worker
from plugin_runtime.sandbox.pool import ProjectReader, WorkerPool
from plugin_runtime.source import PluginSource

SDK_ROOT = str(Path(plugin_sdk.__file__).resolve().parent.parent)
# -I: no user site, no PYTHON* variables, no script folder on sys.path; the SDK goes first.
BOOT = (
    "import sys; sys.path[:0] = sys.argv[1].split(':'); "
    "from plugin_sdk._child import main; sys.exit(main())"
)
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


def plugin_env() -> dict[str, str]:
    """The child's environment: nothing of the runtime's (tokens, secrets, proxies)."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class _Process:
    """A child process and the tail of its stderr, drained so it never blocks on a full pipe."""

    def __init__(self, folder: Path, python: str) -> None:
        try:
            self.popen = subprocess.Popen(
                [python, "-I", "-c", BOOT, SDK_ROOT, str(folder / "main.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=folder, env=plugin_env(), start_new_session=True, bufsize=0,
            )
        except OSError as error:
            raise SandboxUnavailable(f"cannot start the plugin process with {python}: {error}") from error
        self.stderr_tail: collections.deque[bytes] = collections.deque(maxlen=64)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        stderr = self.popen.stderr
        assert stderr is not None
        for line in iter(lambda: stderr.readline(4096), b""):
            self.stderr_tail.append(line)

    def write(self, data: bytes) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(data)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                # The whole session: a plugin's own subprocesses go with it.
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def exit_info(self) -> str:
        try:
            code = self.popen.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            state = f"killed by signal {signal.Signals(-code).name}"
        else:
            state = f"exit code {code}"
        tail = b"".join(self.stderr_tail).decode("utf-8", "replace").strip()
        return state + (f"; its stderr ends with:\n{tail[-4000:]}" if tail else "")


class ProcessSandbox(WorkerPool):
    """Runs one plugin in local child processes, one warm process per project."""

    def __init__(
        self,
        source: PluginSource,
        limits: Limits | None = None,
        python: str | None = None,
        reader: ProjectReader | None = None,
    ) -> None:
        super().__init__(limits, reader)
        self.python = python or sys.executable
        self._tmp = tempfile.TemporaryDirectory(prefix="plugin-runtime-")
        self.folder = source.write_to(Path(self._tmp.name))
        self.event_matcher = list(source.event_matcher)

    def _spawn(self, project_id: str) -> Worker:
        process = _Process(self.folder, self.python)
        assert process.popen.stdout is not None
        return Worker(
            process.write, process.popen.stdout.fileno(), process.kill, process.exit_info,
            self.limits, self.call_handler(project_id),
        )

    def close(self) -> None:
        super().close()
        self._tmp.cleanup()
