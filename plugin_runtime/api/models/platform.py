"""The embedded platform's records, in Kili's shapes (camelCase keys), and the requests that
create or change them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plugin_runtime.api.models.base import Answer, Priority
from plugin_sdk.models import AssetStatus, LabelType


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
