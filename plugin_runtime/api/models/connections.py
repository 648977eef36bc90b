"""Connected platforms (Label Studio, ...): connecting one, and what its webhook brought."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plugin_runtime.api.models.base import Answer


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
