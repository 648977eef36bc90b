"""Runs' ends: their actions checked and applied to the platform, once (``applier``)."""

from plugin_runtime.applier.applier import Applier

__all__ = ["Applier"]
