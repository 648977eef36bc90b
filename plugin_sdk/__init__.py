"""The plugin SDK: what a plugin author imports.

    from plugin_sdk import PluginCore

    class PluginHandler(PluginCore):
        def on_submit(self, label, asset_id):
            ...

``PluginCore`` and the errors are plain Python; the typed models and actions (pydantic) are
imported on first use, so a plugin that does not use them starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugin_sdk.core import PluginCore
from plugin_sdk.errors import (
    ContextUnavailable,
    PluginDefinitionError,
    PluginError,
    ProjectScopeError,
    ReadLimitExceeded,
    UnresolvedAssetError,
    UnsupportedMethodError,
)

__version__ = "0.1.0"

_LAZY = {
    "Label": "plugin_sdk.models",
    "Asset": "plugin_sdk.models",
    "Project": "plugin_sdk.models",
    "Event": "plugin_sdk.models",
    "EventContext": "plugin_sdk.models",
    "Action": "plugin_sdk.actions",
    "CreateIssue": "plugin_sdk.actions",
    "UpdateAsset": "plugin_sdk.actions",
    "AddMetadata": "plugin_sdk.actions",
    "SetMetadata": "plugin_sdk.actions",
    "UpdateIssueStatus": "plugin_sdk.actions",
    "CreateQuestion": "plugin_sdk.actions",
    "SendBackToQueue": "plugin_sdk.actions",
    "AddToReview": "plugin_sdk.actions",
    "AppendLabel": "plugin_sdk.actions",
    "RunResult": "plugin_sdk.results",
    "LogRecord": "plugin_sdk.results",
}

__all__ = [
    "PluginCore",
    "PluginError",
    "PluginDefinitionError",
    "ProjectScopeError",
    "ContextUnavailable",
    "ReadLimitExceeded",
    "UnresolvedAssetError",
    "UnsupportedMethodError",
    *_LAZY,
]

if TYPE_CHECKING:
    from plugin_sdk.actions import (  # noqa: F401
        Action, AddMetadata, AddToReview, AppendLabel, CreateIssue, CreateQuestion, SendBackToQueue, SetMetadata,
        UpdateAsset, UpdateIssueStatus,
    )
    from plugin_sdk.models import Asset, Event, EventContext, Label, Project  # noqa: F401
    from plugin_sdk.results import LogRecord, RunResult  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'plugin_sdk' has no attribute {name!r}")
