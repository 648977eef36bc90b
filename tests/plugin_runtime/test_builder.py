"""The image builder: no code of a plugin or of its dependencies runs on the host.

Packages are served from a local find-links folder given to pip through ``PIP_FIND_LINKS``
(as an admin would configure an index); the hostile ones are source distributions whose
in-tree build backend writes a marker file at host paths in every hook. The marker must never
appear on the host; the package must still be built (in the build sandbox) and importable by
the plugin in its container.
"""

from __future__ import annotations

import ast
import concurrent.futures
import hashlib
import inspect
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from plugin_runtime.base_image import DEFAULT_BASE_IMAGE
from plugin_runtime.builder import Builder, BuildFailed
from plugin_runtime.errors import PluginInvalid
from plugin_runtime.sandbox.base import Limits
from plugin_runtime.sandbox.docker import DockerSandbox
from plugin_runtime.sdist_build import LABEL as BUILD_LABEL
from plugin_runtime.source import load_source
from plugin_sdk.testing import make_event

pytestmark = pytest.mark.docker

#: Build containers of this process (other processes may be building at the same time).
OURS = {"label": [BUILD_LABEL, f"org.plugin-runtime.sandbox.owner={socket.gethostname()}:{os.getpid()}"]}


def write_wheel(directory, name, version, files, requires=()):
    """A pure-Python wheel of ``files`` (module path -> text). Also runs inside the hostile
    build backend (its source is copied there), so it uses the standard library only."""
    import base64 as b64
    import csv as csv_
    import hashlib as hashlib_
    import io as io_
    import os as os_
    import zipfile as zipfile_

    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
    content = dict(files)
    content[f"{info}/METADATA"] = meta
    content[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = io_.StringIO()
    writer = csv_.writer(record, lineterminator="\n")
    for path, text in content.items():
        digest = b64.urlsafe_b64encode(hashlib_.sha256(text.encode()).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(text.encode())])
    writer.writerow([f"{info}/RECORD", "", ""])
    content[f"{info}/RECORD"] = record.getvalue()
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile_.ZipFile(os_.path.join(directory, filename), "w") as archive:
        for path, text in content.items():
            archive.writestr(path, text)
    return filename


BACKEND = '''
import os

MARKERS = {markers!r}


def _mark(hook):
    # What a hostile package does: touch the host. In the build sandbox these paths are in a
    # private tmpfs or do not exist at all.
    for path in MARKERS:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as handle:
                handle.write(hook + "\\n")
        except OSError:
            pass


_mark("import")


def get_requires_for_build_wheel(config_settings=None):
    _mark("get_requires_for_build_wheel")
    return {dynamic!r}


def get_requires_for_build_sdist(config_settings=None):
    _mark("get_requires_for_build_sdist")
    return []


def build_sdist(sdist_directory, config_settings=None):
    _mark("build_sdist")
    raise RuntimeError("not supported")


{writer}

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark("build_wheel")
    {build_body}
    seen = {{"uid": os.getuid(), "secrets": sorted(k for k in os.environ if k.startswith("PLUGIN_RUNTIME")),
             "six": SIX}}
    return write_wheel(wheel_directory, {name!r}, {version!r},
                       {{{module!r} + "/__init__.py": "SEEN = %r\\n" % (seen,)}}, {requires!r})
'''


