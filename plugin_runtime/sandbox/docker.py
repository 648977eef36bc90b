"""The Docker sandbox: each plugin runs in an isolated container, kept warm per project.

Containers have no network, a read-only root with a small ``/tmp``, a non-root user, no
capabilities, ``no-new-privileges``, our own seccomp profile (``seccomp.json``: Docker's
current default, so without ``io_uring``), memory without swap, a CPU quota, a process limit
and an open-file limit, and an environment holding nothing of the runtime's. The only way in
or out is the attached stdin/stdout carrying ``plugin_sdk._wire`` messages.

Between events the host reads each warm container's CPU time from its cgroup (a file, no Docker
API call) and pauses one that keeps using it while idle (``WorkerPool.contain_idle_cpu``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from importlib import resources

import requests
from docker.errors import NotFound
from docker.types import Ulimit

from plugin_runtime import engine
from plugin_runtime.base_image import PLUGIN_USER
from plugin_runtime.builder import CODE, SDK, SITE
from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.channel import Worker
from plugin_runtime.sandbox.frames import OutputLimit
from plugin_runtime.sandbox.pool import ProjectReader, WorkerPool
from plugin_runtime.sandbox.process import BOOT

_log = logging.getLogger(__name__)
PREFIX = "plugin-runtime"
LABEL = "org.plugin-runtime.sandbox"
TMPFS_MB = 64
# Nothing of the runtime's environment: only what Python needs to behave.
ENVIRONMENT = {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "HOME": "/tmp"}
#: Open files per container process (soft = hard, so a plugin cannot raise it). Left to the
#: engine it can be 1,048,576, enough for one plugin to exhaust the host's file table; 1024 is
#: also what select() can watch, so nothing ordinary needs more.
NOFILE = 1024
#: What PID 1 of a container exits with when SIGKILLed. Nothing inside its PID namespace can
#: send it that (the kernel protects a namespace's init), so without an OOM kill it came from
#: outside: the engine stopping it (a restart without live-restore) or an administrator.
KILLED_FROM_OUTSIDE = 137
#: What the engine sends a container it stops (at its own restart or shutdown). Plugins are
#: never stopped by us (they are removed by force), and as PID 1 without a handler they ignore
#: SIGTERM: the engine's default would wait 10 s per container before its SIGKILL, delaying
#: its return by as much.
STOP_SIGNAL = "SIGKILL"
#: How often idle containers' CPU is looked at: a thread spinning after its hook is paused within
#: about this long (plus ``pool.IDLE_CPU_S`` of its CPU).
IDLE_CHECK_S = 0.5
#: Where a container's CPU time is, by the engine's cgroup layout (cgroupfs or systemd driver,
#: cgroup v1 or v2): (path with {id}, whether it is v2's cpu.stat in microseconds).
CGROUP_CPU = (
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", True),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", True),
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", False),
    ("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage", False),
    ("/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage", False),
    ("/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-{id}.scope/cpuacct.usage", False),
)


def cgroup_cpu(container_id: str) -> tuple[str, bool] | None:
    """The file holding the container's CPU time on this machine, or None (an engine on another
    machine, or a layout not known here: idle CPU is then not watched)."""
    for pattern, v2 in CGROUP_CPU:
        path = pattern.format(id=container_id)
        if os.path.exists(path):
            return path, v2
    return None


def read_cpu_ns(where: tuple[str, bool]) -> int | None:
    """The CPU time (ns) in a ``cgroup_cpu`` file; None once the container is gone."""
    path, v2 = where
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if not v2:
            return int(data)
        for line in data.splitlines():
            if line.startswith(b"usage_usec "):
                return int(line.split()[1]) * 1000
    except (OSError, ValueError):
        return None
    return None


@functools.cache
def seccomp_profile() -> str:
    """The seccomp profile plugin containers run under, as the JSON text Docker takes.

    ``seccomp.json`` is moby's default profile as of github.com/moby/profiles seccomp v0.2.3
    (vendored by moby/moby b985e2313a; unchanged): an allow-list with ``defaultAction``
    SCMP_ACT_ERRNO, arch maps, capability-conditional rules and the clone/personality/socket
    argument filters. Shipping it rather than trusting the engine's built-in default matters
    because Docker 20.10, which Debian 12 ships, still allows ``io_uring_setup``,
    ``io_uring_enter`` and ``io_uring_register``: io_uring bypasses seccomp filtering of the
    operations it performs and has been the way out of containers in a string of kernel
    exploits, so Docker 25 and containerd dropped it; nothing a plugin does needs it. Newer
    syscall names an older engine does not know are skipped by runc, not refused.
    """
    text = resources.files("plugin_runtime.sandbox").joinpath("seccomp.json").read_text(encoding="utf-8")
    return json.dumps(json.loads(text), separators=(",", ":"))


def security_options() -> list[str]:
    """``security_opt`` of every container that runs code we do not trust."""
    return ["no-new-privileges", f"seccomp={seccomp_profile()}"]


def ulimits() -> list[Ulimit]:
    return [Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:40] or "x"


class _AttachedStream:
    """A container's stdin/stdout/stderr over one hijacked Docker API connection.

    Without a TTY, Docker multiplexes stdout and stderr in frames (8-byte header: stream,
    0, 0, 0, big-endian length). ``read`` returns stdout bytes only; stderr is kept as a short
    tail for error messages and counted against the output limit.
    """

    def __init__(self, container_id: str, api_version: str, max_stderr: int) -> None:
        kind, address = engine.socket_address()
        if kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(address)
        else:
            host, _, port = address.rpartition(":")
            self.sock = socket.create_connection((host, int(port)))
        request = (
            f"POST /v{api_version}/containers/{container_id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SandboxUnavailable("the Docker engine closed the attach connection")
            head += chunk
        status_line, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status_line.split(b"\r\n")[0] and b" 200 " not in status_line.split(b"\r\n")[0]:
            raise SandboxUnavailable(f"attaching to the container failed: {status_line[:200]!r}")
        self.raw = bytearray(rest)
        self.stderr_tail = bytearray()
        self.stderr_bytes = 0
        self.max_stderr = max_stderr
        self.eof = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bytes | None:
        """Stdout bytes received so far; ``b""`` at end of stream; ``None`` when what
        arrived was only stderr or part of a frame (the caller waits again, deadline intact)."""
        out = self._frames()
        if out:
            return out
        if self.eof:
            return b""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            self.eof = True
            return self._frames() or b""
        self.raw += chunk
        return self._frames() or None

    def _frames(self) -> bytes:
        out = bytearray()
        while len(self.raw) >= 8:
            stream, size = self.raw[0], struct.unpack(">I", self.raw[4:8])[0]
            if len(self.raw) < 8 + size:
                break
            payload = bytes(self.raw[8 : 8 + size])
            del self.raw[: 8 + size]
            if stream == 2:
                self.stderr_bytes += size
                self.stderr_tail = (self.stderr_tail + payload)[-4000:]
                if self.stderr_bytes > self.max_stderr:
                    raise OutputLimit(f"the plugin wrote more than {self.max_stderr} bytes to stderr")
            else:
                out += payload
        return bytes(out)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _Container:
    """One plugin container: created, attached, started; removed by ``kill``. One the engine
    could not remove (it was away) is handed to ``leftover``, to remove once it answers again."""

    def __init__(self, client, image: str, project_id: str, limits: Limits, labels: dict[str, str],
                 leftover: Callable[[str], None] = lambda container_id: None) -> None:
        self.client, self.leftover = client, leftover
        name = f"{PREFIX}-{_slug(project_id)}-{uuid.uuid4().hex[:10]}"
        try:
            self.container = client.containers.create(
                image,
                command=["python3", "-I", "-c", BOOT, f"{SDK}:{SITE}", f"{CODE}/main.py"],
                name=name,
                user=PLUGIN_USER,
                working_dir=CODE,
                environment=ENVIRONMENT,
                network_mode="none",
                read_only=True,
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={TMPFS_MB}m"},
                cap_drop=["ALL"],
                security_opt=security_options(),
                ulimits=ulimits(),
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                ipc_mode="private",
                stdin_open=True,
                tty=False,
                log_config={"type": "none", "config": {}},
                labels={LABEL: "1", f"{LABEL}.project": project_id, **labels},
                hostname="plugin",
                stop_signal=STOP_SIGNAL,
            )
        except Exception as error:
            raise SandboxUnavailable(f"cannot create a container from {image}: {error}") from error
        try:
            self.stream = _AttachedStream(self.container.id, client.api.api_version, limits.max_log_bytes)
            try:
                self.container.start()
            except BaseException:
                self.stream.close()
                raise
        except BaseException as error:
            # Created but not started: removed here, since the sweep spares a live owner's.
            self._remove()
            if isinstance(error, Exception) and not isinstance(error, SandboxUnavailable):
                raise SandboxUnavailable(f"cannot start a container from {image}: {error}") from error
            raise
        #: Where its CPU time is read (``cgroup_cpu``).
        self.cpu = cgroup_cpu(self.container.id)
        self.exit_code: int | None = None
        self.oom = False
        #: Why the engine, not the plugin, ended the container (read after ``kill``).
        self.lost: str | None = None
        self.removed = False

    def kill(self) -> None:
        if self.removed:
            return
        self.removed = True
        self._look()
        self.stream.close()
        self._remove()

    def _look(self) -> None:
        """How the container ended (exit code, OOM), or why its engine ended it (``lost``)."""
        api = self.client.api
        try:
            if self.stream.eof:
                # The plugin's process ended by itself: let Docker record how (OOM, exit code).
                # Still running after that: the plugin closed its output, it did not exit.
                try:
                    api.wait(self.container.id, timeout=2)
                except requests.exceptions.ReadTimeout:
                    pass
            state = api.inspect_container(self.container.id)["State"]
        except NotFound:
            self.lost = "its container vanished from the Docker engine without an exit code"
            return
        except Exception as error:  # refused, reset or timed out: the engine is away
            self.lost = f"the Docker engine stopped answering ({type(error).__name__}: {error})"
            return
        if state.get("Running"):
            return
        self.exit_code, self.oom = state.get("ExitCode"), bool(state.get("OOMKilled"))
        if self.exit_code == KILLED_FROM_OUTSIDE and not self.oom:
            self.lost = ("its container was killed from outside (exit code 137, not out of memory): by the Docker "
                         "engine stopping or restarting, or by an administrator")

    def _remove(self) -> None:
        try:
            self.container.remove(force=True)
        except NotFound:
            pass
        except Exception:
            self.leftover(self.container.id)

    def exit_info(self) -> str:
        state = "killed" if self.exit_code is None else f"exit code {self.exit_code}"
        if self.oom:
            state += " (out of memory)"
        tail = self.stream.stderr_tail.decode("utf-8", "replace").strip()
        return state + (f"; its stderr ends with:\n{tail}" if tail else "")


class DockerSandbox(WorkerPool):
    """Runs one plugin image in containers, one warm container per project."""

    def __init__(
        self,
        client,
        image: str,
        limits: Limits | None = None,
        reader: ProjectReader | None = None,
        labels: dict[str, str] | None = None,
        max_events: int = 10_000,
        idle_s: float = 300.0,
    ) -> None:
        super().__init__(limits, reader, max_events, idle_s)
        self.client = client
        self.image = image
        self.labels = {f"{LABEL}.owner": f"{socket.gethostname()}:{os.getpid()}", **(labels or {})}
        #: Containers the engine could not remove when they stopped (it was away); the sweep
        #: spares a live owner's, so they are removed here once the engine answers again.
        self.leftovers: list[str] = []
        self._leftovers_lock = threading.Lock()
        #: Each project's latest container, for its CPU time.
        self._boxes: dict[str, _Container] = {}
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None

    def _spawn(self, project_id: str) -> Worker:
        self.remove_leftovers()
        box = _Container(self.client, self.image, project_id, self.limits, self.labels, self._leftover)
        self._boxes[project_id] = box
        if box.cpu is not None and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="idle-cpu", daemon=True)
            self._watcher.start()
        return Worker(
            box.stream.write, box.stream, box.kill, box.exit_info, self.limits, self.call_handler(project_id),
            oom_killed=lambda: box.oom, lost=lambda: box.lost,
        )

    def _cpu_ns(self, project_id: str) -> int | None:
        box = self._boxes.get(project_id)
        return None if box is None or box.cpu is None or box.removed else read_cpu_ns(box.cpu)

    def _set_aside(self, project_id: str, worker: Worker) -> None:
        """Paused (its memory kept, its CPU stopped) until the next event or the idle eviction
        removes it; stopped outright when the engine cannot pause it."""
        box = self._boxes.get(project_id)
        try:
            if box is None or box.removed:
                raise LookupError(project_id)
            box.container.pause()
        except Exception:  # gone meanwhile, or the engine refused: removed instead
            worker.stop()

    def _watch(self) -> None:
        while not self._closing.wait(IDLE_CHECK_S):
            try:
                self.contain_idle_cpu()
            except Exception:  # a watcher that stops would let the next spinning thread be
                _log.exception("the idle containers' CPU could not be looked at")

    def _leftover(self, container_id: str) -> None:
        with self._leftovers_lock:
            self.leftovers.append(container_id)

    def remove_leftovers(self) -> None:
        """Remove the containers left behind while the engine was away (kept while it still is)."""
        with self._leftovers_lock:
            pending, self.leftovers = self.leftovers, []
        for container_id in pending:
            try:
                self.client.api.remove_container(container_id, force=True)
            except NotFound:
                pass
            except Exception:
                self._leftover(container_id)

    def close(self) -> None:
        self._closing.set()
        super().close()
        self._boxes.clear()
        self.remove_leftovers()


def sweep(client) -> int:
    """Remove the sandbox containers left behind by processes of this host that are gone.
    Containers of other hosts sharing the engine are left alone: their owners may be alive."""
    host = socket.gethostname()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(f"{LABEL}.owner", "")
        owner_host, _, pid = owner.partition(":")
        if owner_host != host or (pid.isdigit() and _alive(int(pid))):
            continue
        try:
            container.remove(force=True)
            removed += 1
        except Exception:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_for_source(source, limits: Limits | None = None, progress=None, base: str | None = None) -> DockerSandbox:
    """A sandbox for a plugin that is not registered (dry-run): its image is built, or reused
    when these exact files were built before, and leftovers of dead runs are swept first."""
    from plugin_runtime.base_image import DEFAULT_BASE_IMAGE
    from plugin_runtime.builder import Builder

    client = engine.connect()
    sweep(client)
    from plugin_runtime.config import Settings

    settings = Settings()
    builder = Builder(client, base or settings.base_image or DEFAULT_BASE_IMAGE, progress,
                      build_timeout_s=settings.build_timeout_s, default_packages=settings.default_requirements())
    result = builder.build(source, f"plugin-runtime-dryrun:{source.digest()[:16]}")
    box = DockerSandbox(client, result.image, limits)
    box.event_matcher = list(source.event_matcher)
    return box
