"""Stand-in for the ``kili`` package inside plugin processes, when the real one is absent.

Only ``kili.plugins`` exists here: enough for plugins written for Kili's hosted runtime to
import ``PluginCore`` without paying for (or needing) the real client.
"""
