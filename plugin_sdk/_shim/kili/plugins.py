"""``from kili.plugins import PluginCore`` for plugins run without the real ``kili`` package."""

from plugin_sdk.core import PluginCore

__all__ = ["PluginCore"]
