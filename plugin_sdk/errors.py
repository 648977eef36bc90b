"""Errors a plugin author can meet, all under one base class."""

from __future__ import annotations


class PluginError(Exception):
    """Base class of every error raised by ``plugin_sdk``."""


class PluginDefinitionError(PluginError):
    """The plugin's ``main.py`` does not define a usable handler (no class, no hook, ...)."""


class ProjectScopeError(PluginError, PermissionError):
    """A plugin asked to read or write another project than the one its event came from."""


class ContextUnavailable(PluginError, LookupError):
    """A read the event's recorded context cannot answer (dry-run without live reads)."""


class UnresolvedAssetError(PluginError, LookupError):
    """An external id (or asset id) that the event does not let the handle resolve."""


class UnsupportedMethodError(PluginError, AttributeError):
    """A Kili client method or argument that a sandboxed plugin cannot use."""


class ReadLimitExceeded(PluginError):
    """The runtime refused a read: this event's reads reached their limit of calls or of the
    server's time (the message names which). Read less per event: filter (``asset_id``,
    ``first``, ...) or read once and keep the result."""
