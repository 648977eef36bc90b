"""``from kili.client import Kili`` for type hints in plugins run without the real package."""

from typing import Any


class Kili:
    """Only a name for type hints (``kili: Kili``): a plugin receives its client as
    ``self.kili`` and cannot create one (no network, no credentials in the sandbox)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "Kili(...) cannot be created inside a plugin: use self.kili, the client the runtime "
            "gives the plugin (its writes are recorded as actions, its reads answered for the "
            "plugin's project)"
        )
