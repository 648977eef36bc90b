"""Importing a plugin's ``main.py`` and finding its handler class, with errors that say where
and how to fix. Runs only where plugin code may run: the plugin process, or an author's tests."""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
import types
from pathlib import Path

from plugin_sdk.core import is_plugin_class
from plugin_sdk.errors import PluginDefinitionError

SHIM_DIR = Path(__file__).resolve().parent / "_shim"


class PluginLoadError(PluginDefinitionError):
    """``main.py`` could not be imported or defines no usable handler."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file, self.line = file, line


def main_file(path: str | Path) -> Path:
    """``path`` itself if it is a ``.py`` file, else its ``main.py``."""
    path = Path(path)
    main = path if path.is_file() else path / "main.py"
    if not main.is_file():
        where = "" if main.is_absolute() else f" (relative to the current directory, {Path.cwd()})"
        raise PluginLoadError(f"{main}: no such file{where}; a plugin is a main.py or a folder holding one")
    return main


def lists_kili(folder: Path) -> bool:
    """Whether the plugin's ``requirements.txt`` asks for the real ``kili`` package."""
    requirements = folder / "requirements.txt"
    if not requirements.is_file():
        return False
    for line in requirements.read_text(encoding="utf-8", errors="replace").splitlines():
        name = re.split(r"[\s<>=!~;\[@#]", line.strip(), maxsplit=1)[0].lower()
        if name == "kili":
            return True
    return False


def provide_kili_shim(first: bool = False) -> None:
    """Make ``from kili.plugins import PluginCore`` resolve to this SDK. ``first`` (plugin
    processes whose plugin does not list ``kili``) puts the shim before any installed ``kili``,
    as in the plugin's image; otherwise an installed real package wins."""
    if str(SHIM_DIR) in sys.path:
        return
    if first:
        sys.path.insert(0, str(SHIM_DIR))
    elif importlib.util.find_spec("kili") is None:
        sys.path.append(str(SHIM_DIR))


def load_handler(path: str | Path, module_name: str = "main", sandboxed: bool = False) -> tuple[type, list[str]]:
    """Import the plugin at ``path`` and return its handler class and warnings. ``sandboxed``:
    this is the plugin's own process, where ``kili`` is the real package only when the plugin
    lists it in its requirements (as in its image).

    ``main.py`` is imported as the ``main`` module of a package whose folder is the plugin's,
    as Kili's hosted runtime does: ``from .sub_folder.helpers import fn`` works (Kili's own
    test fixture), and so do absolute imports of the plugin's files (``import helpers``,
    ``from sub_folder.helpers import fn``), the folder being on ``sys.path``."""
    main = main_file(path).resolve()
    folder = str(main.parent)
    provide_kili_shim(first=sandboxed and not lists_kili(main.parent))
    _forget_other_plugins(folder)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    package = _plugin_package(module_name, folder)
    spec = importlib.util.spec_from_file_location(f"{package}.main", main)
    assert spec is not None and spec.loader is not None  # a .py file always has a spec
    module = importlib.util.module_from_spec(spec)
    # Also under its own name: a helper importing `main` (or the test's module name) gets this
    # module, not a second copy of the plugin.
    sys.modules[spec.name] = sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        _forget(module_name, package)
        raise _relative(_syntax_error(error, main), folder) from None
    except BaseException as error:  # whatever the module does at import is the plugin's failure
        _forget(module_name, package)
        raise _relative(_import_error(error, main), folder) from None
    return find_handler(module, main)


def _plugin_package(module_name: str, folder: str) -> str:
    """A package whose path is the plugin's folder (namespace-like: the folder need not hold an
    ``__init__.py``, Kili's fixture has none), registered under a name of its own."""
    package = f"_plugin_{module_name}"
    module = types.ModuleType(package, "the plugin's folder, as a package (plugin_sdk._loader)")
    module.__path__ = [folder]
    module.__package__ = package
    sys.modules[package] = module
    return package


#: Folders of the plugins loaded in this interpreter (several in one test session).
_FOLDERS: set[str] = set()


