"""What every answer shares: the base model that keeps undeclared keys, the refusal body and the
statuses each route declares, the bounds on integers; and the service's own answers (health, events)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Integers reach SQLite, whose INTEGER is 64 bits (a larger one raised OverflowError: a 500), so
#: each is bounded where it enters. Versions and priorities are 32-bit, as Kili's ``Int``.
MAX_VERSION = 2**31 - 1
MAX_CURSOR = 2**63 - 1
Priority = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class Answer(BaseModel):
    """Base of the response models: keys not declared are kept, not dropped."""

    model_config = ConfigDict(extra="allow")


class Problem(Answer):
    """Every refusal: 4xx with what is wrong and, where there is one, what to do."""

    detail: str


class Health(Answer):
    status: Literal["ok"]
    pending_runs: int = Field(description="runs pending or running")


class EventAccepted(Answer):
    id: str = Field(description="the event's id, stored before this answer")


class EventDuplicate(Answer):
    id: str
    duplicate: Literal[True] = Field(description="an event of this id was already stored; not processed again")


class EventRuns(Answer):
    id: str
    runs: int = Field(description="runs of the event and of the events their actions caused")
    pending: int = Field(description="of those, pending or running: 0 once the event's effects are all done")


_MEANING = {
    400: "refused as given (detail says why)",
    401: "missing or wrong credentials",
    404: "what the path names does not exist",
    409: "conflicts with what is stored (a duplicate, a wrong state)",
    413: "body over the size limit",
    422: "invalid request (detail says why)",
    429: "queue full; retry after Retry-After seconds",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each status with the Problem body."""
    return {status: {"model": Problem, "description": _MEANING[status]} for status in statuses}
