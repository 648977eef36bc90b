"""Hostile packages against the host's side of a build: what a plugin's requirements pull in
must never run on the host (pip's environment, the sdist reader, the wheel installer), and a
hostile archive must never cost the host more than a bounded read.

Packages are served from a local find-links folder (``PIP_FIND_LINKS``, as an admin would
configure an index); each hostile one tries to write a marker file on the host, which must
never appear. Most tests need no Docker: the resolver and the installer run pip on the host
for a base image's Python, described here without the image."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import tarfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from plugin_runtime import resolver
from plugin_runtime.base_image import DEFAULT_BASE_IMAGE, BaseImage
from plugin_runtime.builder import Builder, BuildFailed
from plugin_runtime.errors import PluginInvalid
from plugin_runtime.sdist_build import MAX_SCAN_BYTES, build_requires
from plugin_runtime.source import load_source
from tests.plugin_runtime.test_builder import make_sdist, plugin_folder, write_wheel

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PLUGIN_RUNTIME_TOKEN", "token-must-not-leak")
    return folder


@pytest.fixture
def marker() -> Path:
    path = Path("/tmp") / f"plugin-runtime-pwned-{uuid.uuid4().hex}"
    yield path
    if path.exists():
        path.unlink()


def unique(prefix: str) -> str:
    return f"prt-{prefix}-{uuid.uuid4().hex[:8]}"


def host_builder() -> Builder:
    """A builder whose host-side steps (resolving, installing) run without Docker: the base
    image is described, not built; a source build would need the engine and fails loudly."""
    builder = Builder(client=None, base=DEFAULT_BASE_IMAGE)
    builder._base = BaseImage("described", "sha256:" + "0" * 64, PYTHON, "2.36", "x86_64", "/usr/bin/python3")
    return builder


def resolve(lines: list[str], work: Path) -> resolver.Resolution:
    """The plugin's requirements resolved by host pip, as the builder does (without the SDK's
    own requirements); a source build would be a failure here."""
    def no_source_build(sdist, package):
        raise AssertionError(f"{sdist.name} was to be built: not expected here")

    pip = resolver.HostPip([sys.executable, "-m", "pip"], host_builder().target)
    return resolver.Resolver(pip, no_source_build, lambda message: None).resolve(lines, work, [])


def hashed(index: Path, filename: str) -> str:
    return f"--hash=sha256:{hashlib.sha256((index / filename).read_bytes()).hexdigest()}"


# Direct references in a wheel's metadata ---------------------------------------------------------

@pytest.mark.parametrize("reference", ["file", "vcs"])
def test_a_wheel_naming_a_dependency_by_url_cannot_make_pip_build_it_on_the_host(index, marker, tmp_path,
                                                                                  reference) -> None:
    """``--only-binary=:all:`` does not stop pip at a source distribution named by a direct
    URL in a wheel's Requires-Dist: pip ran its build backend on the host, as root."""
    pwn = make_sdist(tmp_path, unique("pwn"), "1.0", [str(marker)])
    url = f"file://{pwn}" if reference == "file" else f"git+file://{tmp_path}/no-repo.git"
    carrier = unique("carrier")
    write_wheel(str(index), carrier, "1.0", {f"{carrier.replace('-', '_')}/__init__.py": ""},
                requires=[f"pwn @ {url}"])
    with pytest.raises(BuildFailed) as refused:
        resolve([f"{carrier}==1.0"], tmp_path / "work")
    assert "which pip would build on the host: refused" in refused.value.error
    assert not marker.exists(), "a dependency's build backend ran on the host"
    # A benign package still resolves after.
    benign = unique("benign")
    write_wheel(str(index), benign, "1.0", {f"{benign.replace('-', '_')}/__init__.py": ""})
    assert [a.name for a in resolve([f"{benign}==1.0"], tmp_path / "work2").artifacts] == [benign]


