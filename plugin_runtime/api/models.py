"""The API's request and response bodies, so ``/openapi.json`` documents every answer.

Response models describe the JSON the routes have always returned, key for key (the platform's
records keep Kili's camelCase names). Every response model keeps keys it does not declare
(``extra="allow"``), as the wire formats do: a field the runtime adds reaches clients at once,
and ``tests/plugin_runtime/api`` fails until it is documented here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plugin_runtime.statuses import ActionStatus, RunOutcome, RunStatus, VersionStatus
from plugin_sdk.models import AssetStatus, LabelType


# Requests --------------------------------------------------------------------------------

#: Integers reach SQLite, whose INTEGER is 64 bits (a larger one raised OverflowError: a 500), so
#: each is bounded where it enters. Versions and priorities are 32-bit, as Kili's ``Int``.
MAX_VERSION = 2**31 - 1
MAX_CURSOR = 2**63 - 1
Priority = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class Rollback(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class NewProject(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    title: str | None = None
    json_interface: dict[str, Any] | None = None
    input_type: str | None = None
    min_consensus_size: int = Field(default=1, ge=1, le=10)
    consensus_tot_coverage: int = Field(default=0, ge=0, le=100)
    review_coverage: int = Field(default=0, ge=0, le=100)


class NewAsset(BaseModel):
    id: str | None = Field(default=None, min_length=1, max_length=256)
    external_id: str | None = Field(default=None, max_length=1024)
    content: str | None = None
    json_metadata: dict[str, Any] | None = None
    priority: Priority = 0


class NewLabel(BaseModel):
    json_response: dict[str, Any]
    label_type: str = Field(default="DEFAULT", pattern="^(DEFAULT|REVIEW)$")
    author_id: str | None = None
    seconds_to_label: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    id: str | None = Field(default=None, min_length=1, max_length=256)


# Answers ---------------------------------------------------------------------------------


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


# Plugins ---------------------------------------------------------------------------------


class PluginSummary(Answer):
    name: str
    current_version: int | None = Field(description="the live version; null until one is built")
    latest_version: int
    latest_status: VersionStatus
    latest_error: str | None = Field(default=None, description=(
        "the newest version's build error when its build failed: the live version (if any) keeps running, "
        "and without one the events of its projects get failed runs with this reason"))
    projects: list[str] = Field(description="projects it is active on")
    created_at: str


class Version(Answer):
    plugin: str
    version: int
    status: VersionStatus
    digest: str = Field(description="sha256 of the kept files")
    handler: str = Field(description="the PluginCore subclass")
    subscriptions: list[str] = Field(description="event types and patterns it has hooks for")
    warnings: list[str]
    dropped: list[str] = Field(description="uploaded files not kept")
    limits: dict[str, Any] = Field(description="limits requested at upload (memory_mb, timeout_s, ...)")
    image: str | None = Field(description="its Docker image; null with the process sandbox or before the build")
    freeze: list[str] = Field(description="what its requirements resolved to")
    build_error: str | None
    created_at: str
    ready_at: str | None
    candidate: bool = Field(default=False, description="uploaded as a candidate: built without going live, to be "
                                                       "shadowed then promoted")


class VersionWithLog(Version):
    build_log: str


class PluginDetail(PluginSummary):
    versions: list[Version]


class BuildLog(Answer):
    plugin: str
    version: int
    status: VersionStatus
    build_error: str | None
    build_log: str


class Deleted(Answer):
    deleted: str = Field(description="the plugin deleted, with its versions and activations")


class Activation(Answer):
    plugin: str
    project_id: str
    active: bool
    changed: bool = Field(description="false when it already was so (the call is idempotent)")


# Connected platforms (Label Studio, ...) ---------------------------------------------------


class Connect(BaseModel):
    """``plugin-runtime connect PLATFORM``: the platform's credentials come in ``params`` and
    are never answered back."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="The platform: label-studio")
    project_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$",
                                   description="The runtime's project id (default: label-studio-N)")
    runtime_url: str | None = Field(default=None, description="Where the platform reaches the runtime "
                                                              "(default: the runtime's own URL)")
    params: dict[str, Any] = Field(description="The platform's: url, token, project")


class ConnectionInfo(Answer):
    project_id: str
    kind: str
    config: dict[str, Any] = Field(description="where and what on the platform (no credentials)")
    created_at: str
    updated_at: str
    webhook_id: Any = None
    token_kind: str | None = Field(default=None, description="legacy or personal (Label Studio)")


