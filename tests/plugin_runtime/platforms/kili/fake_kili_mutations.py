"""The fake Kili's mutations (see ``fake_kili``): what each changes in its state."""

from __future__ import annotations

from typing import Any


class Mutations:
    def mutation_fields(self) -> dict[str, Any]:
        return {}