def _forget_other_plugins(folder: str) -> None:
    """Drop the modules another plugin's folder provided (its ``helpers``), so this plugin's
    absolute ``import helpers`` finds its own file, not the one a previous test loaded."""
    others = tuple(f.rstrip("/") + "/" for f in _FOLDERS if f != folder)
    _FOLDERS.add(folder)
    if not others:
        return
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
        if isinstance(where, str) and where.startswith(others) and not name.startswith("_plugin_"):
            del sys.modules[name]


def _forget(module_name: str, package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")] + [module_name]:
        sys.modules.pop(name, None)


def find_handler(module: object, main: Path) -> tuple[type, list[str]]:
    """``PluginHandler`` as Kili requires; a single PluginCore subclass under another name is
    accepted with a warning."""
    handler = getattr(module, "PluginHandler", None)
    if handler is not None:
        if not is_plugin_class(handler):
            raise PluginLoadError(
                f"{main.name}: PluginHandler must be a class deriving from PluginCore: write "
                "`class PluginHandler(PluginCore):` after `from plugin_sdk import PluginCore` "
                "(or `from kili.plugins import PluginCore`)",
                str(main),
            )
        return handler, []
    own = [
        obj for obj in vars(module).values()
        if is_plugin_class(obj) and getattr(obj, "__module__", None) == getattr(module, "__name__", None)
    ]
    if len(own) == 1:
        name = own[0].__name__
        return own[0], [
            f"{main.name}: the handler class is {name}, not PluginHandler; it is used, but Kili "
            f"requires the name PluginHandler: rename `class {name}` to `class PluginHandler`"
        ]
    if own:
        names = ", ".join(sorted(c.__name__ for c in own))
        raise PluginLoadError(
            f"{main.name}: several PluginCore subclasses ({names}) and no PluginHandler: name the "
            "one the runtime should use `PluginHandler`",
            str(main),
        )
    raise PluginLoadError(
        f"{main.name}: no PluginHandler class: define `class PluginHandler(PluginCore):` with at "
        "least one hook (on_submit, on_review, ...)",
        str(main),
    )


def _relative(error: PluginLoadError, folder: str) -> PluginLoadError:
    prefix = folder.rstrip("/") + "/"
    file = error.file[len(prefix):] if error.file and error.file.startswith(prefix) else error.file
    return PluginLoadError(str(error).replace(prefix, ""), file, error.line)


def _syntax_error(error: SyntaxError, main: Path) -> PluginLoadError:
    file = error.filename or str(main)
    where = f"{file}:{error.lineno}" + (f":{error.offset}" if error.offset else "")
    text = (error.text or "").rstrip("\n")
    caret = ""
    if text and error.offset:
        caret = "\n    " + text.strip() + "\n    " + " " * max(error.offset - 1 - (len(text) - len(text.lstrip())), 0) + "^"
    return PluginLoadError(
        f"{where}: {type(error).__name__}: {error.msg}{caret}\nFix the syntax at that line; "
        f"`python -m py_compile {Path(file).name}` checks it locally.",
        file,
        error.lineno,
    )


def _import_error(error: BaseException, main: Path) -> PluginLoadError:
    frames = traceback.extract_tb(error.__traceback__)
    folder = str(main.parent)
    own = [f for f in frames if f.filename.startswith(folder)]
    frame = own[-1] if own else None
    where = f"{frame.filename}:{frame.lineno}: " if frame else f"{main}: "
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.startswith("_plugin_"):
        # A relative import of the plugin's own file: the package's name means nothing to the author.
        missing = "/".join(error.name.split(".")[1:]) or "?"
        message = (f"{where}ModuleNotFoundError: the plugin's own module '{missing}' (a relative import) is not in "
                   f"its folder. Fix: add {missing}.py (or the folder {missing}/) next to main.py; give the plugin's "
                   "folder, not its main.py alone, to upload or dry-run it")
    elif isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".")[0]
        fix = f"Fix: add the package that provides '{top}' to the plugin's requirements.txt"
        message = f"{where}ModuleNotFoundError: No module named '{error.name}'. {fix}"
    else:
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        message = f"{where}{type(error).__name__} while importing the plugin: {error}\n{tb}"
    return PluginLoadError(message, frame.filename if frame else str(main), frame.lineno if frame else None)
