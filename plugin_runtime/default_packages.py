"""The default packages: what every plugin may import without a ``requirements.txt``.

Kili's hosted runtime gives every plugin numpy, pandas, scikit-learn, opencv-python-headless,
Pillow and requests; its tutorial plugin imports numpy with no ``requirements.txt``. Here that
set (or the admin's, ``PLUGIN_RUNTIME_DEFAULT_PACKAGES``; ``none`` turns it off) is one image
layer on top of the base image, shared by every plugin image: resolved and built once per base
image and set (the resolution is in its labels), then found by those labels without resolving
again. It follows the builder's supply-chain rules: wheels downloaded by the host's guarded pip,
source-only packages built in the build sandbox, nothing of a package run on the host.

Inside the image the layer is a folder named by a ``.pth`` file in the image Python's own
site-packages, so it comes on ``sys.path`` after the plugin's own dependency folder: a plugin's
pins win. How they win without breaking the defaults (a pinned numpy under a pandas built for
another) is the choice of resolution made here (``resolve_over``).
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.util
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from plugin_runtime import requirements
from plugin_runtime.base_image import PLUGIN_USER
from plugin_runtime.config import cache_dir
from plugin_runtime.errors import BuildFailed, PluginInvalid
from plugin_runtime.resolver import Resolution, conflicting
from plugin_runtime.source import PluginSource

if TYPE_CHECKING:
    from plugin_runtime.builder import Builder

#: What Kili's hosted runtime installs for every plugin.
KILI_DEFAULTS = ("numpy", "pandas", "scikit-learn", "opencv-python-headless", "Pillow", "requests")
SETTING = "PLUGIN_RUNTIME_DEFAULT_PACKAGES"
#: Where the layer's packages are in the image.
FOLDER = "/opt/plugin-runtime/defaults"
#: Part of the layer's labels: bump it when the way the layer is built changes.
RECIPE = "1"
LABEL = "org.plugin-runtime"
#: Modules a distribution provides under another name (the rest: its name, dashes as underscores).
IMPORT_NAMES = {"scikit-learn": ("sklearn",), "opencv-python-headless": ("cv2",), "opencv-python": ("cv2",),
                "pillow": ("PIL",), "python-dateutil": ("dateutil",), "pyyaml": ("yaml",),
                "beautifulsoup4": ("bs4",)}


def parse(setting: str) -> list[str]:
    """The requirements named by the setting: separated by whitespace (``numpy>=2,<3 pandas``);
    ``none`` or nothing turns the default packages off. Raises ValueError naming what is wrong:
    the same rules as a plugin's ``requirements.txt`` (names from the configured indexes)."""
    words = setting.split()
    if not words or [word.lower() for word in words] == ["none"]:
        return []
    try:
        requirements.check("\n".join(words), SETTING)
    except PluginInvalid as error:
        raise ValueError("; ".join(p.replace(f"{SETTING}:", "item ", 1) for p in error.problems)
                         + f" (separate the packages of {SETTING} with spaces, e.g. \"numpy pandas\", or "
                         "set it to \"none\")") from None
    return words


def digest(packages: Sequence[str]) -> str:
    """Names a default set, whatever the order and spacing of the setting."""
    lines = sorted({str(Requirement(p)) for p in packages})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:20] if lines else "none"


def names(packages: Sequence[str]) -> set[str]:
    return {canonicalize_name(Requirement(p).name) for p in packages}


@dataclass(frozen=True)
class DefaultLayer:
    """A built default-packages layer: its image and what went in (``name==version``)."""

    tag: str
    image_id: str
    freeze: tuple[str, ...]

    def versions(self) -> dict[str, str]:
        """Canonical name -> version of each distribution in the layer."""
        out: dict[str, str] = {}
        for line in self.freeze:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version
        return out

    @classmethod
    def of(cls, image) -> DefaultLayer:
        labels = image.labels or {}
        tag = next((t for t in image.tags if t.startswith("plugin-runtime-defaults:")), image.id)
        return cls(tag, image.id, tuple(json.loads(labels.get(f"{LABEL}.freeze", "[]"))))


def find(client, base_id: str, packages: Sequence[str]):
    """The layer already built for this base image and set, or None. Found by its labels, so
    the set is not resolved again: a rebuilt plugin gets the same packages (versions on an
    index are immutable); pin versions in the setting, or remove the image, to move on."""
    wanted = {f"{LABEL}": "defaults", f"{LABEL}.defaults": digest(packages), f"{LABEL}.base": base_id,
              f"{LABEL}.defaults-recipe": RECIPE}
    for image in client.images.list(filters={"label": [f"{LABEL}.defaults={digest(packages)}"]}):
        labels = image.labels or {}
        if all(labels.get(key) == value for key, value in wanted.items()):
            return image
    return None


def dockerfile(base: str, python_path: str, user: str) -> str:
    """The layer: the packages, a ``.pth`` naming their folder in the image Python's own
    site-packages (after the plugin's folder on ``sys.path``), byte-compiled (the root is
    read-only when plugins run)."""
    pth = (f"import os, site; d = site.getsitepackages()[0]; os.makedirs(d, exist_ok=True); "
           f"open(os.path.join(d, 'plugin-runtime-defaults.pth'), 'w').write({FOLDER!r} + chr(10))")
    return (
        f"FROM {base}\n"
        f"COPY defaults {FOLDER}\n"
        "USER 0\n"
        f"RUN {json.dumps([python_path, '-c', pth])}\n"
        f"RUN {json.dumps([python_path, '-m', 'compileall', '-q', '-j', '0', FOLDER])}\n"
        f"USER {user}\n"
    )


