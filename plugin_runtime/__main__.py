"""``python -m plugin_runtime``: the same as the ``plugin-runtime`` command."""

from plugin_runtime.cli import main

main()
