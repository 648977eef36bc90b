"""Kili as a project's platform (``plugin-runtime connect kili``), through Kili's official
client (the optional ``kili`` extra), imported only when a command or a connected project
asks for Kili.

Modules, one per noun: ``client`` (opening the official client), ``records`` (labels as
recorded events: ``events record --from kili``), ``connection`` (connect, disconnect: Kili's
webhook), ``webhooks`` (its webhooks in), ``actions`` (what actions do there), ``reads``
(plugins' reads, live), ``platform`` (the port). Nothing outside this package knows Kili's
field names.
"""

from plugin_runtime.platforms.kili.connection import Kili

#: The kind the router opens connections of kind "kili" with.
KIND = Kili()

__all__ = ["KIND", "Kili"]
