"""Resolving a plugin's requirements on the host without running anything of theirs.

pip runs a package's build backend (arbitrary code) as soon as it meets a source distribution,
even for ``pip download --no-deps``, so the host only ever asks pip for binary wheels
(``--only-binary=:all:``, for the image's Python and platform). A requirement that has no
wheel is located with ``unearth``, which reads the package index as data; its source
distribution is fetched as a file, its hashes checked, and it is built into a wheel inside a
sandboxed container (``sdist_build``). The built wheel joins pip's ``--find-links``; its own
dependencies are then resolved the same way, round after round, until pip succeeds.

Host-side pip gets a minimal environment: its own configuration, index, certificates and
proxies, none of the runtime's secrets.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from unearth import Package, PackageFinder, TargetPython

from plugin_runtime import requirements as requirement_lines
from plugin_runtime.errors import BuildFailed

#: Source distributions built and iterated over, at most, before giving up on a requirement set.
MAX_ROUNDS = 10
MAX_SDIST_BYTES = 200 * 1024 * 1024
SDIST_SUFFIXES = (".tar.gz", ".zip")
# What pip needs to find and fetch packages; anything else (the runtime's token and webhook
# secret, cloud credentials) stays out of its process.
_PASSED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC",
    "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "XDG_CACHE_HOME",
})
_PROXIES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})
_MISSING = re.compile(r"No matching distribution found for (.+)$", re.MULTILINE)
#: The folder whose ``sitecustomize`` every host-side pip process loads.
GUARD = Path(__file__).resolve().parent / "pip_guard"
_GUARD_MESSAGE = "plugin-runtime: pip on the host may not start a program"

#: ``build(sdist, package) -> wheel``: turns a fetched source distribution into a wheel.
SdistBuild = Callable[[Path, Package], Path]


def pip_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment host-side pip runs with: paths, locale, certificates, proxies (either
    case) and pip's own ``PIP_*`` configuration; never a ``PLUGIN_RUNTIME_*`` variable."""
    source = os.environ if environ is None else environ
    env = {
        key: value for key, value in source.items()
        if (key in _PASSED or key.lower() in _PROXIES or key.startswith("PIP_"))
        and not key.startswith("PLUGIN_RUNTIME_")
    }
    env.setdefault("LANG", "C.UTF-8")
    # Its sitecustomize forbids pip to start any program: a package's build backend never runs
    # here, whatever pip meets (see pip_guard/sitecustomize.py).
    env["PYTHONPATH"] = str(GUARD)
    return env


@dataclass(frozen=True)
class Target:
    """The interpreter wheels must run on: the base image's Python, machine and platforms."""

    python: str  # "3.11"
    machine: str  # "x86_64"
    platforms: tuple[str, ...]

    def pip_arguments(self) -> list[str]:
        abi = "cp" + self.python.replace(".", "")
        return ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp",
                "--abi", abi, "--abi", "abi3", "--abi", "none",
                *[arg for platform in self.platforms for arg in ("--platform", platform)]]

    def unearth(self) -> TargetPython:
        major, minor = (int(part) for part in self.python.split(".")[:2])
        return TargetPython((major, minor), ["cp" + self.python.replace(".", ""), "abi3", "none"], "cp",
                            list(self.platforms))

    def applies(self, requirement: Requirement) -> bool:
        """Whether the requirement's marker holds inside the image."""
        if requirement.marker is None:
            return True
        return requirement.marker.evaluate({
            "python_version": self.python, "python_full_version": f"{self.python}.0",
            "platform_machine": self.machine, "sys_platform": "linux", "platform_system": "Linux",
            "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
        })


@dataclass(frozen=True)
class Artifact:
    """One wheel that goes into a dependency layer."""

    name: str
    version: str
    sha256: str
    filename: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version} sha256:{self.sha256}"