def test_host_pip_may_not_start_any_program(tmp_path) -> None:
    """The guard itself: a Python started with pip's environment cannot start a process."""
    import subprocess

    script = "import subprocess; subprocess.run(['true'])"
    done = subprocess.run([sys.executable, "-c", script], env=resolver.pip_environment(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "pip on the host may not start a program" in done.stderr


@pytest.mark.docker
def test_a_wheel_built_in_the_sandbox_cannot_smuggle_a_url_dependency_to_host_pip(docker_client, index, marker,
                                                                                 tmp_path) -> None:
    """The build sandbox returns a wheel whose metadata the hostile package wrote: its
    dependency by URL went to host pip, which built it on the host."""
    pwn = make_sdist(tmp_path, unique("pwn"), "1.0", [str(marker)])
    top = unique("smuggler")
    make_sdist(index, top, "1.0", [str(marker)], requires=[f"pwn @ file://{pwn}"])
    folder = plugin_folder(tmp_path, "pass", f"{top}\n")
    with pytest.raises(BuildFailed) as refused:
        Builder(docker_client, DEFAULT_BASE_IMAGE).build(load_source(folder), f"plugin-runtime-test:{top}")
    assert "which pip would build on the host: refused" in refused.value.error
    assert not marker.exists(), "a dependency's build backend ran on the host"


# Wheels unpacked on the host -------------------------------------------------------------------

def test_a_wheels_pth_file_scripts_and_entry_points_do_not_run_when_unpacked_on_the_host(index, marker,
                                                                                         tmp_path) -> None:
    name = unique("pth")
    dist = name.replace("-", "_")
    payload = f"import os; open({str(marker)!r}, 'w').write('pwned')\n"
    filename = write_wheel(str(index), name, "1.0", {
        f"{dist}/__init__.py": payload, f"{dist}-evil.pth": payload,
        f"{dist}-1.0.data/scripts/evil": "#!python\n" + payload,
        f"{dist}-1.0.dist-info/entry_points.txt": f"[console_scripts]\nevil = {dist}:main\n",
    })
    builder = host_builder()
    resolution = builder.resolve(f"{name}==1.0 {hashed(index, filename)}\n", tmp_path / "work")
    site = tmp_path / "site"
    assert builder.install(resolution, site, []) == [f"{name}==1.0"]
    assert (site / f"{dist}-evil.pth").read_text() == payload  # unpacked as a file, never read by a Python
    assert not marker.exists(), "a wheel's code ran when it was unpacked on the host"


def test_a_wheel_with_a_path_climbing_out_of_the_site_is_refused(index, tmp_path) -> None:
    name = unique("climber")
    dist = name.replace("-", "_")
    escaped = tmp_path / "escaped.txt"
    climb = os.path.relpath(escaped, tmp_path / "site")
    filename = write_wheel(str(index), name, "1.0", {f"{dist}/__init__.py": "", climb: "outside"})
    builder = host_builder()
    resolution = builder.resolve(f"{name}==1.0 {hashed(index, filename)}\n", tmp_path / "work")
    with pytest.raises(BuildFailed, match="installing the requirements failed"):
        builder.install(resolution, tmp_path / "site", [])
    assert not escaped.exists()


# Source distributions read on the host -----------------------------------------------------------

class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, io.RawIOBase | None]]) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as packed, tarfile.open(fileobj=packed, mode="w|") as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


