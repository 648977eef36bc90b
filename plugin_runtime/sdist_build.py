"""Building a source distribution into a wheel inside a sandboxed container.

A source distribution's build backend is arbitrary code, so it never runs on the host: it runs
in a container from the base image with the limits of a plugin run (no network, non-root, no
capabilities, read-only root with a ``/tmp`` tmpfs, memory, CPU and process limits) plus a
time limit of its own, and an environment holding nothing of the runtime's. The base image
has no pip: pip itself and the build dependencies are fed in as wheels downloaded on the host,
and pip is run from its wheel with ``--no-index``. The inputs go into an anonymous volume
before the container starts (the root is read-only); it belongs to root, so the build writes
only to its tmpfs, bounded and in its memory, never to the host's disk (where the volume lives).
The wheel comes back on the container's stdout (base64, within its log's size limit), and the
container and its volume are removed whatever happens.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import shutil
import socket
import sys
import tarfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from unearth import Package

from plugin_runtime.base_image import PLUGIN_USER, BaseImage
from plugin_runtime.config import cache_dir
from plugin_runtime.errors import BuildFailed
from plugin_runtime.resolver import HostPip, failure, missing_requirements
from plugin_runtime.sandbox.base import Limits

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

#: What pip assumes for a source distribution without ``[build-system]`` (PEP 518).
DEFAULT_BUILD_REQUIRES = ["setuptools>=40.8.0", "wheel"]
WORK = "/build"
TMPFS_MB = 256
MAX_WHEEL_BYTES = 200 * 1024 * 1024
#: The container's log holds the wheel (base64) and pip's output: it is all the build may
#: write outside its memory.
LOG_MB = MAX_WHEEL_BYTES * 4 // 3 // 2**20 + 16
#: Starts the wheel on stdout: ``<mark> <file name>`` then base64 lines (or the names found,
#: when the build did not leave exactly one wheel).
WHEEL_MARK = "plugin-runtime-wheel:"
# Runs in the build container: pip (its output to stderr) builds into the tmpfs, then the one
# wheel goes to stdout.
_RUN = f"""
import base64, os, subprocess, sys
pip, sdist, out = sys.argv[1], sys.argv[2], "/tmp/out"
done = subprocess.run([sys.executable, pip, "wheel", "--no-deps", "--no-index", "--find-links", "{WORK}/feed",
                       "--wheel-dir", out, "--disable-pip-version-check", "--no-input", "--isolated", sdist], stdout=2)
if done.returncode:
    sys.exit(done.returncode)
names = sorted(n for n in os.listdir(out) if n.endswith(".whl"))
sys.stdout.write("{WHEEL_MARK} " + " ".join(names) + "\\n")
if len(names) == 1:
    with open(os.path.join(out, names[0]), "rb") as wheel:  # in slices: the wheel may be large
        for part in iter(lambda: wheel.read(57 * 1024), b""):
            sys.stdout.write(base64.encodebytes(part).decode())