def ensure(builder: Builder, work: Path, log: list[str]) -> DefaultLayer:
    """The layer of ``builder``'s default packages on its base image: found by its labels, or
    resolved and built once (one build of a set at a time on the machine)."""
    packages, base = builder.default_packages, builder.base
    found = find(builder.client, base.image_id, packages)
    if found is None:
        with building(packages):
            found = find(builder.client, base.image_id, packages)
            if found is None:
                return _build(builder, work, log)
    layer = DefaultLayer.of(found)
    log.append(f"default packages: {layer.tag} ({', '.join(layer.freeze)})")
    return layer


def _build(builder: Builder, work: Path, log: list[str]) -> DefaultLayer:
    from docker.errors import ImageNotFound

    started, packages, client = time.monotonic(), builder.default_packages, builder.client
    builder.say(f"building the default packages layer, once for this base image ({' '.join(packages)})")
    start = len(log)
    try:
        resolution = builder.resolve("\n".join(packages), work, log, sdk=False)
    except BuildFailed as error:
        raise BuildFailed(f"the runtime's default packages ({SETTING}={' '.join(packages)}) could not be resolved: "
                          f"{error.error}\n(the admin can change the set, or turn it off with {SETTING}=none)",
                          error.log) from error
    h = hashlib.sha256(f"{RECIPE}\n{builder.base.image_id}\n".encode())
    h.update("\n".join(map(str, resolution.artifacts)).encode())
    tag = f"plugin-runtime-defaults:{h.hexdigest()[:20]}"
    labels = {f"{LABEL}.base": builder.base.image_id, LABEL: "defaults", f"{LABEL}.defaults": digest(packages),
              f"{LABEL}.defaults-recipe": RECIPE}
    try:  # the same wheels under another setting text: labelled for this one too
        freeze = json.loads(client.images.get(tag).labels.get(f"{LABEL}.freeze", "[]"))
        builder.docker_build(f"FROM {tag}\n", {}, tag, labels, log)
    except ImageNotFound:
        site = work / "site"
        freeze = builder.install(resolution, site, log)
        labels.update({f"{LABEL}.freeze": json.dumps(freeze),
                       f"{LABEL}.resolution": json.dumps([str(a) for a in resolution.artifacts]),
                       f"{LABEL}.build-log": "\n".join(log[start:])[-16_000:]})
        builder.docker_build(dockerfile(builder.base.name, builder.base.python_path, PLUGIN_USER), {}, tag, labels,
                             log, folders={"defaults": site})
    log.append(f"built the default packages layer {tag} in {time.monotonic() - started:.0f} s: {', '.join(freeze)}")
    return DefaultLayer(tag, client.images.get(tag).id, tuple(freeze))


def resolve_over(builder: Builder, text: str, layer: DefaultLayer | None, work: Path,
                 log: list[str]) -> tuple[Resolution, DefaultLayer | None, list[str]]:
    """A plugin's resolution (its ``requirements.txt`` ``text``), the default layer it goes on
    (None: the base image) and warnings: within the layer's versions; else, its pins
    contradicting them, with the default set resolved beside its pins (theirs win, and the
    defaults get versions that work with them); else its requirements alone."""
    if layer is None:
        return builder.resolve(text, work / "own", log), None, []
    try:
        return builder.resolve(text, work / "over", log, constraints=layer.freeze), layer, []
    except BuildFailed as error:
        if not conflicting(error):
            raise
    log.append("the plugin's requirements need other versions than the default packages layer holds: "
               "resolving the default packages together with them instead (the plugin's pins win)")
    if "--hash" not in text:  # hash-checking mode: the default set has no hashes to add
        try:
            return builder.resolve(text, work / "together", log, added=builder.default_packages), None, []
        except BuildFailed as error:
            if not conflicting(error):
                raise
    warning = (f"the runtime's default packages ({' '.join(builder.default_packages)}) cannot be installed with "
               "this plugin's requirements (see the build log): it gets only its own requirements; list the "
               "default packages it imports in requirements.txt, at versions that go with its pins")
    log.append(f"warning: {warning}")
    builder.say(f"warning: {warning}")
    return builder.resolve(text, work / "alone", log), None, [warning]


@contextmanager
def building(packages: Sequence[str]) -> Iterator[None]:
    """One build of a set at a time on this machine: a second process (another server, a
    dry-run, a test session) waits, then finds the layer the first one built."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"defaults-{digest(packages)}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# The process sandbox (dry-run) ------------------------------------------------------------


def import_names(package: str) -> tuple[str, ...]:
    name = canonicalize_name(Requirement(package).name)
    return IMPORT_NAMES.get(name, (name.replace("-", "_"),))


def imported(source: PluginSource) -> set[str]:
    """Top-level modules the plugin's Python files import (read with ``ast``, never run)."""
    found: set[str] = set()
    for name, data in source.files.items():
        if not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # the source check reports it
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return found


def missing_here(source: PluginSource, packages: Sequence[str]) -> str | None:
    """One line for the process sandbox, which runs the plugin with this environment's
    packages: the default packages it imports that this environment lacks, or None."""
    own = {Path(name).parts[0].removesuffix(".py") for name in source.files}
    wanted = imported(source)
    missing = [p for p in packages for module in import_names(p)[:1]
               if module in wanted and module not in own and importlib.util.find_spec(module) is None]
    if not missing:
        return None
    listed = " ".join(Requirement(p).name for p in missing)
    return (f"{', '.join(Requirement(p).name for p in missing)}: default package(s) of the runtime (every plugin has "
            f"them in the Docker sandbox) missing from this environment, which --sandbox process imports from: "
            f"`pip install {listed}` here, or dry-run with --sandbox docker")
