"""Turning a plugin version into a Docker image: base + default packages + dependency layer +
plugin code.

The default packages (``default_packages``: numpy, pandas, ... as on Kili's hosted runtime,
or the admin's set) are one layer shared by every plugin image, built once per base image and
set. The plugin's dependency layer goes on top; its folder comes first on ``sys.path``, so the
plugin's pins win. Which resolution it gets (``default_packages.resolve_over``): its requirements within the
versions the default layer holds (pip ``-c``), so shared packages are not installed twice;
when its pins contradict them, the default set resolved together with its requirements into a
layer of its own on the base image (the plugin's pins win and the defaults still work with
them: a numpy pinned under the layer's pandas could break it); when no version of a default
package goes with its pins, its requirements alone, with a warning.

The dependency layer (the plugin's requirements, pydantic for the SDK's typed models, and the
SDK itself, byte-compiled) is keyed on what the requirements **resolved to** (the names,
versions and sha256 of the wheels that go in), the base image and the SDK, and shared by every
plugin that resolves to the same wheels; a plugin whose code changed resolves again and reuses
the layer, and a plugin rebuilt from the same files reuses its image without resolving.

No code of a plugin or of its dependencies runs on the host (``resolver``): wheels are
downloaded by the host's pip (its configuration, indexes, certificates and proxies apply;
none of the runtime's secrets reach it) for the image's Python and platform, and a package
published only as a source distribution is built into a wheel in a sandboxed container
(``sdist_build``). The wheels are then unpacked (``pip install --target --no-index``, which
runs nothing of theirs) into a folder copied into the image. Nothing in the image needs the
network.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from unearth import Package

import plugin_sdk
from plugin_runtime import (
    base_image,
    default_packages,
    requirements,
    resolver,
    sdist_build,
)
from plugin_runtime.default_packages import DefaultLayer
from plugin_runtime.errors import BuildFailed
from plugin_runtime.source import PluginSource

__all__ = ["BuildFailed", "BuildResult", "Builder"]

SDK_DIR = Path(plugin_sdk.__file__).resolve().parent
SITE = "/opt/plugin-runtime/site"
SDK = "/opt/plugin-runtime/sdk"
CODE = "/plugin"
#: Always installed so ``from plugin_sdk import Label`` works in the sandbox.
SDK_REQUIREMENTS = ("pydantic>=2.6,<3",)
LABEL = "org.plugin-runtime"
#: Part of the dependency layer's cache key: bump it when the way layers are built changes.
BUILD_RECIPE = "5"
#: Characters of a build's log kept with its image (see _kept_log).
KEPT_LOG_CHARS = 16_000
#: Seconds one source distribution may take to build in its sandbox.
DEFAULT_BUILD_TIMEOUT_S = 600.0

Progress = Callable[[str], None]


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
    #: What the plugin's author should know (default packages left out for its pins).
    warnings: list[str] = field(default_factory=list)


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
        build_timeout_s: float | None = None,
        default_packages: Sequence[str] = (),
    ) -> None:
        """``default_packages``: requirements every plugin gets without listing them (the
        setting ``PLUGIN_RUNTIME_DEFAULT_PACKAGES``, ``default_packages.parse``); none by default."""
        self.client = client
        self.base_name = base
        self.say = progress or (lambda message: None)
        self.pip = pip or [sys.executable, "-m", "pip"]
        self.build_timeout_s = build_timeout_s or DEFAULT_BUILD_TIMEOUT_S
        self.default_packages = list(default_packages)
        self._base: base_image.BaseImage | None = None
        self._sdk = sdk_digest()

    @property
    def base(self) -> base_image.BaseImage:
        if self._base is None:
            self._base = base_image.ensure(self.client, self.base_name, self.say)
        return self._base

    @property
    def target(self) -> resolver.Target:
        base = self.base
        # Wheels built in the build sandbox are tagged linux_<machine>: they run in the image.
        return resolver.Target(base.python, base.machine, (*base.platforms(), f"linux_{base.machine}"))

    def build(self, source: PluginSource, tag: str) -> BuildResult:
        """Build (or reuse) the image ``tag`` for ``source``. Raises BuildFailed with pip's or
        Docker's message; a failed build never leaves ``tag`` pointing at a half-built image."""
        started = time.monotonic()
        log: list[str] = []
        existing = self._existing(tag, source.digest())
        if existing is not None:
            return BuildResult(tag, existing.id, existing.labels.get(f"{LABEL}.deps", ""),
                               json.loads(existing.labels.get(f"{LABEL}.freeze", "[]")), True,
                               time.monotonic() - started, _reuse_log(f"image {tag}", existing, "from the same files"))
        with tempfile.TemporaryDirectory(prefix="plugin-runtime-build-") as tmp:
            layer = self.default_layer(Path(tmp) / "defaults", log)
            resolution, layer, warnings = default_packages.resolve_over(self, source.requirements, layer,
                                                                        Path(tmp), log)
            deps_tag, freeze, cached = self._deps_image(resolution, Path(tmp), log, layer)
        self.say(f"adding the plugin's code to {deps_tag}")
        files = {f"plugin/{name}": data for name, data in source.files.items()}
        dockerfile = (
            f"FROM {deps_tag}\n"
            f"COPY plugin {CODE}\n"
            f"WORKDIR {CODE}\n"
        )
        labels = {
            **self._identity(), f"{LABEL}.digest": source.digest(), f"{LABEL}.deps": deps_tag,
            f"{LABEL}.freeze": json.dumps(freeze), LABEL: "plugin",
            f"{LABEL}.build-log": _kept_log(log + [f"(the plugin's code was then added on top of {deps_tag})"]),
        }
        image_id = self.docker_build(dockerfile, files, tag, labels, log)
        return BuildResult(tag, image_id, deps_tag, freeze, cached, time.monotonic() - started, log, warnings)

    def _identity(self) -> dict[str, str]:
        return {f"{LABEL}.base": self.base.image_id, f"{LABEL}.sdk": self._sdk, f"{LABEL}.recipe": BUILD_RECIPE,
                f"{LABEL}.defaults": default_packages.digest(self.default_packages)}

    def _existing(self, tag: str, digest: str):
        """The image ``tag`` if it was built from these files on the current base image, SDK
        and recipe, and its dependency layer still exists. Versions on an index are immutable,
        so what its requirements resolved to then still holds: no resolving again."""
        from docker.errors import ImageNotFound

        try:
            image = self.client.images.get(tag)
        except ImageNotFound:
            return None
        labels = image.labels or {}
        wanted = {f"{LABEL}.digest": digest, **self._identity()}
        if any(labels.get(key) != value for key, value in wanted.items()):
            return None
        try:
            self.client.images.get(labels.get(f"{LABEL}.deps", ""))
        except ImageNotFound:
            return None
        return image

    def resolve(self, requirements_text: str, work: Path, log: list[str] | None = None, *, sdk: bool = True,
                added: Sequence[str] = (), constraints: Sequence[str] = ()) -> resolver.Resolution:
        """What ``requirements_text`` (plus the SDK's own requirements unless ``sdk`` is false,
        and ``added``, unless the plugin names them) resolves to now within ``constraints``, as
        wheels downloaded into ``work``; packages published as source only are built in the
        build sandbox. Raises BuildFailed naming what could not be resolved."""
        log = [] if log is None else log
        wanted = normalise_requirements(requirements_text)
        names = {canonicalize_name(Requirement(requirements.split_options(line)[0]).name) for line in wanted}
        # pip's hash-checking mode wants a hash for every line: hash-pinned requirements are
        # installed exactly as given (add pydantic yourself to use the SDK's typed models).
        hashed = any("--hash" in line for line in wanted)
        extra = [] if hashed else [r for r in (*(SDK_REQUIREMENTS if sdk else ()), *added)
                                   if canonicalize_name(Requirement(r).name) not in names]
        counted = len(wanted) + len([r for r in extra if r not in SDK_REQUIREMENTS])
        self.say(f"resolving {counted} requirement(s) for Python {self.base.python} (binary wheels only)")
        pip = resolver.HostPip(self.pip, self.target)
        return resolver.Resolver(pip, lambda sdist, package: self._build_sdist(pip, sdist, package, work, log),
                                 self.say).resolve(wanted, work, log, added=extra, constraints=list(constraints))

    def deps_key(self, resolution: resolver.Resolution, layer: DefaultLayer | None = None) -> str:
        h = hashlib.sha256()
        parent = layer.image_id if layer is not None else self.base.image_id
        for part in (BUILD_RECIPE, parent, self._sdk, "\n", *map(str, resolution.artifacts)):
            h.update(part.encode() + b"\n")
        return h.hexdigest()[:20]

    # The default packages ----------------------------------------------------------------

    def default_layer(self, work: Path, log: list[str]) -> DefaultLayer | None:
        """The shared layer of the default packages, None when there are none."""
        return default_packages.ensure(self, work, log) if self.default_packages else None

    def _build_sdist(self, pip: resolver.HostPip, sdist: Path, package: Package, work: Path, log: list[str]) -> Path:
        """A wheel of ``package`` from its source distribution (``sdist_build.wheel_of``)."""
        build = sdist_build.SandboxedBuild(self.client, self.base, self.build_timeout_s)
        return sdist_build.wheel_of(build, pip, sdist, package, work, log, self.say)

    def _deps_image(self, resolution: resolver.Resolution, work: Path, log: list[str],
                    layer: DefaultLayer | None = None) -> tuple[str, list[str], bool]:
        from docker.errors import ImageNotFound

        tag = f"plugin-runtime-deps:{self.deps_key(resolution, layer)}"
        try:
            image = self.client.images.get(tag)
            log.extend(_reuse_log(f"dependency layer {tag}", image, "for the same resolved wheels"))
            return tag, json.loads(image.labels.get(f"{LABEL}.freeze", "[]")), True
        except ImageNotFound:
            pass
        site = work / "site"
        freeze = self.install(resolution, site, log, skip=layer.versions() if layer else None)
        if layer is not None:  # what the plugin imports from the layer below, too
            own = {canonicalize_name(line.partition("==")[0]) for line in freeze}
            freeze = sorted([*freeze, *(line for line in layer.freeze
                                        if canonicalize_name(line.partition("==")[0]) not in own)], key=str.lower)
        files = _tree(site, "site")
        files.update(_tree(SDK_DIR, "sdk/plugin_sdk"))
        dockerfile = (
            f"FROM {layer.tag if layer else self.base.name}\n"
            f"COPY site {SITE}\n"
            f"COPY sdk {SDK}\n"
            "USER 0\n"
            # Byte-compile now: the root filesystem is read-only when plugins run.
            f"RUN [\"{self.base.python_path}\", \"-m\", \"compileall\", \"-q\", \"-j\", \"0\", \"{SITE}\", \"{SDK}\"]\n"
            f"USER {base_image.PLUGIN_USER}\n"
        )
        labels = {
            **self._identity(), f"{LABEL}.freeze": json.dumps(freeze), LABEL: "deps",
            f"{LABEL}.resolution": json.dumps([str(a) for a in resolution.artifacts]),
            f"{LABEL}.build-log": _kept_log(log),
        }
        self.say(f"building the dependency layer {tag}")
        self.docker_build(dockerfile, files, tag, labels, log)
        return tag, freeze, False

    def install(self, resolution: resolver.Resolution, site: Path, log: list[str],
                 skip: dict[str, str] | None = None) -> list[str]:
        """Unpack exactly the resolved wheels into ``site``: ``--isolated --no-index`` so no
        configuration or index adds anything, and installing a wheel runs none of its code.
        ``skip``: what the default layer below holds (name -> version), not installed twice;
        the rest of the resolution is then installed wheel by wheel (it is complete)."""
        pip = resolver.HostPip(self.pip, self.target)
        if skip is None:
            wanted = ["-r", str(resolution.requirements)]
        else:
            wanted = ["--no-deps", *(str(resolution.wheels / a.filename) for a in resolution.artifacts
                                     if skip.get(canonicalize_name(a.name)) != a.version)]
            if len(wanted) == 1:
                site.mkdir(parents=True, exist_ok=True)
                return _freeze(site)
        result = pip.run(["install", "--isolated", "--no-index", "--no-compile", "--target", str(site),
                          *pip.target.pip_arguments(), "--find-links", str(resolution.wheels), *wanted], log)
        if result.returncode != 0:
            raise resolver.failure("installing the requirements failed", result, log, pip.target)
        return _freeze(site)

    def docker_build(self, dockerfile: str, files: dict[str, bytes], tag: str, labels: dict, log: list[str],
                     folders: dict[str, Path] | None = None) -> str:
        """Build ``tag`` from ``dockerfile`` with ``files`` (name -> bytes) and ``folders``
        (name -> folder on disk) as its context, with no network."""
        # On disk past a few MB: the default packages are hundreds of MB.
        with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as context:
            with tarfile.open(fileobj=context, mode="w") as tar:
                _add(tar, "Dockerfile", dockerfile.encode())
                for name, data in files.items():
                    _add(tar, name, data)
                for name, folder in (folders or {}).items():
                    tar.add(folder, arcname=name, filter=_normalised)
            context.seek(0)
            return self._send_build(context, tag, labels, log)

    def _send_build(self, context, tag: str, labels: dict, log: list[str]) -> str:
        from docker.errors import APIError, BuildError

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
        fields: dict[str, str] = {}
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


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """A member of a folder put into a build context as ``_add`` puts files: root's, no time."""
    if not (info.isfile() or info.isdir() or info.issym()) or "__pycache__" in info.name.split("/"):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # equal files give equal layers, so Docker's cache can reuse them
    tar.addfile(info, io.BytesIO(data))
