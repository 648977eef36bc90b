"""A plugin's files, as uploaded or dry-run: read from a ``main.py``, a folder or a zip, kept
to what the plugin needs, and checked without importing it (the host never runs plugin code).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import lzma
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from plugin_runtime import requirements
from plugin_runtime.errors import PluginInvalid
from plugin_sdk.subscriptions import GENERIC_HOOK, HOOKS

MAX_FILES = 500
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_ZIP_BYTES = 20 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
#: Never needed to run: compiled files, editor and OS leftovers, documentation.
JUNK_SUFFIXES = {".pyc", ".pyo", ".md", ".rst", ".swp", ".swo"}
JUNK_NAMES = {".DS_Store", "Thumbs.db", ".gitignore", ".gitattributes"}
# .plugin-runtime: a server's data directory (its token and secrets) is never part of a plugin.
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests",
              "node_modules", ".idea", ".vscode", ".plugin-runtime"}
_HOOK_NAMES = [*HOOKS.values(), GENERIC_HOOK]
# Files only a server's data directory holds, whatever its name (--data-dir ./state): the folder
# holding one is a data directory, with the admin token and webhook secrets next to it.
_DATA_DIR_FILES = {"runtime.db", "server.lock"}
# What reading a damaged or unusual zip entry raises (lzma.LZMAError aside, a plain Exception).
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, NotImplementedError, RuntimeError,
            ValueError)


@dataclass(frozen=True)
class PluginSource:
    """The files kept for a plugin, and what its static check found."""

    files: dict[str, bytes]
    handler: str
    hooks: list[str]
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Event types and ``on_event`` patterns, as far as reading main.py tells; the plugin
    #: process reports the exact list when it loads.
    subscriptions: list[str] = field(default_factory=list)
    #: The ``on_event`` patterns given at upload or dry-run (``--event-matcher``, as Kili's
    #: ``upload_plugin(..., event_matcher=[...])``): they replace the class's ``event_matcher``.
    event_matcher: list[str] = field(default_factory=list)

    @property
    def requirements(self) -> str:
        return self.files.get("requirements.txt", b"").decode("utf-8")

    def digest(self) -> str:
        """A content hash: equal files give equal digests, whatever their origin."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()

    def archive(self) -> bytes:
        """The files as a zip (stored with a version; ``load_archive`` reads it back)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.files):
                info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, self.files[name])
        return buffer.getvalue()

    def write_to(self, folder: Path) -> Path:
        """Write the files under ``folder`` and return it."""
        for name, data in self.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return folder


def load_source(path: str | Path) -> PluginSource:
    """Read and check a plugin given as a ``.py`` file, a folder or a ``.zip``."""
    path = Path(path)
    if not path.exists():
        raise PluginInvalid([f"{path}: no such file or folder"])
    if path.is_dir():
        raw, dropped = _read_folder(path)
    elif path.suffix == ".zip" or zipfile.is_zipfile(path):
        raw, dropped = _read_zip(path.read_bytes(), path.name)
    elif path.suffix == ".py":
        raw, dropped = {"main.py": path.read_bytes()}, []
        sibling = path.parent / "requirements.txt"
        if sibling.is_file():
            raw["requirements.txt"] = sibling.read_bytes()
    else:
        raise PluginInvalid([f"{path}: a plugin is a main.py, a folder holding one, or a .zip"])
    return check_files(raw, dropped, origin=str(path))


def load_archive(data: bytes, origin: str = "upload.zip") -> PluginSource:
    """Read and check a plugin sent as zip bytes (an upload, or a stored version)."""
    raw, dropped = _read_zip(data, origin)
    return check_files(raw, dropped, origin)


def check_files(raw: dict[str, bytes], dropped: list[str], origin: str) -> PluginSource:
    """Keep what a plugin needs and check it; raises PluginInvalid listing every problem."""
    files: dict[str, bytes] = {}
    dropped = list(dropped)
    data_dirs = {PurePosixPath(name).parent for name in raw if PurePosixPath(name).name in _DATA_DIR_FILES}
    for name, data in sorted(raw.items()):
        pure = PurePosixPath(name)
        if not name.isprintable():
            # A folder's file names reach the admin's terminal in every message that names them:
            # a newline or an escape in one could forge a line there (zips refuse them outright).
            dropped.append(f"{name!r} (a name with non-printable characters)")
        elif data_dirs.intersection(pure.parents):
            dropped.append(f"{name} (in a plugin-runtime server's data directory, which holds its token and "
                           "secrets: never part of a plugin)")
        elif any(part in _SKIP_DIRS for part in pure.parts[:-1]) or _is_test_file(pure.name):
            dropped.append(f"{name} (tests and caches are not needed to run)")
        elif pure.suffix.lower() in JUNK_SUFFIXES or pure.name in JUNK_NAMES:
            dropped.append(f"{name} (documentation and editor or compiled files are not needed to run)")
        elif name != "requirements.txt" and pure.name == "requirements.txt":
            dropped.append(f"{name} (only the top-level requirements.txt is installed)")
        else:
            files[name] = data
    problems: list[str] = []
    if "main.py" not in files:
        hint = " (a plugin's main.py defines its PluginHandler; `plugin-runtime init NAME` writes a working one)"
        nested = [n for n in files if n.endswith("/main.py")]
        if nested:
            hint = f" (found {nested[0]}: put main.py at the top of the plugin)"
        raise PluginInvalid([f"{origin}: no main.py{hint}"])
    for name, data in files.items():
        if len(data) > MAX_FILE_BYTES:
            problems.append(f"{name}: {len(data)} bytes, over the limit of {MAX_FILE_BYTES}")
        if name.endswith(".py") or name == "requirements.txt":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                problems.append(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})")
    if sum(len(d) for d in files.values()) > MAX_TOTAL_BYTES:
        problems.append(f"the plugin's files exceed {MAX_TOTAL_BYTES} bytes")
    if problems:
        raise PluginInvalid(problems)
    handler, hooks, warnings = check_main(files["main.py"].decode("utf-8"))
    if "requirements.txt" in files:
        requirements.check(files["requirements.txt"].decode("utf-8"))
    subscriptions = [event for event, hook in HOOKS.items() if hook in hooks]
    if GENERIC_HOOK in hooks:
        subscriptions += _event_matcher(files["main.py"].decode("utf-8"), handler)
    return PluginSource(files=files, handler=handler, hooks=hooks, dropped=dropped, warnings=warnings,
                        subscriptions=subscriptions)


def _event_matcher(text: str, handler: str) -> list[str]:
    """The literal ``event_matcher = [...]`` of the handler class, if it has one."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == handler:
            for statement in node.body:
                if isinstance(statement, ast.Assign):
                    targets, assigned = statement.targets, statement.value
                elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                    targets, assigned = [statement.target], statement.value
                else:
                    continue
                if any(isinstance(t, ast.Name) and t.id == "event_matcher" for t in targets):
                    try:
                        value = ast.literal_eval(assigned)
                    except ValueError:
                        return []
                    return [value] if isinstance(value, str) else [str(v) for v in value]
    return []


