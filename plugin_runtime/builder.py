"""Turning a plugin version into a Docker image: base + dependency layer + plugin code.

The dependency layer (the plugin's requirements, pydantic for the SDK's typed models, and the
SDK itself, byte-compiled) is built once per (base image, requirements, SDK) and shared by
every plugin with the same requirements; a plugin whose requirements did not change only adds
its code on top, in about a second.

Packages are installed **on the host** with the host's pip, so its configuration (index URLs,
extra indexes, certificates, proxies) applies, into a folder for the image's own Python version
and platform (``pip install --target --only-binary=:all: --python-version --platform``); the
folder is copied into the image. Nothing in the image needs the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import plugin_sdk
from plugin_runtime import base_image, requirements
from plugin_runtime.errors import PluginRuntimeError
from plugin_runtime.source import PluginSource

SDK_DIR = Path(plugin_sdk.__file__).resolve().parent
SITE = "/opt/plugin-runtime/site"
SDK = "/opt/plugin-runtime/sdk"
CODE = "/plugin"
#: Always installed so ``from plugin_sdk import Label`` works in the sandbox.
SDK_REQUIREMENTS = ("pydantic>=2.6,<3",)
LABEL = "org.plugin-runtime"
#: Part of the dependency layer's cache key: bump it when the way layers are built changes.
BUILD_RECIPE = "2"
#: Characters of a build's log kept with its image (see _kept_log).
KEPT_LOG_CHARS = 16_000

Progress = Callable[[str], None]


class BuildFailed(PluginRuntimeError):
    """A plugin's image could not be built; ``error`` is what the user must fix, ``log`` all."""

    def __init__(self, error: str, log: str) -> None:
        super().__init__(error)
        self.error, self.log = error, log


@dataclass
class BuildResult:
    """A ready image for one plugin version."""

    image: str
    image_id: str
    deps_image: str
    freeze: list[str]
    deps_cached: bool
    seconds: float
    log: list[str] = field(default_factory=list)