def member(name: str, data: bytes | int = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = data if isinstance(data, int) else len(data)
    source = _Zeros(data) if isinstance(data, int) else io.BytesIO(data)
    return info, (source if info.isreg() else None)


PYPROJECT = b'[build-system]\nrequires = ["flit_core>=3.2"]\nbuild-backend = "flit_core.buildapi"\n'


def pax_bomb(path: Path) -> Path:
    """A pax header member declaring 2 GB, which tarfile reads into memory whole (the stream
    here ends after what the host may read; 2 GB of gzip'd zeros are 2 MB)."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, 2 * 1024**3
    with gzip.open(path, "wb", compresslevel=1) as packed:
        packed.write(header.tobuf(tarfile.USTAR_FORMAT))
        for _ in range(MAX_SCAN_BYTES // 2**20 + 8):
            packed.write(bytes(2**20))
    return path


ARCHIVES = {
    # a member of zeros before pyproject.toml: gunzipped on the host to skip it
    "huge-first-member": lambda p: tar_gz(p, [member("pkg-1.0/data.bin", 4 * MAX_SCAN_BYTES),
                                              member("pkg-1.0/pyproject.toml", PYPROJECT)]),
    "pax-header-bomb": pax_bomb,
    "many-members": lambda p: tar_gz(p, [member(f"pkg-1.0/f{n}") for n in range(25_000)]
                                     + [member("pkg-1.0/pyproject.toml", PYPROJECT)]),
    "deep-toml": lambda p: tar_gz(p, [member("pkg-1.0/pyproject.toml", b"a = " + b"[" * 100_000 + b"]" * 100_000)]),
}


@pytest.mark.parametrize("case", sorted(ARCHIVES))
def test_a_hostile_sdist_costs_the_host_a_bounded_read(tmp_path, case: str) -> None:
    archive = ARCHIVES[case](tmp_path / "pkg-1.0.tar.gz")
    started = time.monotonic()
    with pytest.raises(BuildFailed) as refused:
        build_requires(archive)
    assert "pkg-1.0.tar.gz" in refused.value.error and "pyproject.toml" in refused.value.error
    assert time.monotonic() - started < 60  # a bound against hours, not a timing measurement
    # An ordinary source distribution is still read.
    assert build_requires(tar_gz(tmp_path / "ok-1.0.tar.gz", [member("ok-1.0/PKG-INFO", b"x"),
                                                               member("ok-1.0/pyproject.toml", PYPROJECT)])) == [
        "flit_core>=3.2"]


def test_a_zip_sdist_bomb_is_read_within_bounds(tmp_path) -> None:
    bomb = tmp_path / "bomb-1.0.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb-1.0/pyproject.toml", b"#" + bytes(200 * 1024 * 1024))
    with pytest.raises(BuildFailed, match="pyproject.toml is over"):
        build_requires(bomb)
    crowded = tmp_path / "crowded-1.0.zip"
    with zipfile.ZipFile(crowded, "w") as archive:
        for number in range(30_000):
            archive.writestr(f"crowded-1.0/f{number}", b"")
    with pytest.raises(BuildFailed, match="too large to read on the host"):
        build_requires(crowded)


def test_links_and_climbing_names_in_an_sdist_are_data_the_host_never_extracts(tmp_path) -> None:
    outside = tmp_path / "outside"
    archive = tar_gz(tmp_path / "links-1.0.tar.gz", [
        member(f"../../{outside.name}/climbed", b"x"),
        member(str(outside / "absolute"), b"x"),
        member("links-1.0/pyproject.toml", kind=tarfile.SYMTYPE, link="/etc/passwd"),
        member("links-1.0/hard", kind=tarfile.LNKTYPE, link="/etc/shadow"),
    ])
    # The linked pyproject.toml is not read through its link: the defaults apply.
    assert build_requires(archive) == ["setuptools>=40.8.0", "wheel"]
    assert not outside.exists() and not list(tmp_path.glob("links-1.0*/"))


# Requirement lines ----------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "six===${HTTPS_PROXY}", 'six; python_version == "${HOME}"', "six==1.17.0 --hash=sha256:${PIP_INDEX_URL}",
])
def test_a_requirement_pip_would_fill_with_a_host_variable_is_refused(tmp_path, line: str) -> None:
    """pip expands ${NAME} in requirements files with its own environment: the checked line
    differs from what pip reads, and the proxy's credentials land in the build log."""
    with pytest.raises(PluginInvalid) as refused:
        load_source(plugin_folder(tmp_path, "pass", line + "\n"))
    [problem] = refused.value.problems
    assert problem.startswith("requirements.txt:1:") and "environment variable" in problem
    assert load_source(plugin_folder(tmp_path, "pass", "six==1.17.0\n")).requirements == "six==1.17.0\n"


def test_a_requirements_file_of_thousands_of_lines_is_refused_before_any_lookup(tmp_path) -> None:
    """Builds run one at a time and look each requirement up on the indexes: a plugin listing
    100,000 made-up packages held every later upload for hours."""
    with pytest.raises(PluginInvalid) as refused:
        load_source(plugin_folder(tmp_path, "pass", "".join(f"prt-flood-{n}\n" for n in range(100_000))))
    assert refused.value.problems == [
        "requirements.txt: 100000 requirements, over the limit of 200: list the packages the plugin imports "
        "(pip installs what they depend on)"]
    assert len(load_source(plugin_folder(tmp_path, "pass", "".join(f"pkg{n}\n" for n in range(50)))).files) == 2


@pytest.mark.docker
def test_a_source_build_can_write_nothing_to_the_hosts_disk(docker_client, index, marker, tmp_path) -> None:
    """The build's inputs and output lived in a Docker volume, on the host's disk, writable by
    the build: a hostile backend could fill the disk for the build's ten minutes. Only its
    tmpfs (bounded, in its memory) is writable now; the wheel still comes back."""
    import ast

    from tests.plugin_runtime.test_builder import run_once

    name = unique("filler")
    probe = ("SIX = [f for f in ('/build', '/build/src', '/build/feed', '/build/out') "
             "if __import__('os').path.isdir(f) and __import__('os').access(f, __import__('os').W_OK)]")
    make_sdist(index, name, "1.0", [str(marker)], build_body=probe)
    folder = plugin_folder(tmp_path, f"import {name.replace('-', '_')} as built\nprint(built.SEEN)", f"{name}\n")
    tag = f"plugin-runtime-test:{name}"
    result = Builder(docker_client, DEFAULT_BASE_IMAGE).build(load_source(folder), tag)
    try:
        [seen] = [ast.literal_eval(line) for line in run_once(docker_client, result.image)]
        assert seen["six"] == [] and seen["uid"] == 10001, seen
        assert not marker.exists()
    finally:
        docker_client.images.remove(tag)
