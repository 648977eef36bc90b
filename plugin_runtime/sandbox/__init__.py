"""Sandboxes that run plugin code: ``process`` (local child processes, for authors) and
``docker`` (isolated containers, for the runtime). Both speak ``plugin_sdk._wire``."""

from plugin_runtime.sandbox.base import Limits, Sandbox

__all__ = ["Limits", "Sandbox"]