class ConnectionRemoved(Answer):
    project_id: str
    removed: bool
    webhook_removed: bool = Field(description="false when the platform could not be reached (detail says)")
    detail: str | None = None


class WebhookReceived(Answer):
    events: int = Field(description="events the webhook carried (0: ignored, e.g. the runtime's own edit)")
    stored: int = Field(description="of which new (a replay stores nothing)")


# Runs and logs ---------------------------------------------------------------------------


class Run(Answer):
    id: str
    event_id: str
    asset_id: str | None
    project_id: str
    plugin: str
    version: int
    status: RunStatus
    outcome: RunOutcome | None = Field(description="why it did not succeed: its sandbox status, or the runtime's")
    error: str | None
    attempts: int
    worker: str | None = Field(description="the worker that ran it last: its --name, default HOST:PID")
    duration_ms: float | None
    created_at: str
    finished_at: str | None
    rejected: int = Field(description="actions the runtime refused")
    root_id: str | None = Field(description="the event from outside whose chain this run belongs to")
    root_budget_exceeded: str | None = Field(description="why the root event's budget stopped its chain, if it did")
    metrics: dict[str, Any] = Field(description="reads answered (calls, seconds, refused) and what its actions caused")


class RunAction(Answer):
    action: dict[str, Any] = Field(description="the action, as in the README's wire formats")
    status: ActionStatus
    reason: str | None = Field(description="why it was rejected")


class RunLog(Answer):
    level: str
    message: str
    source: str = Field(description="logger, stdout, stderr or runtime")


class RootBudget(Answer):
    id: str
    caused_runs: int
    caused_events: int
    dropped_events: int
    budget_exceeded: str | None


class RunDetail(Run):
    actions: list[RunAction]
    logs: list[RunLog]
    root: RootBudget | None = Field(description="the budget of the run's root event")


class Retried(Answer):
    id: str = Field(description="the run that will run: the same one, or with live_version a new run")
    status: RunStatus
    version: int


class LogLine(Answer):
    cursor: int
    level: str
    message: str
    source: str
    run_id: str
    plugin: str
    version: int
    project_id: str
    asset_id: str | None
    event_id: str
    finished_at: str | None


class LogPage(Answer):
    lines: list[LogLine]
    cursor: int = Field(description="pass it as `after` for the next lines")


# The embedded platform (Kili's shapes) ---------------------------------------------------


class Project(Answer):
    id: str
    title: str | None
    inputType: str | None  # noqa: N815 - Kili's name
    jsonInterface: dict[str, Any]  # noqa: N815
    # Settings a recorded event's context may carry are kept as it gave them: not checked here.
    minConsensusSize: Any = Field(description="an integer, 1 by default")  # noqa: N815
    consensusTotCoverage: Any = Field(description="a percentage, 0 by default")  # noqa: N815
    reviewCoverage: Any = Field(description="a percentage, 0 by default")  # noqa: N815
    roles: Any = Field(description="a list, empty by default")


class Label(Answer):
    """A label in Kili's shape; fields a recorded label carried are kept too."""

    id: str
    labelType: LabelType  # noqa: N815
    jsonResponse: dict[str, Any]  # noqa: N815
    authorId: str | None  # noqa: N815
    secondsToLabel: float | None  # noqa: N815
    modelName: str | None  # noqa: N815
    createdAt: str  # noqa: N815
    assetId: str  # noqa: N815
    consensusMark: float | None  # noqa: N815
    honeypotMark: float | None  # noqa: N815
    inferenceMark: float | None  # noqa: N815
    # Only in an asset's labels (computed per author over the asset's labels).
    isLatestLabelForUser: bool | None = None  # noqa: N815
    isLatestDefaultLabelForUser: bool | None = None  # noqa: N815
    isLatestReviewLabelForUser: bool | None = None  # noqa: N815


class IssueComment(Answer):
    text: str


class Issue(Answer):
    id: str
    type: str
    status: str
    labelId: str | None  # noqa: N815
    objectMid: str | None  # noqa: N815
    text: str | None
    createdAt: str  # noqa: N815
    comments: list[IssueComment]


class Asset(Answer):
    id: str
    externalId: str | None  # noqa: N815
    content: str | None
    status: AssetStatus
    jsonMetadata: dict[str, Any]  # noqa: N815
    priority: int
    toBeLabeledBy: list[Any]  # noqa: N815
    isUsedForConsensus: bool  # noqa: N815
    isHoneypot: bool  # noqa: N815
    consensusMark: float | None  # noqa: N815
    honeypotMark: float | None  # noqa: N815
    inferenceMark: float | None  # noqa: N815
    labels: list[Label] = Field(description="oldest first")
    issues: list[Issue]


