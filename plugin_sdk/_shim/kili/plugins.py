"""``from kili.plugins import PluginCore`` for plugins run without the real ``kili`` package."""

from typing import Any

from plugin_sdk.core import PluginCore

__all__ = ["PluginCore"]


def __getattr__(name: str) -> Any:
    if name == "on_kili_event":
        raise ImportError(
            "on_kili_event needs Kili's own packages (kili, kili-events): add `kili` to the "
            "plugin's requirements.txt"
        )
    raise AttributeError(f"module 'kili.plugins' has no attribute {name!r}")
