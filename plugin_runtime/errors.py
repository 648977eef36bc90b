"""Errors of the runtime: infrastructure failures and refused input, under one base class.

A plugin misbehaving is never an exception here: it is a status in a RunResult.
"""

from __future__ import annotations


class PluginRuntimeError(Exception):
    """Base class of every error the runtime raises."""


class PluginInvalid(PluginRuntimeError):
    """An uploaded or dry-run plugin was refused; ``problems`` says each reason and its fix."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        super().__init__("the plugin was refused:\n" + "\n".join(f"- {p}" for p in problems))


class EventsFileError(PluginRuntimeError):
    """An events file that cannot be read at all (missing, not text)."""


class SandboxUnavailable(PluginRuntimeError):
    """The sandbox could not run anything (no Python, no Docker engine, ...)."""


class ReadLimitExceeded(PluginRuntimeError):
    """A plugin's read refused because its event's reads reached a limit. It is the answer to
    the plugin's ``call`` (the SDK raises ``plugin_sdk.ReadLimitExceeded``), never raised out of
    a run."""


class BuildFailed(PluginRuntimeError):
    """A plugin's image could not be built; ``error`` is what the user must fix, ``log`` all."""

    def __init__(self, error: str, log: str) -> None:
        super().__init__(error)
        self.error, self.log = error, log