def make_sdist(folder: Path, name: str, version: str, markers: list[str], requires=(), build_requires=(),
               dynamic_requires=(), build_body: str = "SIX = __import__('six').__version__ if {needs_six} else None") -> Path:
    """``name-version.tar.gz`` with an in-tree build backend (``backend-path``) that marks
    ``markers`` in every hook and builds a wheel of module ``name`` (dashes as underscores).
    ``dynamic_requires`` are asked for by the backend while building, not declared."""
    module = name.replace("-", "_")
    top = f"{name}-{version}"
    body = build_body.format(needs_six="six" in (*build_requires, *dynamic_requires))
    backend = BACKEND.format(markers=markers, writer=inspect.getsource(write_wheel), build_body=body, name=name,
                             version=version, module=module, requires=list(requires), dynamic=list(dynamic_requires))
    pyproject = textwrap.dedent(f"""\
        [build-system]
        requires = {json.dumps(list(build_requires))}
        build-backend = "hostile_backend"
        backend-path = ["."]

        [project]
        name = "{name}"
        version = "{version}"
        """)
    members = {f"{top}/pyproject.toml": pyproject, f"{top}/hostile_backend.py": backend,
               f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def docker_client(docker_client):
    """The session's engine, checked afterwards for build containers left behind."""
    yield docker_client
    left = docker_client.containers.list(all=True, filters=OURS)
    for container in left:
        container.remove(force=True, v=True)
    assert not left, f"build containers left behind: {[c.name for c in left]}"


@pytest.fixture
def tags(docker_client):
    """Unique image tags, removed at teardown."""
    made: list[str] = []

    def new() -> str:
        made.append(f"plugin-runtime-test:builder-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield new
    for tag in made:
        if docker_client.images.list(name=tag):
            docker_client.images.remove(tag)


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    """A find-links folder pip (and so the builder) reads packages from, as configured by an
    admin; the runtime's secrets are set in the environment as in the service."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PLUGIN_RUNTIME_TOKEN", "token-must-not-leak")
    monkeypatch.setenv("PLUGIN_RUNTIME_WEBHOOK_SECRET", "secret-must-not-leak")
    return folder


@pytest.fixture
def markers(tmp_path) -> list[Path]:
    """Host paths a hostile build backend writes to; none may exist after a build."""
    unique = Path("/tmp") / f"plugin-runtime-pwned-{uuid.uuid4().hex}"
    yield [unique / "PWNED", tmp_path / "PWNED"]
    if unique.exists():
        for path in unique.iterdir():
            path.unlink()
        unique.rmdir()


def plugin_folder(tmp_path: Path, body: str, requirements: str, files: dict[str, bytes] | None = None) -> Path:
    folder = tmp_path / f"plugin-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    code = textwrap.indent(textwrap.dedent(body).strip() + "\n", " " * 8)
    (folder / "main.py").write_text(
        "from plugin_sdk import PluginCore\n\n\nclass PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n" + code)
    (folder / "requirements.txt").write_text(requirements)
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return folder


def run_once(client, image: str) -> list[str]:
    box = DockerSandbox(client, image, Limits(timeout_s=30))
    try:
        result = box.run(make_event("onSubmit", asset_id="a1"))
    finally:
        box.close()
    assert result.status == "ok", result.error
    return [log.message for log in result.logs]


def test_a_source_only_package_is_built_in_the_sandbox_never_on_the_host(
        docker_client, tags, index, markers, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    top, dep = f"prt-source-only-{suffix}", f"prt-source-dep-{suffix}"
    # The plugin's requirement needs six to build (fed as a wheel) and depends on another
    # source-only package, found only once the first one's wheel is read, whose backend asks
    # for six only while building.
    make_sdist(index, top, "1.0", [str(m) for m in markers], requires=[dep], build_requires=["six"])
    make_sdist(index, dep, "2.0", [str(m) for m in markers], dynamic_requires=["six"])
    folder = plugin_folder(tmp_path, f"""
        import {top.replace('-', '_')} as top, {dep.replace('-', '_')} as dep
        print(top.SEEN)
        print(dep.SEEN)
    """, f"{top}\n")
    result = Builder(docker_client, DEFAULT_BASE_IMAGE).build(load_source(folder), tags())
    assert f"{top}==1.0" in result.freeze and f"{dep}==2.0" in result.freeze
    assert not [m for m in markers if m.exists()], "a build backend ran on the host"
    seen_top, seen_dep = (ast.literal_eval(line) for line in run_once(docker_client, result.image))
    assert seen_top["uid"] == 10001 and seen_top["secrets"] == [] and seen_top["six"]
    assert seen_dep["uid"] == 10001 and seen_dep["secrets"] == [] and seen_dep["six"]
    assert f"{dep}-2.0.tar.gz also needs six to build" in "\n".join(result.log)
    assert "built prt_source_only" in "\n".join(result.log)
    assert not [m for m in markers if m.exists()]


@pytest.mark.parametrize("requirement", [
    "evil-1.0.tar.gz", "EVIL-1.0.TAR.GZ", "evil-1.0-py3-none-any.whl", "evil-1.0.zip", "./evil-1.0.tar.gz",
    "evil.tgz", "sub/evil-1.0.tar.gz", "file:evil-1.0.tar.gz",
])
def test_a_path_looking_requirement_is_refused_before_anything_runs(
        docker_client, index, markers, tmp_path, requirement):
    archive = make_sdist(tmp_path, "evil", "1.0", [str(m) for m in markers])
    folder = plugin_folder(tmp_path, "pass", requirement + "\n", files={
        "evil-1.0.tar.gz": archive.read_bytes(), "evil-1.0-py3-none-any.whl": archive.read_bytes(),
        "evil-1.0.zip": archive.read_bytes(), "evil.tgz": archive.read_bytes()})
    with pytest.raises(PluginInvalid) as refused:
        load_source(folder)
    [problem] = refused.value.problems
    assert problem.startswith(f"requirements.txt:1: {requirement!r}")
    assert "only packages from the configured indexes can be installed" in problem
    # The dry-run from the plugin's own folder, where pip would read the name as a file.
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(make_event("onSubmit", asset_id="a1")) + "\n")
    done = subprocess.run([sys.executable, "-m", "plugin_runtime", "dry-run", ".", "--events", str(events),
                           "--sandbox", "docker"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "only packages from the configured indexes" in done.stderr
    assert not [m for m in markers if m.exists()]


def test_the_dependency_cache_is_keyed_on_what_the_requirements_resolve_to(docker_client, tags, index, tmp_path):
    name = f"prt-cache-key-{uuid.uuid4().hex[:8]}"
    module = name.replace("-", "_")
    write_wheel(str(index), name, "1.0", {f"{module}/__init__.py": "VERSION = '1.0'\n"})
    builder = Builder(docker_client, DEFAULT_BASE_IMAGE)
    first = builder.resolve(f"{name}\n", tmp_path / "r1")
    again = builder.resolve(f"{name}\n", tmp_path / "r2")
    assert builder.deps_key(first) == builder.deps_key(again)
    [artifact] = [a for a in first.artifacts if a.name == name]
    wheel = index / f"{module}-1.0-py3-none-any.whl"
    assert (artifact.version, artifact.sha256) == ("1.0", hashlib.sha256(wheel.read_bytes()).hexdigest())
    body = f"import {module}; print({module}.VERSION)"
    source = load_source(plugin_folder(tmp_path, body, f"{name}\n"))
    tag = tags()
    built = builder.build(source, tag)
    assert built.deps_image == f"plugin-runtime-deps:{builder.deps_key(first)}"
    labels = docker_client.images.get(built.deps_image).labels
    assert f"{name}==1.0 sha256:{artifact.sha256}" in json.loads(labels["org.plugin-runtime.resolution"])
    # A newer release: the same requirement text now resolves to other wheels, another layer.
    write_wheel(str(index), name, "1.1", {f"{module}/__init__.py": "VERSION = '1.1'\n"})
    newer = builder.resolve(f"{name}\n", tmp_path / "r3")
    assert builder.deps_key(newer) != builder.deps_key(first)
    # The same files are reused as built (versions are immutable); changed code resolves again.
    assert builder.build(source, tag).image_id == built.image_id
    changed = builder.build(load_source(plugin_folder(tmp_path, body + "  # v2", f"{name}\n")), tags())
    assert changed.deps_image == f"plugin-runtime-deps:{builder.deps_key(newer)}" and not changed.deps_cached
    assert run_once(docker_client, changed.image) == ["1.1"]
    for image in (built.deps_image, changed.deps_image):
        docker_client.images.remove(image)  # unique packages: nobody else shares these layers


def test_host_pip_never_sees_the_runtimes_secrets(docker_client, tags, index, tmp_path, monkeypatch):
    record = tmp_path / "pip-environments.jsonl"
    wrapper = tmp_path / "pip"
    wrapper.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        with open({str(record)!r}, "a") as out:
            out.write(json.dumps(dict(os.environ)) + "\\n")
        os.execv({sys.executable!r}, [{sys.executable!r}, "-m", "pip", *sys.argv[1:]])
    """))
    wrapper.chmod(0o755)
    monkeypatch.setenv("https_proxy", "")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret-must-not-leak")
    name = f"prt-env-{uuid.uuid4().hex[:8]}"
    write_wheel(str(index), name, "1.0", {f"{name.replace('-', '_')}/__init__.py": ""})
    built = Builder(docker_client, DEFAULT_BASE_IMAGE, pip=[str(wrapper)]).build(
        load_source(plugin_folder(tmp_path, "pass", f"{name}\n")), tags())
    environments = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(environments) >= 3  # pip config list, download, install
    for env in environments:
        assert not [key for key in env if key.startswith("PLUGIN_RUNTIME_")]
        assert "token-must-not-leak" not in json.dumps(env) and "AWS_SECRET_ACCESS_KEY" not in env
        assert env["PIP_FIND_LINKS"] == str(index) and env["NO_PROXY"] == "127.0.0.1" and "https_proxy" in env
        assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    docker_client.images.remove(built.deps_image)


