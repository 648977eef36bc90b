"""Actions: what a plugin asks the platform to do, validated by the runtime before it applies
them. The wire format is a JSON object with a ``type`` (see the README).

Return them from a hook (``return [CreateIssue(...)]``) or let ``self.kili`` record them; both
give the same list.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from plugin_sdk import _metadata
from plugin_sdk.models import LabelType

_Id = Annotated[str, Field(min_length=1, max_length=256)]


class _Action(BaseModel):
    # Unknown fields are dropped: nothing the runtime does not understand reaches the platform.
    model_config = ConfigDict(extra="ignore", frozen=True)

    asset_id: _Id


class CreateIssue(_Action):
    """Open an issue on a label, optionally pinned to one of its objects (``object_mid``)."""

    type: Literal["create_issue"] = "create_issue"
    label_id: _Id
    text: Optional[str] = Field(default=None, max_length=10_000)
    object_mid: Optional[str] = Field(default=None, max_length=256)


def _metadata_object(cls: type, value: Any) -> Any:
    # A dict, a JSON string or the text of a Python dict (Kili's own recipes write
    # str(dict)); read as the host reads plugin output, so nesting 100,000 deep or NaN is
    # refused here, not a crash later.
    if not isinstance(value, str):
        return value
    parsed, reason = _metadata.parse(value)
    if parsed is None:
        raise ValueError(f"json_metadata is not an object: {reason}")
    return parsed


class UpdateAsset(_Action):
    """Change asset properties. ``json_metadata`` *replaces* the asset's metadata (as Kili)."""

    type: Literal["update_asset"] = "update_asset"
    json_metadata: Optional[dict[str, Any]] = None
    #: Kili's priority is a GraphQL ``Int``: signed 32 bits.
    priority: Optional[int] = Field(default=None, ge=-(2**31), le=2**31 - 1)
    to_be_labeled_by: Optional[list[str]] = None
    is_used_for_consensus: Optional[bool] = None
    is_honeypot: Optional[bool] = None

    _parse_json_string = field_validator("json_metadata", mode="before")(_metadata_object)

    @model_validator(mode="after")
    def _changes_something(self) -> "UpdateAsset":
        changes = ("json_metadata", "priority", "to_be_labeled_by", "is_used_for_consensus", "is_honeypot")
        if all(getattr(self, name) is None for name in changes):
            raise ValueError(
                "update_asset needs at least one of json_metadata, priority, to_be_labeled_by, "
                "is_used_for_consensus, is_honeypot"
            )
        return self


class AddMetadata(_Action):
    """Merge ``json_metadata`` into the asset's metadata, key by key (Kili's ``add_metadata``),
    as the asset is when the action applies."""

    type: Literal["add_metadata"] = "add_metadata"
    json_metadata: dict[str, Any]

    _parse_json_string = field_validator("json_metadata", mode="before")(_metadata_object)


class SetMetadata(_Action):
    """Replace the asset's metadata with ``json_metadata``, keeping the keys Kili keeps
    (``text``, ``imageUrl``, ``url``, ``processingParameters``: Kili's ``set_metadata``)."""

    type: Literal["set_metadata"] = "set_metadata"
    json_metadata: dict[str, Any]

    _parse_json_string = field_validator("json_metadata", mode="before")(_metadata_object)


#: The metadata keys ``set_metadata`` keeps, as Kili's does (they drive how assets display).
KEPT_BY_SET_METADATA = ("text", "imageUrl", "url", "processingParameters")


class UpdateIssueStatus(_Action):
    """Resolve (``SOLVED``), reopen (``OPEN``) or cancel (``CANCELLED``) an issue or question
    of the asset (Kili's ``update_issue_status``)."""

    type: Literal["update_issue_status"] = "update_issue_status"
    issue_id: _Id
    status: Literal["OPEN", "SOLVED", "CANCELLED"]


class CreateQuestion(_Action):
    """Ask a question on the asset (an issue of type QUESTION, not tied to a label)."""

    type: Literal["create_question"] = "create_question"
    text: Optional[str] = Field(default=None, max_length=10_000)


class SendBackToQueue(_Action):
    """Send the asset back to the labeling queue (status ONGOING)."""

    type: Literal["send_back_to_queue"] = "send_back_to_queue"


class AddToReview(_Action):
    """Put the asset in review (status TO_REVIEW)."""

    type: Literal["add_to_review"] = "add_to_review"


class AppendLabel(_Action):
    """Add a label to the asset (a PREDICTION for the reviewer, a REVIEW ground truth, ...)."""

    type: Literal["append_label"] = "append_label"
    json_response: dict[str, Any]
    label_type: LabelType = "DEFAULT"
    model_name: Optional[str] = Field(default=None, max_length=256)
    author_id: Optional[str] = Field(default=None, max_length=256)
    seconds_to_label: Optional[float] = Field(default=None, ge=0, allow_inf_nan=False)
    #: Replace the asset's labels of this ``label_type`` and ``model_name`` (PREDICTION and
    #: INFERENCE labels only: Kili's ``create_predictions(overwrite=True)``).
    overwrite: bool = False

    @model_validator(mode="after")
    def _overwrites_model_labels(self) -> "AppendLabel":
        if self.overwrite and (self.label_type not in ("PREDICTION", "INFERENCE") or not self.model_name):
            raise ValueError("overwrite replaces a model's labels: it needs label_type PREDICTION or INFERENCE "
                             "and a model_name")
        return self


Action = Annotated[
    Union[CreateIssue, UpdateAsset, AddMetadata, SetMetadata, UpdateIssueStatus, CreateQuestion, SendBackToQueue,
          AddToReview, AppendLabel],
    Field(discriminator="type"),
]
#: Validates a list of wire actions: ``ACTIONS.validate_python(list_of_dicts)``.
ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


def dump_actions(actions: list[Any]) -> list[dict[str, Any]]:
    """Actions in their canonical wire form: every field, except that ``update_asset`` lists
    only what it changes (``None`` there means "leave as is") and ``append_label`` carries
    ``overwrite`` only when it is true."""
    out = []
    for action in actions:
        data = action.model_dump(mode="json")
        data = {"type": data.pop("type"), **data}
        if data["type"] == "update_asset":
            data = {key: value for key, value in data.items() if value is not None}
        elif data["type"] == "append_label" and not data.get("overwrite"):
            data.pop("overwrite", None)
        out.append(data)
    return out


def merge_identical(actions: list[Any]) -> list[Any]:
    """One of each identical action, where it last occurs: ten send-backs of one asset, or ten
    identical issues, are applied once. Keeping the last occurrence keeps what the list leaves
    the platform in (a later ``update_asset`` still wins over an earlier different one)."""
    import json

    keys = [json.dumps(data, sort_keys=True) for data in dump_actions(actions)]
    last = {key: index for index, key in enumerate(keys)}
    return [action for index, (action, key) in enumerate(zip(actions, keys)) if last[key] == index]
