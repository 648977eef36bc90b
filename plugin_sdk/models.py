"""Typed views of labels, assets, projects and recorded events (pydantic v2).

Hooks receive plain dicts, as on Kili; these models are for authors who opt in
(``Label.model_validate(label)``) and for the runtime, which validates every event it reads.
Every model keeps fields it does not know (``extra="allow"``): the wire formats grow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from plugin_sdk import _wire
from plugin_sdk.subscriptions import HOOKS, LABEL_EVENTS, PROJECT_UPDATED, is_generic

#: Version of the recorded-event format this SDK reads and writes.
EVENT_FORMAT_VERSION = 1

LabelType = Literal["DEFAULT", "REVIEW", "PREDICTION", "INFERENCE", "AUTOSAVE"]
AssetStatus = Literal["TODO", "ONGOING", "LABELED", "TO_REVIEW", "REVIEWED"]


class _Camel(BaseModel):
    """Kili's records: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=False
    )


class Label(_Camel):
    """A label as a hook receives it (``label`` of ``on_submit``/``on_review``)."""

    id: str
    json_response: dict[str, Any] = Field(default_factory=dict)
    label_type: Optional[LabelType] = None
    author_id: Optional[str] = None
    seconds_to_label: Optional[float] = None
    created_at: Optional[datetime] = None
    model_name: Optional[str] = None
    is_sent_back_to_queue: Optional[bool] = None
    number_of_annotations: Optional[int] = None
    search: Optional[dict[str, Any]] = None
    asset_id: Optional[str] = None


class Asset(_Camel):
    """An asset of the plugin's project, with its labels when the event carries them."""

    id: str
    external_id: Optional[str] = None
    content: Optional[str] = None
    status: Optional[AssetStatus] = None
    json_metadata: Optional[dict[str, Any]] = None
    #: Kili's priority is a GraphQL ``Int``: signed 32 bits.
    priority: Optional[int] = Field(default=None, ge=-(2**31), le=2**31 - 1)
    to_be_labeled_by: Optional[list[Any]] = None
    is_honeypot: Optional[bool] = None
    is_used_for_consensus: Optional[bool] = None
    consensus_mark: Optional[float] = None
    honeypot_mark: Optional[float] = None
    inference_mark: Optional[float] = None
    labels: Optional[list[Label]] = None

    @field_validator("json_metadata", mode="before")
    @classmethod
    def _metadata_from_string(cls, value: Any) -> Any:
        # Kili accepts (and some exports hold) metadata as a JSON string; read as untrusted JSON,
        # since a string nested 100,000 levels deep would stop json.loads with RecursionError.
        if isinstance(value, str):
            try:
                return _wire.loads_untrusted(value) if value.strip() else {}
            except ValueError as error:
                raise ValueError(f"jsonMetadata is a string that is not JSON: {error}") from None
        return value


class Project(_Camel):
    """The plugin's project: its ``json_interface`` describes the jobs."""

    id: str
    title: Optional[str] = None
    json_interface: Optional[dict[str, Any]] = None
    input_type: Optional[str] = None


class SettingUpdate(BaseModel):
    """One changed project setting of an ``onProjectUpdated`` event, as Kili sends it."""

    model_config = ConfigDict(extra="allow")

    key: str = Field(min_length=1, max_length=256)
    newValue: Any = None  # noqa: N815 - Kili's name
    oldValue: Any = None  # noqa: N815


class EventContext(BaseModel):
    """What an event carries besides its label, so reads can be answered without a server."""

    model_config = ConfigDict(extra="allow")

    asset: Optional[Asset] = None
    assets: Optional[list[Asset]] = None
    project: Optional[Project] = None


class Event(BaseModel):
    """One recorded event (one line of an ``events.jsonl``); see the README's wire formats.

    ``type`` is ``onSubmit``, ``onReview``, ``onCustomInterfaceClick``, ``onSendBackToQueue``,
    ``onProjectUpdated`` (with ``settings_updated``) or a dotted event name (``asset.skipped``)
    for ``on_event``.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=256)
    project_id: str = Field(min_length=1, max_length=256)
    asset_id: Optional[str] = Field(default=None, min_length=1, max_length=256)
    occurred_at: Optional[datetime] = None
    label: Optional[Label] = None
    context: Optional[EventContext] = None
    payload: Optional[dict[str, Any]] = None
    settings_updated: Optional[list[SettingUpdate]] = Field(default=None, max_length=1000)
    user_id: Optional[str] = None
    organization_id: Optional[str] = None
    format: int = Field(default=EVENT_FORMAT_VERSION, ge=1, validation_alias=AliasChoices("format", "v"))

    @field_validator("project_id")
    @classmethod
    def _routable(cls, value: str) -> str:
        # A project id is a segment of the runtime's URLs (/v1/plugins/NAME/projects/ID): one
        # holding '/' (decoded before routing even as %2F) or one of '.', '..' could be stored
        # but never named by an admin route, so its events would never run.
        if "/" in value or value in (".", ".."):
            raise ValueError(f"project_id {value!r} cannot name a project in the runtime's URLs: it must not "
                             "hold '/' nor be '.' or '..' (use another separator, such as '-')")
        return value

    @model_validator(mode="after")
    def _required_by_type(self) -> "Event":
        if self.format > EVENT_FORMAT_VERSION:
            raise ValueError(
                f"event format {self.format} is newer than this runtime reads "
                f"({EVENT_FORMAT_VERSION}): upgrade plugin-runtime"
            )
        if self.type == PROJECT_UPDATED:
            if self.settings_updated is None:
                raise ValueError(f"a {self.type} event needs settings_updated, a list of {{key, newValue, oldValue}}")
        elif self.type in HOOKS:
            if self.asset_id is None:
                raise ValueError(f"a {self.type} event needs asset_id")
            if self.type in LABEL_EVENTS:
                if self.label is None:
                    raise ValueError(f"a {self.type} event needs a label with id and jsonResponse")
                if "json_response" not in self.label.model_fields_set:
                    raise ValueError(f"a {self.type} event's label needs jsonResponse")
        elif not is_generic(self.type):
            raise ValueError(
                f"unknown event type {self.type!r}: expected onSubmit, onReview, "
                "onCustomInterfaceClick, onSendBackToQueue, onProjectUpdated or a dotted event name "
                "such as 'asset.skipped'"
            )
        return self
