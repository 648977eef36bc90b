"""Hostile plugins in the real Docker sandbox: each attack gets its exact status, and the next
event on the same sandbox still runs (status ok, its action recorded)."""

from __future__ import annotations

import ast
import errno
import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
from docker.errors import NotFound

from plugin_runtime.builder import BuildFailed
from plugin_runtime.sandbox.docker import LABEL, sweep
from plugin_sdk.testing import make_event

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[3]
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def plugin(attack: str, header: str = "") -> str:
    """A plugin whose on_submit runs ``attack`` for the asset "attack", then (whatever the
    asset, if it gets there) sends the asset back to the queue."""
    return (
        "import errno, json, os, socket, sys, time\n"
        "from plugin_sdk import PluginCore\n"
        f"{textwrap.dedent(header)}\n"
        "class PluginHandler(PluginCore):\n"
        "    def on_submit(self, label, asset_id):\n"
        "        if asset_id == 'attack':\n"
        f"{textwrap.indent(textwrap.dedent(attack), ' ' * 12)}\n"
        "        self.kili.send_back_to_queue(asset_ids=[asset_id])\n"
    )


def attack(box):
    return box.run(make_event("onSubmit", asset_id="attack"))


def assert_next_event_works(box) -> None:
    result = box.run(make_event("onSubmit", asset_id="next"))
    assert result.status == "ok", result.error
    assert [(a.type, a.asset_id) for a in result.actions] == [("send_back_to_queue", "next")]


def messages(result) -> list[str]:
    return [log.message for log in result.logs]


def test_no_network_at_all(docker_plugin):
    box = docker_plugin(plugin("""
        probes = {
            "loopback": lambda: socket.create_connection(("127.0.0.1", 8400), timeout=2),
            "public": lambda: socket.create_connection(("1.1.1.1", 53), timeout=2),
            "dns": lambda: socket.getaddrinfo("pypi.org", 443),
        }
        for name, probe in probes.items():
            try:
                probe()
            except OSError as error:
                print(f"{name}: refused {type(error).__name__}: {error}")
            else:
                print(f"{name}: SUCCEEDED")
        print("interfaces:", sorted(os.listdir("/sys/class/net")))
    """))
    result = attack(box)
    logs = messages(result)
    print("\n".join(logs))  # what each attempt met, for the record
    assert result.status == "ok", result.error
    assert not [m for m in logs if "SUCCEEDED" in m]
    for name in ("loopback", "public", "dns"):
        assert len([m for m in logs if m.startswith(f"{name}: refused ")]) == 1, logs
    assert "interfaces: ['lo']" in logs  # no interface but the container's own loopback
    assert_next_event_works(box)


