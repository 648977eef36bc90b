"""The platform port: what the applier needs from a labeling platform.

It takes typed actions (``plugin_sdk.actions``), each with an idempotency key, and no
database connection: a platform applies an action whose key it has already applied as a
no-op, so the applier may send an action again after a crash or a timeout. A second platform
is a new module here implementing ``Platform``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from plugin_runtime.applier.policy import Facts
from plugin_sdk.actions import Action

STATUS_AFTER = {
    "send_back_to_queue": "ONGOING",
    "add_to_review": "TO_REVIEW",
}
#: The status an asset takes when a label of this type is added.
STATUS_FOR_LABEL = {"DEFAULT": "LABELED", "REVIEW": "REVIEWED"}
#: The event a label of this type emits when it is submitted.
EVENT_FOR_LABEL = {"DEFAULT": "onSubmit", "REVIEW": "onReview"}

#: (idempotency key, action)
Keyed = tuple[str, Action]


class Platform(Protocol):
    #: True when the platform's changes commit in the runtime's own store transaction (the
    #: embedded platform): a run's actions are applied as it finishes. Otherwise they wait in
    #: the outbox until the run's transaction commits, and are sent, and retried, from there.
    shares_store: bool

    def facts(self, asset_ids: Collection[str], label_ids: Collection[str]) -> Facts:
        """What the applier's policy needs to know of these records (which exist, where)."""
        ...

    def apply(self, actions: Sequence[Keyed], at: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Apply actions in order, each once by its key, as of ``at`` (the time of the event
        the run answers). Returns the events the changes emit (without id: the runtime names
        and records them); a platform that sends its events as webhooks returns none."""
        ...

    def read(self, project_id: str, method: str, query: dict[str, Any], deadline: float | None = None) -> Any:
        """Answer a plugin's read (``labels``, ``assets``, ``issues``, ``projects`` and the
        ``count_`` of each) for its project, filtered and paged (``first``, ``skip``) at the
        source; TimeoutError past ``deadline`` (``time.perf_counter``)."""
        ...


@runtime_checkable
class Mirror(Protocol):
    """A platform that keeps its own copy of what received events say (the embedded one)."""

    def mirror(self, event: dict[str, Any]) -> None:
        """Make what a received event refers to known (project, asset, label), from its
        context when it has one, without emitting any event; in the intake's transaction."""
        ...

    def snapshot(self, event: dict[str, Any]) -> dict[str, Any]:
        """The ``context`` recorded with an event the platform emits (project, asset)."""
        ...
