"""Label Studio as a project's platform (``plugin-runtime connect label-studio``).

Modules, one per noun: ``client`` (its REST API, both kinds of token), ``interface`` (labeling
config -> Kili's ``jsonInterface``), ``labels`` (results <-> Kili's ``jsonResponse``),
``records`` (tasks, annotations, predictions and issues in Kili's shapes), ``platform`` (the
port: what actions do there, reads), ``webhooks`` (its webhooks in), ``reconcile`` (what the
webhooks missed), ``connection`` (connect, disconnect). Nothing outside this package knows
Label Studio's field names.
"""

from plugin_runtime.platforms.label_studio.connection import LabelStudio

#: The kind the router opens connections of kind "label-studio" with.
KIND = LabelStudio()

__all__ = ["KIND", "LabelStudio"]
