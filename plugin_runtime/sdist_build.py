"""Building a source distribution into a wheel inside a sandboxed container.

A source distribution's build backend is arbitrary code, so it never runs on the host: it runs
in a container from the base image with the limits of a plugin run (no network, non-root, no
capabilities, read-only root with a ``/tmp`` tmpfs, memory, CPU and process limits) plus a
time limit of its own, and an environment holding nothing of the runtime's. The base image
has no pip: pip itself and the build dependencies are fed in as wheels downloaded on the host,
and pip is run from its wheel with ``--no-index``. The inputs go into an anonymous volume
before the container starts (the root is read-only), the wheel comes back out with
``get_archive``, and the container and its volume are removed whatever happens.
"""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import tempfile
import uuid
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from plugin_runtime.base_image import PLUGIN_USER, BaseImage
from plugin_runtime.errors import BuildFailed
from plugin_runtime.sandbox.base import Limits

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

#: What pip assumes for a source distribution without ``[build-system]`` (PEP 518).
DEFAULT_BUILD_REQUIRES = ["setuptools>=40.8.0", "wheel"]
WORK = "/build"
TMPFS_MB = 256
MAX_WHEEL_BYTES = 200 * 1024 * 1024
LABEL = "org.plugin-runtime.build"
# Only what Python and pip need; HOME and the caches live in the tmpfs.
ENVIRONMENT = {"LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
               "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/local/bin:/usr/bin:/bin"}
_COMPILER = re.compile(r"\b(gcc|cc|g\+\+|clang|rustc|cargo|cmake|make)\b.*(not found|failed|No such file)"
                       r"|command '[^']*gcc' failed|unable to execute|Microsoft Visual C\+\+", re.IGNORECASE)


def build_requires(sdist: Path) -> list[str]:
    """``[build-system].requires`` of a source distribution, read from its archive as data
    (setuptools and wheel when it declares none)."""
    text = _pyproject(sdist)
    if text is None:
        return list(DEFAULT_BUILD_REQUIRES)
    try:
        system = tomllib.loads(text).get("build-system", {})
    except tomllib.TOMLDecodeError as error:
        raise BuildFailed(f"{sdist.name}: its pyproject.toml is not valid TOML ({error})", "") from error
    requires = system.get("requires") if isinstance(system, dict) else None
    if requires is None:
        return list(DEFAULT_BUILD_REQUIRES)
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BuildFailed(f"{sdist.name}: [build-system].requires in its pyproject.toml is not a list of strings", "")
    return requires


def _pyproject(sdist: Path) -> str | None:
    """The top-level ``pyproject.toml`` of an sdist (``name-version/pyproject.toml``)."""
    def top(name: str) -> bool:
        parts = name.strip("/").split("/")
        return len(parts) == 2 and parts[1] == "pyproject.toml"

    try:
        if sdist.name.lower().endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                names = [n for n in archive.namelist() if top(n)]
                return archive.read(names[0]).decode("utf-8") if names else None
        with tarfile.open(sdist, "r:*") as tar:
            for member in tar:
                if member.isfile() and top(member.name) and member.size < 1024 * 1024:
                    handle = tar.extractfile(member)
                    return handle.read().decode("utf-8") if handle else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise BuildFailed(f"{sdist.name} is not a readable source archive ({error})", "") from error
    return None


