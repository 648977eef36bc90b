"""Labeling platforms the runtime applies actions to: ``embedded`` (SQLite, the default);
real platforms get their own adapter implementing ``base.Platform``."""

from plugin_runtime.platforms.base import Keyed, Mirror, Platform

__all__ = ["Keyed", "Mirror", "Platform"]
