"""The outcome of running one event through a plugin: the line ``dry-run`` prints per event,
and what the test harness returns."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from plugin_sdk._enums import StrEnum
from plugin_sdk.actions import Action


class Status(StrEnum):
    """How a hook ended: ``ok`` is success; every other status is a failed run whose actions
    are not applied. Members compare equal to their strings (``result.status == "ok"``)."""

    OK = "ok"
    #: An exception, ``sys.exit``, a crash, a load failure or an invalid event line.
    ERROR = "error"
    TIMEOUT = "timeout"
    #: Killed by the sandbox's memory limit (Docker sandbox).
    OOM_KILLED = "oom_killed"
    #: Too many logs, actions or bytes.
    OUTPUT_LIMIT = "output_limit"
    #: Actions that fail validation, or a message the host refuses.
    INVALID_OUTPUT = "invalid_output"


class LogRecord(BaseModel):
    """One line of a run's logs: a ``self.logger`` record or a printed line."""

    model_config = ConfigDict(extra="allow")

    level: str
    message: str
    source: Literal["logger", "stdout", "stderr", "runtime"] = "logger"


class RunResult(BaseModel):
    """What one event did: ``status``, the ``actions`` to apply (empty unless ``ok``),
    ``logs``, the ``error`` (a traceback or a reason) and ``duration_ms``."""

    model_config = ConfigDict(extra="allow")

    event_id: Optional[str]
    status: Status
    actions: list[Action] = Field(default_factory=list)
    logs: list[LogRecord] = Field(default_factory=list)
    error: Optional[str] = None
    duration_ms: float = 0.0
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def actions_of(self, kind: str) -> list[Any]:
        """The actions of one ``type`` (``"create_issue"``, ``"update_asset"``, ...)."""
        return [a for a in self.actions if a.type == kind]

    def wire(self) -> dict[str, Any]:
        """The JSON object ``dry-run`` prints for this event."""
        from plugin_sdk.actions import dump_actions

        data = self.model_dump(mode="json", exclude={"actions"})
        data["actions"] = dump_actions(self.actions)
        data["duration_ms"] = round(self.duration_ms, 3)
        return {
            "event_id": data.pop("event_id"), "status": data.pop("status"),
            "actions": data.pop("actions"), "logs": data.pop("logs"),
            "error": data.pop("error"), "duration_ms": data.pop("duration_ms"), **data,
        }


def result_from_outcome(
    event_id: Optional[str],
    outcome: dict[str, Any],
    logs: list[dict[str, Any]],
    duration_ms: float,
) -> RunResult:
    """Build the typed result of a hook's outcome, validating the actions it produced: any
    invalid action makes the whole run ``invalid_output`` (none of its actions applied)."""
    from pydantic import ValidationError

    from plugin_sdk.actions import ACTIONS, merge_identical

    status = Status.OK if outcome.get("status") == Status.OK else Status.ERROR
    error = outcome.get("error")
    if error is not None and not isinstance(error, str):
        error = f"the hook failed; its error is not text: {str(error)[:2000]}"
    actions: list[Any] = []
    if status == Status.OK:
        try:
            actions = ACTIONS.validate_python(outcome.get("actions") or [])
        except ValidationError as invalid:
            status, error = Status.INVALID_OUTPUT, describe_invalid_actions(invalid)
    merged = merge_identical(actions)
    if len(merged) < len(actions):
        logs = [*logs, {"level": "INFO", "source": "runtime", "message":
                        f"{len(actions) - len(merged)} identical action(s) merged: each distinct action applies once"}]
        actions = merged
    return RunResult(
        event_id=event_id, status=status, actions=actions, logs=[LogRecord.model_validate(log) for log in logs],
        error=error,
        duration_ms=duration_ms, skipped=bool(outcome.get("skipped")),
    )


def describe_invalid_actions(invalid: Any, limit: int = 5) -> str:
    """A pydantic error over a list of actions, as a few readable lines."""
    lines = []
    for item in invalid.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"])
        lines.append(f"actions.{where}: {item['msg']}")
    more = invalid.error_count() - limit
    if more > 0:
        lines.append(f"... and {more} more")
    return "the plugin returned invalid actions:\n" + "\n".join(lines)
