"""Loaded as ``sitecustomize`` by every Python process the runtime starts for pip on the host
(``resolver.pip_environment`` puts this folder first on ``PYTHONPATH``): such a process may not
start any program.

pip downloads and unpacks wheels without starting a program. What it would start is a
package's build backend (arbitrary code, as root, on the host): ``--only-binary=:all:`` keeps
pip away from source distributions found on an index, but not from one named by a direct URL
(``pwn @ https://...``, ``file:///...``) in the ``Requires-Dist`` of a wheel it reads, such as
a wheel built in the build sandbox from a hostile source distribution. An audit hook cannot be
removed once added, and sees every way Python starts a process.
"""

import sys

# Not os.exec: it replaces this process, which loads this guard again (PYTHONPATH is inherited),
# and a pip command configured as a wrapper script execs pip; pip itself starts programs with
# subprocess only.
_SPAWNING = frozenset({
    "subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
    "pty.spawn",
})
MESSAGE = "plugin-runtime: pip on the host may not start a program"


def _refuse(event: str, args: tuple) -> None:
    if event in _SPAWNING:
        raise PermissionError(f"{MESSAGE} (it would run a package's build code on the host): {event} {args[:2]!r}")


sys.addaudithook(_refuse)