@dataclass
class Resolution:
    """What a requirement set resolved to: the wheels in ``wheels`` and the requirement file
    (hashes of wheels built from source added) that installs exactly them."""

    artifacts: list[Artifact]
    wheels: Path
    requirements: Path
    built: list[str] = field(default_factory=list)


class HostPip:
    """pip on the host, with the minimal environment; every run's output goes to the log."""

    def __init__(self, command: list[str], target: Target) -> None:
        self.command, self.target = command, target

    def run(self, arguments: list[str], log: list[str]) -> subprocess.CompletedProcess[str]:
        command = [*self.command, *arguments[:1], "--disable-pip-version-check", "--no-input", *arguments[1:]]
        log.append("$ pip " + " ".join(arguments))
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=pip_environment(),
                                stdin=subprocess.DEVNULL)
        log.extend(result.stdout.splitlines() + result.stderr.splitlines())
        return result

    def download(self, requirements: list[str], dest: Path, log: list[str], find_links: Path | None = None,
                 requirement_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Binary wheels only, for the image: pip never meets a source distribution here."""
        extra = ["--find-links", str(find_links)] if find_links else []
        files = ["-r", str(requirement_file)] if requirement_file else []
        return self.run(["download", "--dest", str(dest), *self.target.pip_arguments(), *extra, *files,
                         *requirements], log)

    def index_config(self, log: list[str]) -> dict[str, str]:
        """pip's effective settings (files and ``PIP_*``), as ``pip config list`` shows them."""
        result = self.run(["config", "list"], log)
        settings: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if not sep:
                continue
            try:
                settings[key.strip()] = str(ast.literal_eval(value.strip()))
            except (ValueError, SyntaxError):
                settings[key.strip()] = value.strip().strip("'\"")
        return settings


def failure(message: str, pip_result: subprocess.CompletedProcess[str], log: list[str], target: Target) -> BuildFailed:
    if _GUARD_MESSAGE in pip_result.stderr:
        met = [line.strip() for line in pip_result.stdout.splitlines() if line.startswith(("Processing", "Collecting"))]
        return BuildFailed(
            f"{message}: a dependency names a source distribution by URL or path "
            f"({met[-1] if met else 'see the build log'}), which pip would build on the host: refused. "
            "Only packages from the configured indexes can be installed; pin versions whose wheels "
            "declare plain requirements", "\n".join(log))
    errors = [line for line in pip_result.stderr.splitlines() if line.startswith("ERROR:")]
    detail = "\n".join(errors) or pip_result.stderr.strip()[-2000:] or "pip failed"
    return BuildFailed(
        f"{message}:\n{detail}\n(requirements are installed as binary wheels for Python {target.python} on "
        f"{target.machine}, or built in a sandbox from a pure-Python source distribution; check the "
        "package names and versions)",
        "\n".join(log),
    )


@contextmanager
def package_finder(settings: Mapping[str, str], target: Target) -> Iterator[PackageFinder]:
    """An unearth finder over the indexes pip would use: index-url, extra-index-url,
    find-links, trusted-host and cert, environment variables first, then the ``download`` and
    ``global`` sections."""
    from unearth.auth import MultiDomainBasicAuth
    from unearth.fetchers import PyPIClient

    def option(name: str) -> str | None:
        for key in (f":env:.{name}", f"download.{name}", f"global.{name}"):
            if key in settings:
                return settings[key]
        return None

    no_index = (option("no-index") or "").lower() in ("1", "true", "yes", "on")
    indexes = [] if no_index else [option("index-url") or "https://pypi.org/simple/",
                                   *(option("extra-index-url") or "").split()]
    find_links = (option("find-links") or "").split()
    trusted = (option("trusted-host") or "").split()
    cert = option("cert")
    context = ssl.create_default_context(cafile=cert) if cert else ssl.create_default_context()
    client = PyPIClient(trusted_hosts=trusted, verify=context, timeout=60.0)
    client.auth = MultiDomainBasicAuth(prompting=False, index_urls=indexes)
    try:
        # unearth's own client; its Fetcher protocol is narrower than httpx2's signatures.
        yield PackageFinder(session=client,  # type: ignore[arg-type]
                            index_urls=indexes, find_links=find_links, trusted_hosts=trusted,
                            target_python=target.unearth())
    finally:
        client.close()


def fetch(finder: PackageFinder, package: Package, dest: Path, allowed: list[str]) -> Path:
    """Download a source distribution as a file (nothing of it runs), checking the index's
    hash and, for a hash-pinned requirement, the plugin's ``--hash`` values."""
    link = package.link
    filename = os.path.basename(link.filename)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", filename) or not filename.lower().endswith(SDIST_SUFFIXES):
        raise BuildFailed(f"{package.name} {package.version}: unexpected source file name {filename!r}", "")
    expected = link.hash_option or {}
    hashers = {name: hashlib.new(name) for name in expected}
    sha256 = hashers.setdefault("sha256", hashlib.sha256())
    path, size = dest / filename, 0
    dest.mkdir(parents=True, exist_ok=True)
    with finder.session.get_stream(link.normalized) as response, path.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_SDIST_BYTES:
                raise BuildFailed(f"{filename} is larger than {MAX_SDIST_BYTES // 2**20} MB", "")
            out.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    for name, values in expected.items():
        if hashers[name].hexdigest() not in values:
            raise BuildFailed(f"{filename} does not match the {name} hash its index publishes: the download "
                              "was altered or the index is inconsistent; try again or ask the index's admin", "")
    if allowed and f"sha256:{sha256.hexdigest()}" not in allowed:
        raise BuildFailed(f"{filename} (sha256:{sha256.hexdigest()}) matches none of the --hash values given for "
                          f"{package.name} in requirements.txt", "")
    return path


def artifacts(wheels: Path) -> list[Artifact]:
    out = []
    for wheel in sorted(wheels.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        out.append(Artifact(str(name), str(version), hashlib.sha256(wheel.read_bytes()).hexdigest(), wheel.name))
    return out


def missing_requirements(stderr: str) -> list[Requirement]:
    """The requirements pip found no wheel for (``No matching distribution found for X``)."""
    found = []
    for text in _MISSING.findall(stderr):
        try:
            found.append(Requirement(re.sub(r"\s*\(from .*\)$", "", text.strip())))
        except InvalidRequirement:
            continue
    return found


class Resolver:
    """Resolves one requirement set into wheels in a work folder; see the module docstring."""

    def __init__(self, pip: HostPip, build: SdistBuild, say: Callable[[str], None]) -> None:
        self.pip, self.build, self.say = pip, build, say
        self.target = pip.target

    def resolve(self, lines: list[str], work: Path, log: list[str], added: list[str] | None = None,
                constraints: list[str] | None = None) -> Resolution:
        """Wheels for ``lines`` (a plugin's requirements) and ``added`` (the runtime's own,
        which always have wheels: they are not looked up first), within ``constraints``
        (``name==version`` pins, pip's ``-c``: what a layer below already holds)."""
        return _Resolving(self, lines, added or [], work, log, constraints or []).run()


def conflicting(error: BuildFailed) -> bool:
    """Whether pip failed because the requirements cannot go together (its resolver found no
    set of versions), rather than because a package or a file is missing."""
    return "ResolutionImpossible" in error.error or "conflicting dependencies" in error.error


class _Resolving:
    """The state of one resolution: the wheels built from source so far, and the pins."""

    def __init__(self, resolver: Resolver, lines: list[str], added: list[str], work: Path, log: list[str],
                 constraints: list[str]) -> None:
        self.resolver, self.pip, self.target, self.work, self.log = resolver, resolver.pip, resolver.target, work, log
        self.constraints = constraints
        self.constrained = {canonicalize_name(Requirement(pin).name) for pin in constraints}
        self.wheels, self.built, self.sources = work / "wheels", work / "built", work / "sdists"
        self.built.mkdir(parents=True, exist_ok=True)
        self.parsed = [(line, Requirement(requirement_lines.split_options(line)[0])) for line in lines + added]
        self.own = self.parsed[:len(lines)]
        self.hashes = {canonicalize_name(req.name): [o.split("=", 1)[1] for o in requirement_lines.split_options(line)[1]
                                                     if o.startswith("--hash=")] for line, req in self.parsed}
        self.made: dict[str, Path] = {}  # canonical name -> wheel built from its source distribution
        self.pins: list[str] = []
        self._settings: dict[str, str] | None = None

    def finder(self):
        if self._settings is None:
            self._settings = self.pip.index_config(self.log)
        return package_finder(self._settings, self.target)

    def run(self) -> Resolution:
        direct = [req for _, req in self.own if self.target.applies(req)]
        if direct:
            self._pin_newest(direct, hashed=any(self.hashes.values()))
        for _ in range(MAX_ROUNDS):
            requirement_file = self.work / "requirements.txt"
            requirement_file.write_text(self._constraints_line()
                                        + "".join(self._line(line, req) for line, req in self.parsed)
                                        + "".join(pin + "\n" for pin in self.pins))
            shutil.rmtree(self.wheels, ignore_errors=True)
            result = self.pip.download([], self.wheels, self.log, find_links=self.built,
                                       requirement_file=requirement_file)
            if result.returncode == 0:
                return Resolution(artifacts(self.wheels), self.wheels, requirement_file, sorted(self.made))
            missing = [r for r in missing_requirements(result.stderr) if canonicalize_name(r.name) not in self.made]
            if not missing and self.pins:
                # The newest releases conflict with each other: let pip pick older ones.
                self.log.append(f"the newest releases ({', '.join(self.pins)}) do not go together; letting pip choose")
                self.pins = []
                continue
            if not missing:
                raise failure("resolving the requirements failed", result, self.log, self.target)
            with self.finder() as finder:
                for req in missing:
                    best = finder.find_best_match(req).best
                    if best is None or best.link.is_wheel:
                        raise failure("resolving the requirements failed", result, self.log, self.target)
                    self._build_from_source(finder, best)
        raise BuildFailed(f"the requirements still needed source builds after {MAX_ROUNDS} rounds: "
                          f"{', '.join(sorted(self.made))}; pin versions that publish wheels", "\n".join(self.log))

    def _constraints_line(self) -> str:
        if not self.constraints:
            return ""
        path = self.work / "constraints.txt"
        path.write_text("".join(pin + "\n" for pin in self.constraints))
        return f"-c {path}\n"

    def _pin_newest(self, direct: list[Requirement], hashed: bool) -> None:
        """Pin each direct requirement to its newest matching release, built from source if it
        has no wheel. Without this, ``--only-binary`` quietly backtracks to an old release
        whose dependencies all have wheels (kili 26 needs cuid 0.4, an sdist: pip would pick
        kili 2.131 and an old pandas that breaks on the newest numpy)."""
        with self.finder() as finder:
            for req in direct:
                if canonicalize_name(req.name) in self.constrained:
                    continue  # the layer below holds it: its version, not the newest
                best = finder.find_best_match(req).best
                if best is None:
                    continue  # pip says what is wrong with it
                if not best.link.is_wheel:
                    self._build_from_source(finder, best)
                if not hashed:
                    self.pins.append(f"{canonicalize_name(best.name)}=={best.version}")

    def _build_from_source(self, finder: PackageFinder, package: Package) -> None:
        name = canonicalize_name(package.name)
        sdist = fetch(finder, package, self.sources, self.hashes.get(name, []))
        self.made[name] = self.resolver.build(sdist, package)
        shutil.copy2(self.made[name], self.built / self.made[name].name)

    def _line(self, line: str, req: Requirement) -> str:
        # In hash-checking mode a wheel built here needs its own hash next to the sdist's.
        wheel = self.made.get(canonicalize_name(req.name))
        if wheel is not None and "--hash" in line:
            line += f" --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"
        return line + "\n"
