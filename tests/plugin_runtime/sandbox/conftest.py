"""Fixtures for the Docker sandbox tests: a real engine, a real builder, real images.

Nothing here is autouse: tests that do not ask for these fixtures (the process sandbox's)
never touch Docker. Every image a test builds gets a unique ``plugin-runtime-test:`` tag that
is removed after the session (the base image and the shared ``plugin-runtime-deps:`` cache
stay), and the session ends by checking that no sandbox container of this process is left.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import textwrap
import uuid
from collections.abc import Callable, Iterator

import pytest

from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.docker import LABEL, DockerSandbox
from plugin_runtime.source import PluginSource, load_source

TEST_REPOSITORY = "plugin-runtime-test"
#: This process's owner label: every DockerSandbox created here carries it.
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def owned_containers(client, **labels: str) -> list:
    """Sandbox containers (running or not) created by this process, with these labels too."""
    wanted = [LABEL, f"{LABEL}.owner={OWNER}", *(f"{k}={v}" for k, v in labels.items())]
    return client.containers.list(all=True, filters={"label": wanted})



@pytest.fixture(scope="session")
def sandbox_containers(docker_client) -> Callable[..., list]:
    """``sandbox_containers(**labels)``: this process's sandbox containers with these labels."""
    return lambda **labels: owned_containers(docker_client, **labels)


@pytest.fixture(scope="session")
def image_tags(docker_client) -> Iterator[Callable[[], str]]:
    """Hands out unique image tags; removes them, and checks for leftovers, at the end."""
    from docker.errors import ImageNotFound

    session = f"s{os.getpid()}-{uuid.uuid4().hex[:6]}"
    counter = itertools.count(1)
    tags: list[str] = []

    def new_tag() -> str:
        tag = f"{TEST_REPOSITORY}:{session}-{next(counter)}"
        tags.append(tag)
        return tag

    yield new_tag
    leftovers = owned_containers(docker_client)
    for container in leftovers:
        container.remove(force=True)
    for tag in tags:
        try:
            docker_client.images.remove(tag)
        except ImageNotFound:
            pass  # never built (a failed build) or already removed
    remaining = [t for t in tags if docker_client.images.list(name=t)]
    assert not remaining, f"test images still tagged: {remaining}"
    assert not leftovers, f"sandbox containers left behind: {[c.name for c in leftovers]}"


@pytest.fixture(scope="session")
def builder(docker_client):
    """A Builder on the default base image (``plugin-runtime-base:bookworm``)."""
    from plugin_runtime.base_image import DEFAULT_BASE_IMAGE
    from plugin_runtime.builder import Builder

    return Builder(docker_client, DEFAULT_BASE_IMAGE)


@pytest.fixture
def plugin_source(tmp_path_factory) -> Callable[..., PluginSource]:
    """``plugin_source(code, requirements=None)``: the plugin written to a fresh folder and
    read back by ``load_source`` (so the static checks ran on it)."""

    def make(code: str, requirements: str | None = None) -> PluginSource:
        folder = tmp_path_factory.mktemp("plugin")
        (folder / "main.py").write_text(textwrap.dedent(code), encoding="utf-8")
        if requirements is not None:
            (folder / "requirements.txt").write_text(requirements, encoding="utf-8")
        return load_source(folder)

    return make


@pytest.fixture
def docker_plugin(docker_client, builder, image_tags, plugin_source) -> Iterator[Callable[..., DockerSandbox]]:
    """``docker_plugin(code, requirements=None, **limits) -> DockerSandbox``: the plugin built
    into a fresh image and a sandbox on it with short limits (``timeout_s=5`` unless given).
    The sandbox has ``build`` (the BuildResult) and ``test_label`` (a label value only its
    containers carry, under ``org.plugin-runtime.sandbox.test``); it is closed at teardown."""
    boxes: list[DockerSandbox] = []

    def make(code: str, requirements: str | None = None, **limits: float) -> DockerSandbox:
        result = builder.build(plugin_source(code, requirements), image_tags())
        marker = uuid.uuid4().hex[:12]
        box = DockerSandbox(docker_client, result.image, Limits(**{"timeout_s": 5, **limits}),
                            labels={f"{LABEL}.test": marker})
        box.build = result  # type: ignore[attr-defined]
        box.test_label = marker  # type: ignore[attr-defined]
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        box.close()
    for box in boxes:
        assert not owned_containers(docker_client, **{f"{LABEL}.test": box.test_label}), (
            "close() left a container behind"
        )


@pytest.fixture
def left_behind(docker_client):
    """``left_behind(owner)``: a running container labelled as a sandbox of ``owner``."""
    from docker.errors import NotFound

    from plugin_runtime.base_image import DEFAULT_BASE_IMAGE

    made = []

    def make(owner: str):
        made.append(docker_client.containers.run(
            DEFAULT_BASE_IMAGE, ["python3", "-c", "import time; time.sleep(120)"], detach=True,
            network_mode="none", labels={LABEL: "1", f"{LABEL}.owner": owner},
            user="10001:10001", read_only=True))
        return made[-1]

    yield make
    for container in made:
        with contextlib.suppress(NotFound):  # swept already
            container.remove(force=True)
