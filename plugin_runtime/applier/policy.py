"""What the runtime refuses of a plugin's actions, as pure functions: the applier checks every
run's actions with them before they reach any platform, and the dry-run reports the same
actions refused with the same reasons.

An action may touch only its event's project (``scope_refusal``, from the platform's
``Facts``: the asset it names, and the label of an issue it opens), and what it writes has a
size limit (``size_refusal``): a refused action is recorded with its reason; the run's other
actions still apply. ``update_issue_status`` names its issue's asset: it is refused when the
issue is another asset's or does not exist, where the platform's facts tell issues (else the
platform checks it as it applies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: An asset's ``json_metadata`` (as stored JSON) over this is refused.
MAX_METADATA_BYTES = 64 * 1024
#: A label's ``json_response`` over this is refused (annotations are larger than metadata).
MAX_JSON_RESPONSE_BYTES = 4 * MAX_METADATA_BYTES

_LIMITED = {
    "update_asset": ("json_metadata", MAX_METADATA_BYTES),
    "add_metadata": ("json_metadata", MAX_METADATA_BYTES),
    "set_metadata": ("json_metadata", MAX_METADATA_BYTES),
    "append_label": ("json_response", MAX_JSON_RESPONSE_BYTES),
}


@dataclass(frozen=True)
class Facts:
    """What the platform knows of the records a run's actions name."""

    #: asset id -> its project, for the assets that exist
    asset_projects: Mapping[str, str] = field(default_factory=dict)
    #: label id -> its asset, for the labels that exist
    label_assets: Mapping[str, str] = field(default_factory=dict)
    #: Why the platform cannot do an action (wire form) at all, naming its limit (a Label
    #: Studio edition without review, priorities, ...), or None: it can.
    cannot: Callable[[Mapping[str, Any]], str | None] | None = None
    #: issue id -> its asset, for the issues that exist; None: the platform does not tell here
    #: (it checks an issue's asset itself when it applies the change).
    issue_assets: Mapping[str, str] | None = None


def stored_size(value: Any) -> int:
    """Bytes ``value`` takes stored as JSON (a lone surrogate counts, it does not raise)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def size_refusal(action: Mapping[str, Any]) -> str | None:
    """Why the service refuses ``action`` (in its wire form, ``dump_actions``) for its size,
    or ``None`` when its size is within the limits."""
    name, limit = _LIMITED.get(str(action.get("type")), (None, 0))
    if name is None or name not in action:
        return None
    size = stored_size(action[name])
    if size <= limit:
        return None
    return f"{name} is {size} bytes, over the limit of {limit} bytes"


def scope_refusal(action: Mapping[str, Any], project_id: str, facts: Facts) -> str | None:
    """Why an action of a run for an event of ``project_id`` may not touch what it names."""
    asset_id = action["asset_id"]
    owner = facts.asset_projects.get(asset_id)
    if owner is None:
        return f"asset {asset_id!r} does not exist"
    if owner != project_id:
        return f"asset {asset_id!r} belongs to another project than the event's ({project_id!r})"
    if action["type"] == "create_issue":
        label_asset = facts.label_assets.get(action["label_id"])
        if label_asset is None:
            return f"label {action['label_id']!r} does not exist"
        if label_asset != asset_id:
            return f"label {action['label_id']!r} belongs to another asset than {asset_id!r}"
    if action["type"] == "update_issue_status" and facts.issue_assets is not None:
        issue_asset = facts.issue_assets.get(action["issue_id"])
        if issue_asset is None:
            return f"issue {action['issue_id']!r} does not exist"
        if issue_asset != asset_id:
            return f"issue {action['issue_id']!r} belongs to another asset than {asset_id!r}"
    return None


def refusal(action: Mapping[str, Any], project_id: str, facts: Facts) -> str | None:
    """Why the runtime refuses an action (wire form), or ``None``: it goes to the platform."""
    return (scope_refusal(action, project_id, facts) or size_refusal(action)
            or (facts.cannot(action) if facts.cannot is not None else None))


def named(actions: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The asset and label ids a list of wire actions names (what ``Facts`` must cover)."""
    assets = {a["asset_id"] for a in actions}
    labels = {a["label_id"] for a in actions if a["type"] == "create_issue"}
    return assets, labels