def sdk_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(SDK_DIR.rglob("*.py")):
        h.update(path.relative_to(SDK_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def normalise_requirements(text: str) -> list[str]:
    """The requirement lines that matter (continuations joined, comments dropped), in a stable
    order."""
    return sorted({" ".join(line.split()) for _, line in requirements.logical_lines(text)})


class Builder:
    """Builds plugin images on one Docker engine; see the module docstring."""

    def __init__(
        self,
        client,
        base: str = base_image.DEFAULT_BASE_IMAGE,
        progress: Progress | None = None,
        pip: list[str] | None = None,
    ) -> None:
        self.client = client
        self.base_name = base
        self.say = progress or (lambda message: None)
        self.pip = pip or [sys.executable, "-m", "pip"]
        self._base: base_image.BaseImage | None = None
        self._sdk = sdk_digest()

    @property
    def base(self) -> base_image.BaseImage:
        if self._base is None:
            self._base = base_image.ensure(self.client, self.base_name, self.say)
        return self._base

    def build(self, source: PluginSource, tag: str) -> BuildResult:
        """Build (or reuse) the image ``tag`` for ``source``. Raises BuildFailed with pip's or
        Docker's message; a failed build never leaves ``tag`` pointing at a half-built image."""
        started = time.monotonic()
        log: list[str] = []
        existing = self._existing(tag, source.digest(), f"plugin-runtime-deps:{self.deps_key(source.requirements)}")
        if existing is not None:
            return BuildResult(tag, existing.id, existing.labels.get(f"{LABEL}.deps", ""),
                               json.loads(existing.labels.get(f"{LABEL}.freeze", "[]")), True,
                               time.monotonic() - started, _reuse_log(f"image {tag}", existing, "from the same files"))
        deps_tag, freeze, cached = self._deps_image(source.requirements, log)
        self.say(f"adding the plugin's code to {deps_tag}")
        files = {f"plugin/{name}": data for name, data in source.files.items()}
        dockerfile = (
            f"FROM {deps_tag}\n"
            f"COPY plugin {CODE}\n"
            f"WORKDIR {CODE}\n"
        )
        labels = {
            f"{LABEL}.digest": source.digest(), f"{LABEL}.deps": deps_tag,
            f"{LABEL}.freeze": json.dumps(freeze), LABEL: "plugin",
            f"{LABEL}.build-log": _kept_log(log + [f"(the plugin's code was then added on top of {deps_tag})"]),
        }
        image_id = self._docker_build(dockerfile, files, tag, labels, log)
        return BuildResult(tag, image_id, deps_tag, freeze, cached, time.monotonic() - started, log)

    def _existing(self, tag: str, digest: str, deps: str):
        """The image ``tag`` if it was built from these files on the current dependency layer
        (same requirements, base image and SDK)."""
        from docker.errors import ImageNotFound

        try:
            image = self.client.images.get(tag)
        except ImageNotFound:
            return None
        labels = image.labels or {}
        return image if labels.get(f"{LABEL}.digest") == digest and labels.get(f"{LABEL}.deps") == deps else None

    def deps_key(self, requirements: str) -> str:
        h = hashlib.sha256()
        for part in (BUILD_RECIPE, self.base.image_id, self._sdk, *SDK_REQUIREMENTS, "\n",
                     *normalise_requirements(requirements)):
            h.update(part.encode() + b"\n")
        return h.hexdigest()[:20]

    def _deps_image(self, requirements: str, log: list[str]) -> tuple[str, list[str], bool]:
        from docker.errors import ImageNotFound

        tag = f"plugin-runtime-deps:{self.deps_key(requirements)}"
        try:
            image = self.client.images.get(tag)
            log.extend(_reuse_log(f"dependency layer {tag}", image, "for the same requirements"))
            return tag, json.loads(image.labels.get(f"{LABEL}.freeze", "[]")), True
        except ImageNotFound:
            pass
        with tempfile.TemporaryDirectory(prefix="plugin-runtime-build-") as tmp:
            site = Path(tmp) / "site"
            freeze = self._pip_install(requirements, site, Path(tmp), log)
            files = _tree(site, "site")
            files.update(_tree(SDK_DIR, "sdk/plugin_sdk"))
            dockerfile = (
                f"FROM {self.base.name}\n"
                f"COPY site {SITE}\n"
                f"COPY sdk {SDK}\n"
                "USER 0\n"
                # Byte-compile now: the root filesystem is read-only when plugins run.
                f"RUN [\"{self.base.python_path}\", \"-m\", \"compileall\", \"-q\", \"-j\", \"0\", \"{SITE}\", \"{SDK}\"]\n"
                f"USER {base_image.PLUGIN_USER}\n"
            )
            labels = {f"{LABEL}.freeze": json.dumps(freeze), LABEL: "deps", f"{LABEL}.build-log": _kept_log(log)}
            self.say(f"building the dependency layer {tag}")
            self._docker_build(dockerfile, files, tag, labels, log)
        return tag, freeze, False

    def _pip_install(self, requirements: str, site: Path, tmp: Path, log: list[str]) -> list[str]:
        wanted = normalise_requirements(requirements)
        names = {re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower() for line in wanted}
        # pip's hash-checking mode wants a hash for every line: hash-pinned requirements are
        # installed exactly as given (add pydantic yourself to use the SDK's typed models).
        hashed = any("--hash" in line for line in wanted)
        extra = [] if hashed else [r for r in SDK_REQUIREMENTS if r.split(">")[0].split("=")[0] not in names]
        req_file = tmp / "requirements.txt"
        req_file.write_text("\n".join(wanted + extra) + "\n")
        base = self.base
        built = tmp / "built"
        built.mkdir()
        self.say(f"installing {len(wanted)} requirement(s) for Python {base.python} on the host (pip)")
        if wanted:
            self._wheels_for_sdists(req_file, tmp, built, log)
        abi = "cp" + base.python.replace(".", "")
        platforms = base.platforms()
        if self._host_matches():
            platforms.append(f"linux_{base.machine}")  # wheels built here run there too
        self._pip(
            ["install", "--no-compile", "--target", str(site), "--only-binary=:all:",
             "--python-version", base.python, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
             "--abi", "none", *[arg for platform in platforms for arg in ("--platform", platform)],
             "--find-links", str(built), "-r", str(req_file)],
            log, "installing the requirements failed")
        return _freeze(site)

    def _wheels_for_sdists(self, req_file: Path, tmp: Path, built: Path, log: list[str]) -> None:
        """Packages published only as source (sdists) get a wheel built here first.

        Without this, ``--only-binary`` makes pip quietly fall back to an old release of a
        package whose newest one depends on an sdist, which may not even work."""
        downloads = tmp / "downloads"
        self._pip(["download", "--prefer-binary", "--dest", str(downloads), "-r", str(req_file)], log,
                  "resolving the requirements failed")
        sdists = [f for f in downloads.iterdir() if f.name.endswith((".tar.gz", ".zip", ".tar.bz2"))]
        for sdist in sdists:
            self.say(f"building a wheel for {sdist.name} (published as source only)")
            self._pip(["wheel", "--no-deps", "--wheel-dir", str(built), str(sdist)], log,
                      f"building {sdist.name} failed")
        if not self._host_matches():
            for wheel in list(built.glob("*.whl")):
                if not wheel.name.endswith("-none-any.whl"):
                    wheel.unlink()  # compiled for this host's Python, not the image's

    def _host_matches(self) -> bool:
        import platform

        return f"{sys.version_info[0]}.{sys.version_info[1]}" == self.base.python and platform.machine() == self.base.machine

    def _pip(self, arguments: list[str], log: list[str], failure: str) -> None:
        command = [*self.pip, *arguments[:1], "--disable-pip-version-check", "--no-input", *arguments[1:]]
        log.append("$ " + " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        log.extend(result.stdout.splitlines() + result.stderr.splitlines())
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
            message = "\n".join(errors) or result.stderr.strip()[-2000:] or "pip failed"
            raise BuildFailed(
                f"{failure}:\n{message}\n(requirements are installed as binary wheels for Python "
                f"{self.base.python} on {self.base.machine}; check the package names and versions)",
                "\n".join(log),
            )

    def _docker_build(self, dockerfile: str, files: dict[str, bytes], tag: str, labels: dict, log: list[str]) -> str:
        from docker.errors import APIError, BuildError

        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            _add(tar, "Dockerfile", dockerfile.encode())
            for name, data in files.items():
                _add(tar, name, data)
        context.seek(0)
        image_id = None
        try:
            for chunk in self.client.api.build(
                fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                labels=labels, network_mode="none", decode=True, pull=False,
            ):
                if "stream" in chunk:
                    line = chunk["stream"].rstrip()
                    if f" : LABEL {LABEL}.build-log=" in line:
                        line = line.split("=", 1)[0] + "=(this log, up to here)"  # not the log twice
                    if line:
                        log.append(line)
                if "error" in chunk:
                    raise BuildFailed(f"docker build failed: {chunk['error'].strip()}", "\n".join(log))
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
        except (APIError, BuildError) as error:
            raise BuildFailed(f"docker build failed: {error}", "\n".join(log)) from error
        return image_id or self.client.images.get(tag).id


def _kept_log(log: list[str]) -> str:
    """The log kept in the image's labels, so that a later reuse of the image can show it; its
    tail only: labels travel in the build request's URL."""
    text = "\n".join(log)
    return text if len(text) <= KEPT_LOG_CHARS else "[... start cut]\n" + text[-KEPT_LOG_CHARS:]


def _reuse_log(what: str, image, why: str) -> list[str]:
    """The log of a reused image: which one, when it was built, and the log of that build."""
    created = str(image.attrs.get("Created") or "")
    when = f"{created[:10]} {created[11:19]} UTC" if len(created) >= 19 else "an unknown time"
    kept = (image.labels or {}).get(f"{LABEL}.build-log")
    if kept is None:
        return [f"reused {what} ({image.id[:19]}) built at {when}, by a version of plugin-runtime that did not keep build logs"]
    return [f"reused {what} ({image.id[:19]}) built at {when} {why}; the log of that build:",
            *("    " + line for line in kept.splitlines())]


def _freeze(site: Path) -> list[str]:
    """``name==version`` of every distribution installed in ``site``."""
    out = []
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        fields = {}
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        if "Name" in fields:
            out.append(f"{fields['Name']}=={fields.get('Version', '?')}")
    return out


def _tree(folder: Path, prefix: str) -> dict[str, bytes]:
    if not folder.exists():
        return {f"{prefix}/.keep": b""}
    files = {
        f"{prefix}/{path.relative_to(folder).as_posix()}": path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    return files or {f"{prefix}/.keep": b""}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # equal files give equal layers, so Docker's cache can reuse them
    tar.addfile(info, io.BytesIO(data))