"""
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
    except (tomllib.TOMLDecodeError, RecursionError) as error:  # RecursionError: arrays nested 100,000 deep
        raise BuildFailed(f"{sdist.name}: its pyproject.toml is not valid TOML ({type(error).__name__}: "
                          f"{str(error)[:200]})", "") from error
    requires = system.get("requires") if isinstance(system, dict) else None
    if requires is None:
        return list(DEFAULT_BUILD_REQUIRES)
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BuildFailed(f"{sdist.name}: [build-system].requires in its pyproject.toml is not a list of strings", "")
    return requires


#: What the host reads of a source archive looking for its pyproject.toml: the archive comes
#: from an index anyone publishes to, and a few megabytes of gzip unpack to gigabytes (a huge
#: first member, a pax header declaring 4 GB, a million empty members).
MAX_SCAN_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_PYPROJECT_BYTES = 1024 * 1024


class _TooLarge(Exception):
    pass


class _Capped(io.RawIOBase):
    """The first ``limit`` bytes of a stream; reading (or skipping) past them raises."""

    def __init__(self, stream: io.BufferedIOBase, limit: int) -> None:
        self.stream, self.left = stream, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - any writable buffer, as io.RawIOBase's
        if len(buffer) > self.left:
            raise _TooLarge
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)


def _pyproject(sdist: Path) -> str | None:
    """The top-level ``pyproject.toml`` of an sdist (``name-version/pyproject.toml``), read as
    data within ``MAX_SCAN_BYTES`` and ``MAX_MEMBERS``."""
    def top(name: str) -> bool:
        parts = name.strip("/").split("/")
        return len(parts) == 2 and parts[1] == "pyproject.toml"

    too_large = (f"{sdist.name} is too large to read on the host: its pyproject.toml is not within its first "
                 f"{MAX_MEMBERS} files and {MAX_SCAN_BYTES // 2**20} MB unpacked; pin a version of the package "
                 "that publishes a wheel")
    try:
        if sdist.name.lower().endswith(".zip"):
            return _zip_pyproject(sdist, top, too_large)
        # Stream mode over a capped gunzip: members are read in order, skipped data counts.
        with gzip.open(sdist) as unpacked, tarfile.open(fileobj=_Capped(unpacked, MAX_SCAN_BYTES), mode="r|") as tar:
            for _ in range(MAX_MEMBERS):
                member = tar.next()
                if member is None:
                    return None
                if member.isfile() and top(member.name) and member.size <= MAX_PYPROJECT_BYTES:
                    handle = tar.extractfile(member)
                    return handle.read().decode("utf-8") if handle else None
            raise BuildFailed(too_large, "")
    except _TooLarge:
        raise BuildFailed(too_large, "") from None
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise BuildFailed(f"{sdist.name} is not a readable source archive ({error})", "") from error


def _zip_pyproject(sdist: Path, top, too_large: str) -> str | None:
    with sdist.open("rb") as raw:
        # zipfile reads the whole central directory first: count its entries before (the end
        # record's count; 0xFFFF means a ZIP64 archive of more).
        raw.seek(max(0, sdist.stat().st_size - 65_557))
        tail = raw.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) < end + 22:
        raise BuildFailed(f"{sdist.name} is not a readable source archive (no zip end record)", "")
    if int.from_bytes(tail[end + 10:end + 12], "little") in range(MAX_MEMBERS, 0x10000):
        raise BuildFailed(too_large, "")
    with zipfile.ZipFile(sdist) as archive:
        names = [info for info in archive.infolist() if top(info.filename)]
        if not names:
            return None
        with archive.open(names[0]) as handle:
            data = handle.read(MAX_PYPROJECT_BYTES + 1)
        if len(data) > MAX_PYPROJECT_BYTES:
            raise BuildFailed(f"{sdist.name}: its pyproject.toml is over {MAX_PYPROJECT_BYTES} bytes", "")
        return data.decode("utf-8")


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
        command = [self.base.python_path, "-c", _RUN, f"{WORK}/feed/{pip_wheel[-1].name}/pip",
                   f"{WORK}/src/{sdist.name}"]
        container = self._create(command)
        try:
            container.put_archive(WORK, _inputs(sdist, feed))
            container.start()
            status = self._wait(container, sdist, log)
            try:
                output = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
                wheel = container.logs(stdout=True, stderr=False) if status == 0 else b""
            except Exception as error:  # removed under us (an engine restart, an admin's cleanup)
                output, wheel = f"(the build container's log could not be read: {error})", b""
            log.extend(output.splitlines()[-400:])
            if status != 0:
                raise BuildFailed(_failed(sdist, project, status, output, self.base), "\n".join(log))
            return _wheel(wheel, project, out, log)
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
                log_config={"type": "json-file", "config": {"max-size": f"{LOG_MB}m", "max-file": "1"}},
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



def wheel_of(build: SandboxedBuild, pip: HostPip, sdist: Path, package: Package, work: Path, log: list[str],
             say: Callable[[str], None]) -> Path:
    """A wheel of ``package`` from its source distribution: built in the build sandbox (its
    build requirements downloaded as wheels by the host's ``pip``), or taken from the cache of
    earlier builds of the same file on the same base image."""
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    cached = cache_dir() / "built-wheels" / f"{digest}-{build.base.image_id.split(':')[-1][:16]}"
    kept = sorted(cached.glob("*.whl"))
    if kept:
        log.append(f"{sdist.name}: reusing the wheel built from it earlier ({kept[0].name})")
        return kept[0]
    say(f"building {sdist.name} (published as source only) in the build sandbox")
    requires = build_requires(sdist)
    feed = work / "feed" / digest[:16]
    for attempt in range(3):
        result = pip.download(["pip", *requires], feed, log)
        if result.returncode != 0:
            raise failure(f"downloading what {sdist.name} needs to build ({', '.join(requires)}) as binary wheels "
                          "failed", result, log, pip.target)
        start = len(log)
        try:
            wheel = build.build(sdist, feed, package.name, work / "out" / digest[:16], log)
            break
        except BuildFailed:
            # A backend may ask for more while building (get_requires_for_build_wheel): pip in
            # the sandbox names them; fetch them as wheels too and build again.
            more = [str(r) for r in missing_requirements("\n".join(log[start:])) if str(r) not in requires]
            if not more or attempt == 2:
                raise
            log.append(f"{sdist.name} also needs {', '.join(more)} to build")
            requires = [*requires, *more]
    try:
        cached.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, cached / wheel.name)
    except OSError:
        pass  # a read-only cache: build again next time
    return wheel


def _wheel(stdout: bytes, project: str, out: Path, log: list[str]) -> Path:
    """The one wheel the build wrote on stdout, checked to be ``project``'s; stdout is the
    build's to write (its code may write there too), so it is read as hostile."""
    head, _, body = stdout.partition(b"\n")
    names = head.decode("utf-8", "replace").removeprefix(WHEEL_MARK).split()
    if not head.startswith(WHEEL_MARK.encode()) or len(names) != 1:
        raise BuildFailed(f"the build of {project} should produce one wheel of {project}; it produced "
                          f"{names or 'none'}", "\n".join(log))
    try:
        name, _, _, _ = parse_wheel_filename(names[0])
        data = base64.b64decode(body, validate=False)
    except ValueError as error:  # binascii.Error is a ValueError
        raise BuildFailed(f"the build of {project} produced an unreadable wheel: {error}", "\n".join(log)) from error
    if name != canonicalize_name(project) or os.path.basename(names[0]) != names[0]:
        raise BuildFailed(f"the build of {project} should produce one wheel of {project}; it produced {names}",
                          "\n".join(log))
    if len(data) > MAX_WHEEL_BYTES:
        raise BuildFailed(f"the build of {project} produced more than {MAX_WHEEL_BYTES // 2**20} MB", "\n".join(log))
    out.mkdir(parents=True, exist_ok=True)
    path = out / names[0]
    path.write_bytes(data)
    log.append(f"built {path.name}")
    return path


def _inputs(sdist: Path, feed: Path) -> bytes:
    """The tar put into the container's volume: ``src/`` (the sdist) and ``feed/`` (wheels),
    all root's: the build user reads them and writes nothing there."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("src", "feed"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
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
