"""The plugin runtime: runs plugins written with ``plugin_sdk`` on labeling events."""

__version__ = "0.1.0"