def test_environment_holds_nothing_of_the_runtime(docker_plugin, monkeypatch):
    monkeypatch.setenv("PLUGIN_RUNTIME_TOKEN", "secret-xyz")
    monkeypatch.setenv("PIP_NO_INPUT", "1")
    monkeypatch.setenv("DOCKER_HOST", os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    box = docker_plugin(plugin("print(dict(os.environ))"))
    result = attack(box)
    assert result.status == "ok", result.error
    [printed] = [m for m in messages(result) if m.startswith("{")]
    env = ast.literal_eval(printed)
    print(env)
    assert "secret-xyz" not in printed and "PLUGIN_RUNTIME_TOKEN" not in env
    assert not [k for k in env if k.startswith(("PLUGIN_RUNTIME", "PIP_", "DOCKER"))]
    assert env.get("HOSTNAME") != socket.gethostname()
    assert socket.gethostname() not in env.values()
    assert set(env) <= {"PATH", "HOSTNAME", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING"}
    assert_next_event_works(box)


def test_host_paths_are_not_visible(docker_plugin, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": "evt-1"}\n')
    paths = [str(tmp_path), str(REPO), "/var/run/docker.sock", str(events),
             str(REPO / "example_plugins" / "invoice_qa" / "events.jsonl")]
    assert all(os.path.exists(p) for p in paths)  # they are there on the host
    box = docker_plugin(plugin(f"print(json.dumps({{p: os.path.exists(p) for p in {paths + ['/plugin/main.py']!r}}}))"))
    result = attack(box)
    assert result.status == "ok", result.error
    seen = json.loads(messages(result)[0])
    assert seen.pop("/plugin/main.py") is True  # the probe does see what is there
    assert seen == {p: False for p in paths}
    assert_next_event_works(box)


def test_fork_bomb_is_stopped_by_the_pids_limit(docker_plugin):
    box = docker_plugin(plugin("""
        children = 0
        while True:
            try:
                pid = os.fork()
            except OSError as error:
                print(f"fork refused after {children} children: errno {error.errno}")
                break
            if pid == 0:  # a child never returns to the SDK
                try: time.sleep(60)
                finally: os._exit(0)
            children += 1
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    [line] = [m for m in messages(result) if m.startswith("fork refused")]
    children, code = int(line.split()[3]), int(line.split()[-1])
    assert code == errno.EAGAIN
    assert 0 < children < box.limits.pids
    assert_next_event_works(box)  # the same container, still full of sleeping children


def test_memory_hog_is_oom_killed(docker_plugin):
    box = docker_plugin(plugin("""
        hog = []
        while True:
            hog.append(b"x" * (10 << 20))
    """), memory_mb=128)
    result = attack(box)
    assert result.status == "oom_killed", (result.status, result.error)
    assert "128 MB" in result.error and not result.actions
    assert_next_event_works(box)
    assert box.cold_starts == 2


def test_endless_loop_times_out(docker_plugin):
    box = docker_plugin(plugin("while True:\n    pass"), timeout_s=3)
    result = attack(box)
    assert result.status == "timeout"
    assert "within 3 s" in result.error and not result.actions
    assert_next_event_works(box)
    assert box.cold_starts == 2


def _rss_kb() -> int:
    [line] = [x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1])


@pytest.mark.parametrize("flood", [
    "for _ in range(50 * 1024):\n    print('x' * 1023)",  # through sys.stdout: log messages
    "line = b'y' * 1023 + b'\\n'\nfor _ in range(50 * 1024):\n    os.write(1, line)",  # raw fd 1
], ids=["print", "fd1"])
def test_50_mb_of_output_ends_output_limit(docker_plugin, flood):
    box = docker_plugin(plugin(flood))
    before = _rss_kb()
    result = attack(box)
    grown_mb = (_rss_kb() - before) / 1024
    assert result.status == "output_limit", (result.status, result.error)
    assert str(box.limits.max_log_bytes) in result.error and not result.actions
    assert grown_mb < 100, f"the test process grew by {grown_mb:.0f} MB"
    assert_next_event_works(box)


def test_only_tmp_is_writable(docker_plugin):
    box = docker_plugin(plugin("""
        for path in ("/plugin/main.py", "/plugin/new.py", "/etc/evil", "/evil",
                     "/opt/plugin-runtime/site/evil.py", "/tmp/ok.txt"):
            try:
                with open(path, "a") as handle:
                    handle.write("x")
            except OSError as error:
                print(f"{path} refused {errno.errorcode[error.errno]}")
            else:
                print(f"{path} written")
        for mount in ("/", "/plugin", "/tmp"):
            print(mount, "read-only" if os.statvfs(mount).f_flag & os.ST_RDONLY else "writable")
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    # An existing file fails the permission check first (EACCES); creating one meets the
    # read-only filesystem (EROFS); statvfs says which mounts are read-only.
    assert messages(result) == [
        "/plugin/main.py refused EACCES", "/plugin/new.py refused EROFS", "/etc/evil refused EROFS",
        "/evil refused EROFS", "/opt/plugin-runtime/site/evil.py refused EROFS", "/tmp/ok.txt written",
        "/ read-only", "/plugin read-only", "/tmp writable",
    ]
    assert_next_event_works(box)


def test_runs_unprivileged(docker_plugin):
    box = docker_plugin(plugin("""
        print("ids", os.getuid(), os.geteuid(), os.getgid(), os.getegid())
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("Cap", "NoNewPrivs")):
                    print(line.strip())
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    status = dict(m.split(":\t", 1) for m in messages(result) if ":\t" in m)
    assert "ids 10001 10001 10001 10001" in messages(result)
    # cap_drop ALL: no capability now (CapEff, CapPrm, CapAmb) nor to regain (CapBnd).
    assert {status[c] for c in ("CapEff", "CapPrm", "CapAmb", "CapBnd")} == {"0000000000000000"}
    assert status["NoNewPrivs"] == "1"
    assert_next_event_works(box)


def test_requirement_is_installed_and_a_code_change_reuses_its_layer(docker_plugin):
    box = docker_plugin(plugin("print(six.__version__, six.__file__)", header="import six"),
                        requirements="six==1.16.0\n")
    assert "six==1.16.0" in box.build.freeze
    result = attack(box)
    assert result.status == "ok", result.error
    assert messages(result) == ["1.16.0 /opt/plugin-runtime/site/six.py"]
    assert_next_event_works(box)
    # Changed code, same requirements: only the code layer is new.
    second = docker_plugin(plugin("print('v2', six.__version__)", header="import six"),
                           requirements="six==1.16.0\n")
    assert second.build.deps_cached is True and second.build.deps_image == box.build.deps_image
    assert second.build.image_id != box.build.image_id
    assert messages(attack(second)) == ["v2 1.16.0"]  # the new code is what runs


def test_unknown_requirement_fails_the_build(docker_client, builder, plugin_source, image_tags):
    wanted = "this-package-does-not-exist-plugin-runtime==1.0"
    source = plugin_source(plugin("pass"), requirements=wanted + "\n")
    tag = image_tags()
    layers = {image.id for image in docker_client.images.list(name="plugin-runtime-deps")}
    with pytest.raises(BuildFailed) as failed:
        builder.build(source, tag)
    assert "ERROR:" in failed.value.error  # pip's own message, naming the package
    assert "this-package-does-not-exist-plugin-runtime" in failed.value.error
    assert not docker_client.images.list(name=tag)
    # Nothing resolved, so no dependency layer was made (layers are keyed on resolved wheels).
    assert {image.id for image in docker_client.images.list(name="plugin-runtime-deps")} == layers


def test_crash_at_import_fails_every_event_without_respawning(docker_plugin, sandbox_containers):
    box = docker_plugin(plugin("pass", header="raise RuntimeError('boom at import')"))
    for asset in ("a", "b", "c"):
        result = box.run(make_event("onSubmit", asset_id=asset))
        assert result.status == "error"
        assert "boom at import" in result.error and not result.actions
    assert box.cold_starts == 1
    assert not sandbox_containers(**{f"{LABEL}.test": box.test_label})


def test_exit_in_hook_reports_the_exit_code(docker_plugin):
    box = docker_plugin(plugin("os._exit(3)"))
    result = attack(box)
    assert result.status == "error"
    assert "exit code 3" in result.error


def test_exit_in_hook_is_an_error_and_the_next_event_gets_a_new_container(docker_plugin):
    box = docker_plugin(plugin("os._exit(3)"))
    result = attack(box)
    assert result.status == "error" and not result.actions
    assert "exited during the hook" in result.error
    assert box.cold_starts == 1
    assert_next_event_works(box)
    assert box.cold_starts == 2


def test_close_removes_the_containers(docker_plugin, sandbox_containers):
    box = docker_plugin(plugin("pass"))
    assert_next_event_works(box)
    box.run(make_event("onSubmit", asset_id="next", project_id="project-2"))
    [one, two] = sandbox_containers(**{f"{LABEL}.test": box.test_label})
    assert {one.status, two.status} == {"running"}
    box.close()
    assert not sandbox_containers(**{f"{LABEL}.test": box.test_label})


def test_sweep_removes_containers_of_dead_processes(docker_client, left_behind):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(gone.pid, 0)
    orphan = left_behind(f"{socket.gethostname()}:{gone.pid}")
    ours = left_behind(OWNER)
    assert sweep(docker_client) >= 1
    with pytest.raises(NotFound):
        orphan.reload()
    ours.reload()  # a live process's container is left alone
    assert ours.status == "running"


def test_sweep_leaves_other_hosts_containers_alone(docker_client, left_behind):
    other = left_behind(f"another-host-{os.getpid()}:1")
    sweep(docker_client)
    other.reload()


def test_open_files_are_limited(docker_plugin):
    box = docker_plugin(plugin("""
        import resource
        print("nofile", *resource.getrlimit(resource.RLIMIT_NOFILE))
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
        except (ValueError, OSError) as error:
            print("raise refused", type(error).__name__)
        handles = []
        try:
            while True:
                handles.append(open("/dev/null"))
        except OSError as error:
            print("open refused after", len(handles), errno.errorcode[error.errno])
        for handle in handles:
            handle.close()
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    logs = messages(result)
    assert "nofile 1024 1024" in logs
    assert "raise refused ValueError" in logs  # the hard limit cannot be raised either
    [refused] = [m for m in logs if m.startswith("open refused")]
    opened, code = int(refused.split()[3]), refused.split()[4]
    assert code == "EMFILE"
    assert 1000 < opened < 1024  # the process's own descriptors take the rest
    assert_next_event_works(box)


def test_io_uring_is_refused_by_seccomp(docker_plugin):
    # io_uring_setup, io_uring_enter, io_uring_register: 425-427 on x86_64 and aarch64 alike.
    # enter/register on fd -1 would fail with EBADF if they reached the kernel: EPERM says
    # the seccomp filter stopped them first.
    box = docker_plugin(plugin("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        calls = {"setup": (425, 8, params), "enter": (426, -1, 0, 0, 0, None, 0), "register": (427, -1, 0, None, 0)}
        for name, args in calls.items():
            ctypes.set_errno(0)
            answer = libc.syscall(*args)
            print(name, answer, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    assert messages(result) == ["setup -1 EPERM", "enter -1 EPERM", "register -1 EPERM"]
    assert_next_event_works(box)


def test_ordinary_python_works_under_the_seccomp_profile(docker_plugin):
    box = docker_plugin(plugin("""
        import asyncio, mmap, subprocess, threading, hashlib
        done = []
        thread = threading.Thread(target=lambda: done.append(hashlib.sha256(b"x").hexdigest()[:8]))
        thread.start()
        thread.join()
        print("thread", done[0])
        print("subprocess", subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                                           text=True, check=True).stdout.strip())
        left, right = socket.socketpair()
        left.sendall(b"ping")
        print("socketpair", right.recv(4).decode())
        with mmap.mmap(-1, 4096) as page:
            page[:2] = b"ok"
            print("mmap", page[:2].decode())
        print("asyncio", asyncio.run(asyncio.sleep(0, result="ok")))
    """))
    result = attack(box)
    assert result.status == "ok", result.error
    assert messages(result) == ["thread 2d711642", "subprocess 42", "socketpair ping", "mmap ok", "asyncio ok"]
    assert_next_event_works(box)
