"""What the dispatcher needs from a labeling platform."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

STATUS_AFTER = {
    "send_back_to_queue": "ONGOING",
    "add_to_review": "TO_REVIEW",
}
#: The status an asset takes when a label of this type is added.
STATUS_FOR_LABEL = {"DEFAULT": "LABELED", "REVIEW": "REVIEWED"}
#: The event a label of this type emits when it is submitted.
EVENT_FOR_LABEL = {"DEFAULT": "onSubmit", "REVIEW": "onReview"}


@dataclass(frozen=True)
class ActionCheck:
    """An action with the reason it is refused (``None``: it may be applied)."""

    action: dict[str, Any]
    reason: str | None = None


class Platform(Protocol):
    def ingest(self, db: sqlite3.Connection, event: dict[str, Any]) -> None:
        """Make what a received event refers to known (project, asset, label), from its
        context when it has one, without emitting any event."""
        ...

    def check(self, db: sqlite3.Connection, event: dict[str, Any], actions: list[dict[str, Any]]) -> list[ActionCheck]:
        """Which actions of a run for ``event`` may be applied, and why not the others."""
        ...

    def apply(self, db: sqlite3.Connection, run_id: str, actions: list[dict[str, Any]],
              at: str | None = None) -> list[dict[str, Any]]:
        """Apply checked actions in order, inside the caller's transaction, as of ``at`` (the
        time of the event the run answers). Returns the events the changes emit (without id:
        the dispatcher names and records them)."""
        ...

    def context(self, db: sqlite3.Connection, event: dict[str, Any]) -> dict[str, Any]:
        """The ``context`` recorded with an event the platform emits (project, asset)."""
        ...

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """Answer a plugin's read (``labels``, ``assets``, ``issues``, ``projects`` and the
        ``count_`` of each) for its project, filtered and paged (``first``, ``skip``) at the
        source; TimeoutError past ``deadline`` (``time.perf_counter``)."""
        ...
