"""A plugin container that is created but cannot start is removed at once (the sweep spares
the containers of a live runtime, so nothing else would remove it), and the run sees the
sandbox unavailable: an infrastructure failure, retried."""

from __future__ import annotations

import io
import tarfile

import pytest

from plugin_runtime.errors import SandboxUnavailable
from plugin_runtime.sandbox.docker import LABEL, DockerSandbox
from plugin_sdk.testing import make_event


def empty_image(docker_client, tag: str) -> str:
    """An image with one file and no Python: its containers are created, then fail to start."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("README")
        content = b"no python here\n"
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    repository, _, version = tag.partition(":")
    docker_client.api.import_image_from_data(data.getvalue(), repository=repository, tag=version)
    return tag


def test_a_container_whose_start_fails_is_removed(docker_client, image_tags, sandbox_containers) -> None:
    image = empty_image(docker_client, image_tags())
    labels = {f"{LABEL}.test": "start-fails"}
    box = DockerSandbox(docker_client, image, labels=labels)
    try:
        with pytest.raises(SandboxUnavailable, match="cannot start a container"):
            box.run(make_event(id="evt-1", project_id="proj-start", asset_id="asset-1"))
        assert sandbox_containers(**labels) == []
    finally:
        box.close()
