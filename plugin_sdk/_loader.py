"""Importing a plugin's ``main.py`` and finding its handler class, with errors that say where
and how to fix. Runs only where plugin code may run: the plugin process, or an author's tests."""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
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
    lists it in its requirements (as in its image)."""
    main = main_file(path).resolve()
    folder = str(main.parent)
    provide_kili_shim(first=sandboxed and not lists_kili(main.parent))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, main)
    assert spec is not None and spec.loader is not None  # a .py file always has a spec
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(module_name, None)
        raise _relative(_syntax_error(error, main), folder) from None
    except BaseException as error:  # whatever the module does at import is the plugin's failure
        sys.modules.pop(module_name, None)
        raise _relative(_import_error(error, main), folder) from None
    return find_handler(module, main)


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
    if isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".")[0]
        fix = f"Fix: add the package that provides '{top}' to the plugin's requirements.txt"
        message = f"{where}ModuleNotFoundError: No module named '{error.name}'. {fix}"
    else:
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        message = f"{where}{type(error).__name__} while importing the plugin: {error}\n{tb}"
    return PluginLoadError(message, frame.filename if frame else str(main), frame.lineno if frame else None)