class SandboxedBuild:
    """Builds one source distribution into a wheel in a throwaway container; see the module
    docstring."""

    def __init__(self, client, base: BaseImage, timeout_s: float, limits: Limits | None = None) -> None:
        self.client, self.base, self.timeout_s = client, base, timeout_s
        self.limits = limits or Limits()

    def build(self, sdist: Path, feed: Path, project: str, out: Path, log: list[str]) -> Path:
        """The wheel of ``project`` built from ``sdist``, with the wheels in ``feed`` (pip and
        the build dependencies) as the only packages available, written to ``out``."""
        pip_wheel = sorted(feed.glob("pip-*.whl"))
        if not pip_wheel:
            raise BuildFailed("no pip wheel to build with (pip could not be downloaded for the image)", "\n".join(log))
        command = [self.base.python_path, f"{WORK}/feed/{pip_wheel[-1].name}/pip", "wheel", "--no-deps",
                   "--no-index", "--find-links", f"{WORK}/feed", "--wheel-dir", f"{WORK}/out",
                   "--disable-pip-version-check", "--no-input", "--isolated", f"{WORK}/src/{sdist.name}"]
        container = self._create(command)
        try:
            container.put_archive(WORK, _inputs(sdist, feed))
            container.start()
            status = self._wait(container, sdist, log)
            try:
                output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            except Exception as error:  # removed under us (an engine restart, an admin's cleanup)
                output = f"(the build container's log could not be read: {error})"
            log.extend(output.splitlines()[-400:])
            if status != 0:
                raise BuildFailed(_failed(sdist, project, status, output, self.base), "\n".join(log))
            return self._wheel(container, project, out, log)
        finally:
            try:
                container.remove(force=True, v=True)
            except Exception:
                pass  # already gone; nothing of it holds a resource then

    def _create(self, command: list[str]):
        from docker.types import Mount

        from plugin_runtime.sandbox.docker import LABEL as SANDBOX, security_options, ulimits

        try:
            return self.client.containers.create(
                self.base.image_id, command, name=f"plugin-runtime-build-{uuid.uuid4().hex[:12]}",
                user=PLUGIN_USER, working_dir="/tmp", environment=ENVIRONMENT, network_mode="none",
                read_only=True, tmpfs={"/tmp": f"rw,nosuid,nodev,size={TMPFS_MB}m"},
                mounts=[Mount(WORK, None, type="volume")], cap_drop=["ALL"],
                security_opt=security_options(), ulimits=ulimits(),
                mem_limit=f"{self.limits.memory_mb}m", memswap_limit=f"{self.limits.memory_mb}m",
                nano_cpus=int(self.limits.cpus * 1e9), pids_limit=self.limits.pids, ipc_mode="private",
                log_config={"type": "json-file", "config": {"max-size": "5m", "max-file": "1"}},
                # The sandbox's labels too, so the sweep removes it if this process dies mid-build.
                labels={LABEL: "1", SANDBOX: "1", f"{SANDBOX}.owner": f"{socket.gethostname()}:{os.getpid()}"},
                hostname="build",
            )
        except Exception as error:
            raise BuildFailed(f"cannot create the build container: {error}", "") from error

    def _wait(self, container, sdist: Path, log: list[str]) -> int:
        try:
            return int(container.wait(timeout=self.timeout_s).get("StatusCode", -1))
        except Exception as error:  # requests' ReadTimeout or ConnectionError: past the limit
            raise BuildFailed(
                f"building {sdist.name} took longer than {self.timeout_s:g} s, the build time limit "
                "(PLUGIN_RUNTIME_BUILD_TIMEOUT_S): pin a version of the package that publishes a wheel, "
                "or ask the admin to raise the limit",
                "\n".join(log),
            ) from error

    def _wheel(self, container, project: str, out: Path, log: list[str]) -> Path:
        """The one wheel the build left, checked to be ``project``'s; never extracted by path."""
        stream, _ = container.get_archive(f"{WORK}/out")
        with tempfile.TemporaryFile() as spool:
            size = 0
            for chunk in stream:
                size += len(chunk)
                if size > MAX_WHEEL_BYTES:
                    raise BuildFailed(f"the build of {project} produced more than {MAX_WHEEL_BYTES // 2**20} MB",
                                      "\n".join(log))
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as tar:
                wheels = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".whl")]
                names = [Path(m.name).name for m in wheels]
                try:
                    parsed = [parse_wheel_filename(name) for name in names]
                except ValueError as error:
                    raise BuildFailed(f"the build of {project} produced a badly named wheel: {error}",
                                      "\n".join(log)) from error
                if len(wheels) != 1 or parsed[0][0] != canonicalize_name(project):
                    raise BuildFailed(f"the build of {project} should produce one wheel of {project}; it produced "
                                      f"{names or 'none'}", "\n".join(log))
                handle = tar.extractfile(wheels[0])
                assert handle is not None  # a regular file member always has contents
                out.mkdir(parents=True, exist_ok=True)
                path = out / names[0]
                path.write_bytes(handle.read())
        log.append(f"built {path.name}")
        return path


def _inputs(sdist: Path, feed: Path) -> bytes:
    """The tar put into the container's volume: ``src/`` (the sdist), ``feed/`` (wheels) and an
    empty ``out/`` the build user can write."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("src", "feed", "out"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            info.uid = info.gid = int(PLUGIN_USER.split(":")[0])
            tar.addfile(info)
        for name, path in [(f"src/{sdist.name}", sdist), *((f"feed/{w.name}", w) for w in sorted(feed.glob("*.whl")))]:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _failed(sdist: Path, project: str, status: int, output: str, base: BaseImage) -> str:
    tail = "\n".join(line for line in output.splitlines()[-15:] if line.strip())
    compiler = " It needs a compiler, which the build sandbox does not have." if _COMPILER.search(output) else ""
    return (
        f"building {sdist.name} (published as source only) failed in the build sandbox (exit code {status}).{compiler}\n"
        f"{tail}\n"
        f"Only pure-Python source distributions can be built (no network, no compiler). Pin a version of "
        f"{project} that publishes a wheel for Python {base.python} on {base.machine} (manylinux), or ask its "
        "maintainers for one; the whole build log is in the plugin's build log."
    )