def _is_test_file(name: str) -> bool:
    return name == "conftest.py" or (name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")))


def check_main(text: str, filename: str = "main.py") -> tuple[str, list[str], list[str]]:
    """Check ``main.py`` statically: it parses, defines the handler class and a hook.
    Returns ``(handler class name, hooks, warnings)``."""
    try:
        module = ast.parse(text, filename=filename)
    except SyntaxError as error:
        # The checked text's own line: Python would read "main.py" from the current directory.
        lines = text.splitlines()
        line = lines[error.lineno - 1] if error.lineno and 0 < error.lineno <= len(lines) else ""
        pointer = f"\n    {line}\n    {' ' * max((error.offset or 1) - 1, 0)}^" if line else ""
        raise PluginInvalid([
            f"{filename}:{error.lineno}:{error.offset or 0}: SyntaxError: {error.msg}{pointer}\n"
            f"  fix the syntax at that line (`python -m py_compile {filename}` checks it)"
        ]) from None
    classes = {n.name: n for n in module.body if isinstance(n, ast.ClassDef)}
    warnings: list[str] = []
    handler = classes.get("PluginHandler")
    if handler is None:
        candidates = [c for c in classes.values() if _derives_from_core(c, classes)]
        if len(candidates) != 1:
            found = f" (found {', '.join(c.name for c in candidates)})" if candidates else ""
            raise PluginInvalid([
                f"{filename}: no PluginHandler class{found}: define `class PluginHandler(PluginCore):`"
                " with at least one hook, after `from plugin_sdk import PluginCore` (or "
                "`from kili.plugins import PluginCore`)"
            ])
        handler = candidates[0]
        warnings.append(
            f"{filename}:{handler.lineno}: the handler class is {handler.name}, not "
            f"PluginHandler; it is used, but Kili requires the name PluginHandler"
        )
    hooks = _hooks(handler, classes, set())
    typos = _misspelt_hooks(handler, hooks)
    if not hooks and not _has_foreign_base(handler, classes) and not _kili_event_methods(handler):
        raise PluginInvalid([
            f"{filename}:{handler.lineno}: {handler.name} has no hook, so the plugin would never "
            "run: define on_submit(self, label, asset_id), on_review(self, label, asset_id), "
            "on_custom_interface_click, on_send_back_to_queue(self, asset_id), "
            "on_project_updated(self, settings_updated) or on_event(self, payload) in it" + "".join(f"\n  {filename}:{line}: {name} is not a hook: did you mean {hook}?"
                                     for line, name, hook in typos)
        ])
    warnings += [f"{filename}:{line}: {name} is not a hook and is never called: did you mean {hook}?"
                 for line, name, hook in typos]
    return handler.name, hooks, warnings


def _misspelt_hooks(node: ast.ClassDef, hooks: list[str]) -> list[tuple[int, str, str]]:
    """Methods named almost like a hook the class lacks (``on_sumbit``): never called, silently."""
    def key(name: str) -> str:  # onSubmit, on_Submit and onsubmit all mean on_submit
        return name.lower().replace("_", "")

    missing = {key(hook): hook for hook in _HOOK_NAMES if hook not in hooks}
    found = []
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name not in _HOOK_NAMES:
            close = difflib.get_close_matches(key(item.name), list(missing), n=1, cutoff=0.85)
            if close:
                found.append((item.lineno, item.name, missing[close[0]]))
    return found


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _derives_from_core(node: ast.ClassDef, classes: dict[str, ast.ClassDef], depth: int = 0) -> bool:
    for name in _base_names(node):
        if name == "PluginCore":
            return True
        if name in classes and depth < 20 and _derives_from_core(classes[name], classes, depth + 1):
            return True
    return False


def _hooks(node: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> list[str]:
    seen.add(node.name)
    own = [
        n.name for n in node.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in _HOOK_NAMES
    ]
    for name in _base_names(node):
        if name in classes and name not in seen:
            own += [h for h in _hooks(classes[name], classes, seen) if h not in own]
    return [h for h in _HOOK_NAMES if h in own]


def _kili_event_methods(node: ast.ClassDef) -> list[str]:
    """Methods decorated with Kili's ``@on_kili_event`` (their events are known once loaded)."""
    def named(decorator: ast.expr) -> bool:
        return (isinstance(decorator, ast.Name) and decorator.id == "on_kili_event") or (
            isinstance(decorator, ast.Attribute) and decorator.attr == "on_kili_event")

    return [n.name for n in node.body if isinstance(n, ast.FunctionDef) and any(named(d) for d in n.decorator_list)]


def _has_foreign_base(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> bool:
    """A base class imported from another module may define the hooks: the plugin process
    decides then."""
    return any(name not in classes and name not in ("PluginCore", "object") for name in _base_names(node))


def _read_folder(folder: Path) -> tuple[dict[str, bytes], list[str]]:
    files: dict[str, bytes] = {}
    dropped: list[str] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(part in _SKIP_DIRS for part in PurePosixPath(rel).parts):
            continue
        if path.is_symlink():
            dropped.append(f"{rel} (symbolic links are not followed)")
        elif path.is_file():
            if len(files) >= MAX_FILES:
                raise PluginInvalid([f"{folder}: more than {MAX_FILES} files"])
            if path.stat().st_size > MAX_TOTAL_BYTES:
                dropped.append(f"{rel} (too large: {path.stat().st_size} bytes)")
                continue
            files[rel] = path.read_bytes()
    return files, dropped


def _read_zip(data: bytes, origin: str) -> tuple[dict[str, bytes], list[str]]:
    if len(data) > MAX_ZIP_BYTES:
        raise PluginInvalid([f"{origin}: {len(data)} bytes, over the limit of {MAX_ZIP_BYTES}"])
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # An entry without a name is no file (and its is_dir() raises IndexError).
        entries = [i for i in archive.infolist() if i.filename and not i.is_dir()]
    except _DAMAGED as error:  # also an unknown zip version, a name flagged UTF-8 that is not
        raise PluginInvalid([f"{origin}: not a valid zip archive ({error})"]) from None
    problems: list[str] = []
    if len(entries) > MAX_FILES:
        raise PluginInvalid([f"{origin}: {len(entries)} entries, over the limit of {MAX_FILES}"])
    total = 0
    for info in entries:
        name = info.filename
        mode = info.external_attr >> 16
        pure = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            problems.append(f"{origin}: entry {name!r} has an absolute path")
        elif ".." in pure.parts:
            problems.append(f"{origin}: entry {name!r} climbs out of the archive ('..')")
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            problems.append(f"{origin}: entry {name!r} is not a regular file (link or device)")
        elif not name.isprintable():
            problems.append(f"{origin}: entry {name!r} has a non-printable name")
        elif not name.isascii() and not info.flag_bits & 0x800:
            # Without the UTF-8 flag, zipfile decodes names as cp437: refuse rather than guess.
            problems.append(f"{origin}: entry {name!r} has a name that is not UTF-8; rename it in ASCII")
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO and info.file_size > 1024 * 1024:
            problems.append(f"{origin}: entry {name!r} expands {info.file_size // info.compress_size}x (zip bomb?)")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"{origin}: expands to {total} bytes, over the limit of {MAX_TOTAL_BYTES}")
    if problems:
        raise PluginInvalid(problems)
    # Finder's zips carry __MACOSX/ resource forks: never plugin files.
    entries = [i for i in entries if not i.filename.startswith("__MACOSX/")]
    names = [i.filename for i in entries]
    prefix = _common_folder(names)
    files = {}
    for info in entries:
        rel = info.filename[len(prefix):]
        if rel and not any(part in ("__MACOSX",) for part in PurePosixPath(rel).parts):
            try:
                with archive.open(info) as handle:
                    content = handle.read(MAX_TOTAL_BYTES + 1)
            except _DAMAGED as error:
                # Names that differ between the directory and the entry, a bad CRC, a broken
                # deflate stream, encryption, an unknown method: a refusal, not a crash (a 500).
                raise PluginInvalid([f"{origin}: entry {info.filename!r} cannot be read ({type(error).__name__}: "
                                     f"{error}); zip the plugin's folder again"]) from None
            if len(content) > info.file_size:  # the header lied about the size
                raise PluginInvalid([f"{origin}: entry {info.filename!r} is larger than it declares"])
            files[rel] = content
    return files, []


def _common_folder(names: list[str]) -> str:
    """``plugin/`` when every entry lives under one top folder and ``plugin/main.py`` exists."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if len(tops) == 1 and all("/" in n for n in names):
        top = tops.pop() + "/"
        if top + "main.py" in names:
            return top
    return ""
