"""``StrEnum`` for Python 3.10 (``enum.StrEnum`` arrived in 3.11)."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """An enum whose members are their string value everywhere a string goes: comparisons,
    dict keys, JSON, SQL parameters, ``str()`` and f-strings (a plain ``(str, Enum)`` formats
    as ``Class.MEMBER`` from Python 3.11 on)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
