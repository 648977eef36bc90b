"""Errors of the runtime: infrastructure failures and refused input, under one base class.

A plugin misbehaving is never an exception here: it is a status in a RunResult.

A refused request is raised as one of four *kinds* (``NotFound``, ``Conflict``, ``Refused``,
``Unauthorized``, plus ``Busy`` for a full queue); the HTTP API answers each kind with its status
(``plugin_runtime/api/app.py``), whichever module raised it. The modules' own errors
(``RegistryError``, ``PlatformError``, ...) say *where*; their subclasses below say which kind.
"""

from __future__ import annotations


class PluginRuntimeError(Exception):
    """Base class of every error the runtime raises."""


class SettingsError(PluginRuntimeError):
    """The runtime cannot start with a setting or a file of its data directory as it is; the
    message says what to change."""


# Kinds of refusal ------------------------------------------------------------------------


class NotFound(PluginRuntimeError):
    """What the request names does not exist (HTTP 404)."""


class Conflict(PluginRuntimeError):
    """The request contradicts what is stored: a duplicate, a wrong state (HTTP 409)."""


class Refused(PluginRuntimeError):
    """The request is wrong as given, whatever is stored: a bad name, a missing field (HTTP 400)."""


class Unauthorized(PluginRuntimeError):
    """The request is not signed or not authenticated as it must be (HTTP 401)."""


class Forbidden(PluginRuntimeError):
    """Authenticated, but refused for how it came: a cross-site request carrying the
    dashboard's session cookie (HTTP 403)."""


class LoginRequired(Unauthorized):
    """A dashboard page asked for without a session: answered by the login page."""


class Busy(PluginRuntimeError):
    """Too much work is queued: nothing was stored, send again after ``retry_after_s`` (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# Refused input ---------------------------------------------------------------------------


class PluginInvalid(PluginRuntimeError):
    """An uploaded or dry-run plugin was refused; ``problems`` says each reason and its fix."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        super().__init__("the plugin was refused:\n" + "\n".join(f"- {p}" for p in problems))


class EventsFileError(PluginRuntimeError):
    """An events file that cannot be read at all (missing, not text)."""


class ScaffoldError(PluginRuntimeError):
    """``init`` refused: a bad name, or a folder that already holds something."""


class SignatureError(Unauthorized, ValueError):
    """The request is not signed by a known secret, or not now; the message says which.
    (Also a ValueError, as it was before the kinds.)"""


# The registry (plugins, versions, activations) --------------------------------------------


class RegistryError(PluginRuntimeError):
    """A registry request that cannot be honoured; raised as one of the kinds below."""


class RegistryNotFound(RegistryError, NotFound):
    """No such plugin, or no such version of it."""


class RegistryConflict(RegistryError, Conflict):
    """The plugin already exists, or the version is in a state that refuses the request."""


class RegistryRefused(RegistryError, Refused):
    """An invalid plugin name, a missing project id."""


# The labeling platform -------------------------------------------------------------------


class PlatformError(PluginRuntimeError, ValueError):
    """A request to the labeling platform that cannot be honoured (unknown asset, ...); raised
    as one of the kinds below. (Also a ValueError, as it was before the kinds.)"""


class PlatformNotFound(PlatformError, NotFound):
    """No such project, asset or label."""


class PlatformConflict(PlatformError, Conflict):
    """It exists already, or belongs to another project or asset."""


class PlatformRefused(PlatformError, Refused):
    """A request the platform never honours (a label type that is not submitted, a read it
    does not answer)."""


class ConnectionRefused(PlatformRefused):
    """Connecting a project to a platform failed (bad URL, wrong token, unknown project, a
    webhook the platform will not call); the message says what to fix. Nothing was kept."""


class ConnectionNotFound(PlatformNotFound):
    """No project is connected under that id."""


class PlatformUnavailable(PlatformError):
    """A connected platform did not answer or failed (down, a timeout, a 5xx, its token
    refused): not a refusal of what was asked, so the outbox sends it again later."""


class PlatformTokenRefused(PlatformUnavailable):
    """A connected platform refused the runtime's token (401/403)."""


# Infrastructure --------------------------------------------------------------------------


class SandboxUnavailable(PluginRuntimeError):
    """The sandbox could not run anything (no Python, no Docker engine, ...)."""


class StoreUnavailable(Busy):
    """The shared database (PostgreSQL) does not answer: nothing was stored; the process keeps
    reconnecting (HTTP 503 with ``Retry-After``: send again)."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message, retry_after_s)


class SchemaOutdated(PluginRuntimeError):
    """The database's schema is older or newer than this runtime's: the message says which
    command brings it up to date."""


class ReadLimitExceeded(PluginRuntimeError):
    """A plugin's read refused because its event's reads reached a limit. It is the answer to
    the plugin's ``call`` (the SDK raises ``plugin_sdk.ReadLimitExceeded``), never raised out of
    a run."""


class BuildFailed(PluginRuntimeError):
    """A plugin's image could not be built; ``error`` is what the user must fix, ``log`` all."""

    def __init__(self, error: str, log: str) -> None:
        super().__init__(error)
        self.error, self.log = error, log


class ClientError(PluginRuntimeError):
    """The CLI's request to the service was refused (4xx/5xx: ``status``) or could not be sent."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
