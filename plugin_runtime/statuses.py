"""The statuses and outcomes the runtime stores and shows, named once.

Each member is its string (``RunStatus.DEAD == "dead"``): the database, the HTTP API's JSON and
the CLI hold the same strings as before these enums existed. What a hook's sandbox run gave is
``plugin_sdk.results.Status``; a failed run's ``outcome`` is that status, or what the runtime
decided (``RunOutcome``).
"""

from __future__ import annotations

from plugin_sdk._enums import StrEnum


class RunStatus(StrEnum):
    """Where a run is: queued, running, or how it ended."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: The plugin misbehaved (its ``outcome`` says how); ``runs retry`` runs it again.
    FAILED = "failed"
    #: Infrastructure kept failing past the retries: the dead-letter list.
    DEAD = "dead"
    #: Never ran (``outcome`` says why, e.g. ``queue_full``); ``runs retry`` runs it.
    SKIPPED = "skipped"


#: Runs that wait for a lane or hold one: what counts as pending.
QUEUED = (RunStatus.PENDING, RunStatus.RUNNING)
#: A run in one of these has ended: finishing it again must apply nothing twice.
ENDED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.DEAD)
#: What ``runs retry`` accepts.
RETRYABLE = (RunStatus.FAILED, RunStatus.DEAD, RunStatus.SKIPPED)


class RunOutcome(StrEnum):
    """Why a run did not succeed: its sandbox status (``plugin_sdk.results.Status`` but ``ok``),
    or what the runtime decided."""

    ERROR = "error"
    TIMEOUT = "timeout"
    OOM_KILLED = "oom_killed"
    OUTPUT_LIMIT = "output_limit"
    INVALID_OUTPUT = "invalid_output"
    #: Docker down, a container that would not start, or any unexpected failure: retried, then dead.
    INFRASTRUCTURE = "infrastructure"
    #: Its version's build failed, or the plugin was deleted.
    BUILD_FAILED = "build_failed"
    #: A caused event found the project's or the runtime's queue full.
    QUEUE_FULL = "queue_full"

    @classmethod
    def of(cls, status: str) -> RunOutcome | None:
        """The outcome a run's sandbox status gives: none for ``ok``."""
        return None if status == "ok" else cls(str(status))


class VersionStatus(StrEnum):
    """A plugin version: deploying -> active | failed; an active one becomes inactive when
    another version goes live, and active again on rollback."""

    DEPLOYING = "deploying"
    ACTIVE = "active"
    INACTIVE = "inactive"
    FAILED = "failed"


#: Versions that were built and can be rolled back to.
BUILT = (VersionStatus.ACTIVE, VersionStatus.INACTIVE)


class ActionStatus(StrEnum):
    """What the runtime did with one action of a run."""

    APPLIED = "applied"
    #: Refused by a check (another project's asset, a size limit); its reason is stored with it.
    REJECTED = "rejected"


class OutboxStatus(StrEnum):
    """Where one action of a run is on its way to the platform (the applier's outbox)."""

    PENDING = "pending"
    APPLIED = "applied"
    #: Refused by the applier's policy before it was sent; its reason is stored with it.
    REJECTED = "rejected"
    #: The platform refused it, or kept failing past the retries; its reason is stored with it.
    FAILED = "failed"


def placeholders(values: tuple[StrEnum, ...]) -> str:
    """``(?, ?)`` for an SQL ``IN`` over ``values``, bound as parameters."""
    return "(" + ", ".join("?" * len(values)) + ")"
