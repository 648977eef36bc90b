"""The image plugin containers start from.

By default a local Debian bookworm + python3 image, built once without any registry
(debootstrap + ``docker import``, about a minute, by ``scripts/base-image.sh``). Where a
registry is reachable, any image with ``python3`` works (``python:3.12-slim``): set
``PLUGIN_RUNTIME_BASE_IMAGE``; it is pulled on first use.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from plugin_runtime.config import cache_dir
from plugin_runtime.engine import SCRIPTS
from plugin_runtime.errors import SandboxUnavailable

DEFAULT_BASE_IMAGE = "plugin-runtime-base:bookworm"
PLUGIN_USER = "10001:10001"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BaseImage:
    """A ready base image and what wheels must match: Python version, glibc, machine."""

    name: str
    image_id: str
    python: str  # "3.11"
    glibc: str  # "2.36"
    machine: str  # "x86_64"
    python_path: str  # the interpreter inside the image

    def platforms(self) -> list[str]:
        """pip ``--platform`` tags for binary wheels that run in this image."""
        major, minor = (int(p) for p in self.glibc.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        tags += [f"manylinux2014_{self.machine}", f"manylinux2010_{self.machine}", f"manylinux1_{self.machine}"]
        return tags


def ensure(client, name: str = DEFAULT_BASE_IMAGE, progress: Progress | None = None) -> BaseImage:
    """The base image ``name``, built (the default local image) or pulled on first use."""
    from docker.errors import APIError, ImageNotFound

    say = progress or (lambda message: None)
    try:
        image = client.images.get(name)
    except ImageNotFound:
        if name == DEFAULT_BASE_IMAGE or name.startswith("plugin-runtime-base:"):
            say(f"building the base image {name} (debootstrap, about a minute, once)")
            script = SCRIPTS / "base-image.sh"
            result = subprocess.run(["bash", str(script), name], check=False)
            if result.returncode != 0:
                raise SandboxUnavailable(f"building the base image {name} failed (see the messages above)")
        else:
            say(f"pulling the base image {name}")
            try:
                client.images.pull(name)
            except APIError as error:
                raise SandboxUnavailable(
                    f"cannot pull the base image {name}: {error.explanation or error}. Without a "
                    f"registry, use the local base image: unset PLUGIN_RUNTIME_BASE_IMAGE "
                    f"(default {DEFAULT_BASE_IMAGE})"
                ) from error
        image = client.images.get(name)
    return _describe(client, name, image)


_PROBE = (
    "import os, platform, sys; "
    "print(sys.executable, '%d.%d' % sys.version_info[:2], "
    "(os.confstr('CS_GNU_LIBC_VERSION') or 'glibc 2.17').split()[-1], platform.machine())"
)


def _describe(client, name: str, image) -> BaseImage:
    # An image id never changes content: what it runs is probed once and remembered, so a
    # dry-run or a server start does not pay a container start for it each time.
    cache = cache_dir()
    known = cache / f"base-{image.id.replace(':', '-')}.json"
    try:
        facts = json.loads(known.read_text())
        return BaseImage(name, image.id, facts["python"], facts["glibc"], facts["machine"], facts["python_path"])
    except (OSError, ValueError, KeyError):
        pass
    described = _probe(client, name, image)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        known.write_text(json.dumps({"python": described.python, "glibc": described.glibc,
                                     "machine": described.machine, "python_path": described.python_path}))
    except OSError:
        pass  # a read-only home: probe again next time
    return described


def _probe(client, name: str, image) -> BaseImage:
    # One short container on the image tells what wheels it can run; no network needed.
    try:
        output = client.containers.run(
            image.id, ["python3", "-c", _PROBE], network_mode="none", remove=True,
            user=PLUGIN_USER, read_only=True,
        )
    except Exception as error:
        raise SandboxUnavailable(f"the base image {name} cannot run python3: {error}") from error
    python_path, python, glibc, machine = output.decode().split()
    return BaseImage(name, image.id, python, glibc, machine, python_path)