class LabelSubmitted(Answer):
    event_id: str = Field(description="the onSubmit or onReview event the label emitted")
    label: Label


class ProjectChanges(BaseModel):
    """Project settings to change (only those given); each change reaches plugins'
    ``on_project_updated`` as ``{key, newValue, oldValue}`` under Kili's name of the setting."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=100_000)
    instructions: str | None = Field(default=None, max_length=100_000)
    json_interface: dict[str, Any] | None = None
    input_type: str | None = Field(default=None, max_length=64)
    min_consensus_size: int | None = Field(default=None, ge=1, le=10)
    consensus_tot_coverage: int | None = Field(default=None, ge=0, le=100)
    review_coverage: int | None = Field(default=None, ge=0, le=100)
    can_skip_asset: bool | None = None
    can_navigate_between_assets: bool | None = None
    use_honey_pot: bool | None = None
    is_anonymized: bool | None = None

    def kili_names(self) -> dict[str, Any]:
        """The given settings under Kili's names (``reviewCoverage``)."""
        from pydantic.alias_generators import to_camel

        return {to_camel(name): value for name, value in self.model_dump(exclude_unset=True).items()}


class ProjectUpdated(Answer):
    event_id: str | None = Field(description="the onProjectUpdated event the change emitted; null when "
                                             "nothing changed (no event)")
    settings_updated: list[dict[str, Any]] = Field(description="what changed: {key, newValue, oldValue}")
    project: Project


# Shadows ---------------------------------------------------------------------------------


class ShadowVersion(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class Shadow(Answer):
    id: int
    plugin: str
    version: int = Field(description="the candidate version")
    project_id: str
    started_at: str
    ended_at: str | None
    end_reason: str | None = Field(description="stopped, promoted, replaced, the plugin deleted")


class ShadowsEnded(Answer):
    ended: list[Shadow]


class Promoted(Answer):
    plugin: str
    version: int = Field(description="the live version now")
    ended: list[Shadow] = Field(description="the plugin's shadows this ended")


class ShadowEvents(Answer):
    seen: int = Field(description="events of the project the candidate or the live version had a hook for")
    compared: int = Field(description="events both sides ended")
    differing: int = Field(description="compared events whose status or actions differ")
    waiting: int = Field(description="shadow runs still queued, and events the shadow has not looked at yet")
    not_run: int = Field(description="events the candidate never ran: it fell behind, or the shadow ended first")


class Latency(Answer):
    count: int
    p50: float | None
    p95: float | None
    max: float | None


class ShadowCandidate(Answer):
    ok: int = Field(description="runs that ended ok (with a hook)")
    no_hook: int = Field(description="events only the live version has a hook for")
    errors: int
    timeouts: int
    failed: dict[str, int] = Field(description="failed runs by outcome (error, timeout, oom_killed, ...)")
    latency_ms: Latency


class ShadowLive(Answer):
    latency_ms: Latency


class ShadowSide(Answer):
    run_id: str | None = Field(description="null: the live version had no run for the event (it did nothing)")
    status: str = Field(description="ok, or how the run failed")
    actions: list[dict[str, Any]]


class LiveSide(ShadowSide):
    version: int | None


class CandidateSide(ShadowSide):
    error: str | None


class ShadowDifference(Answer):
    event_id: str
    live: LiveSide
    candidate: CandidateSide
    only_live: list[dict[str, Any]] = Field(description="actions only the live version did")
    only_candidate: list[dict[str, Any]] = Field(description="actions only the candidate did")
    reordered: bool = Field(description="the same actions, in another order")


class ShadowFailure(Answer):
    event_id: str
    run_id: str
    outcome: str | None
    error: str | None
    logs: list[RunLog] = Field(description="the candidate's log lines for the event (its logger and prints)")


class ShadowReport(Shadow):
    live_version: int | None
    events: ShadowEvents
    candidate: ShadowCandidate
    live: ShadowLive
    differences: list[ShadowDifference] = Field(description="the newest, up to the number asked")
    failures: list[ShadowFailure] = Field(description="the candidate's newest failed runs")


class ShadowReports(Answer):
    shadows: list[ShadowReport] = Field(description="the newest shadow of each plugin and project, ended or not")


# Refusals each route declares --------------------------------------------------------------

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