def test_a_failing_source_build_says_what_to_do_and_leaves_nothing(docker_client, tags, index, markers, tmp_path):
    name = f"prt-needs-compiler-{uuid.uuid4().hex[:8]}"
    make_sdist(index, name, "1.0", [str(m) for m in markers],
               build_body="raise RuntimeError(\"error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory\")")
    tag = tags()
    with pytest.raises(BuildFailed) as failed:
        Builder(docker_client, DEFAULT_BASE_IMAGE).build(load_source(plugin_folder(tmp_path, "pass", f"{name}\n")), tag)
    assert f"building {name}-1.0.tar.gz (published as source only) failed in the build sandbox" in failed.value.error
    assert "It needs a compiler" in failed.value.error and "publishes a wheel" in failed.value.error
    assert "x86_64-linux-gnu-gcc" in failed.value.log
    assert not docker_client.images.list(name=tag)
    assert not docker_client.containers.list(all=True, filters=OURS)
    assert not [m for m in markers if m.exists()]


def test_a_source_build_runs_confined_and_is_stopped_at_its_time_limit(docker_client, tags, index, markers, tmp_path):
    name = f"prt-slow-build-{uuid.uuid4().hex[:8]}"
    make_sdist(index, name, "1.0", [str(m) for m in markers], build_body="__import__('time').sleep(3600)")
    builder = Builder(docker_client, DEFAULT_BASE_IMAGE, build_timeout_s=20)
    source = load_source(plugin_folder(tmp_path, "pass", f"{name}\n"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        building = pool.submit(builder.build, source, tags())
        deadline = time.monotonic() + 60
        while not (found := docker_client.containers.list(filters=OURS)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert found, "no build container was seen running"
        config = docker_client.api.inspect_container(found[0].id)
        with pytest.raises(BuildFailed, match=r"took longer than 20 s, the build time limit"):
            building.result(timeout=120)
    host = config["HostConfig"]
    assert config["Config"]["User"] == "10001:10001" and host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and host["Privileged"] is False
    assert "no-new-privileges" in host["SecurityOpt"] and any(o.startswith("seccomp=") for o in host["SecurityOpt"])
    assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (512 * 2**20, 128, 10**9)
    assert not [b for b in host.get("Binds") or []] and not [m for m in config["Mounts"] if m["Type"] == "bind"]
    assert not [v for v in config["Config"]["Env"] if v.startswith("PLUGIN_RUNTIME_")]
    assert not docker_client.containers.list(all=True, filters=OURS)
    assert not [m for m in markers if m.exists()]
