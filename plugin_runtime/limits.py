"""Size limits on what a plugin writes to the platform, one pure check for every path.

The embedded platform refuses an action over them (the run's other actions still apply), and
the dry-run reports the same action refused with the same reason: a plugin whose dry-run is
clean is not refused for size by the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin_runtime.store import dumps

#: An asset's ``json_metadata`` (as stored JSON) over this is refused.
MAX_METADATA_BYTES = 64 * 1024
#: A label's ``json_response`` over this is refused (annotations are larger than metadata).
MAX_JSON_RESPONSE_BYTES = 4 * MAX_METADATA_BYTES

_LIMITED = {
    "update_asset": ("json_metadata", MAX_METADATA_BYTES),
    "append_label": ("json_response", MAX_JSON_RESPONSE_BYTES),
}


def stored_size(value: Any) -> int:
    """Bytes ``value`` takes stored as JSON (a lone surrogate counts, it does not raise)."""
    return len(dumps(value).encode("utf-8", "surrogatepass"))


def size_refusal(action: Mapping[str, Any]) -> str | None:
    """Why the service refuses ``action`` (in its wire form, ``dump_actions``) for its size,
    or ``None`` when its size is within the limits."""
    field, limit = _LIMITED.get(str(action.get("type")), (None, 0))
    if field is None or field not in action:
        return None
    size = stored_size(action[field])
    if size <= limit:
        return None
    return f"{field} is {size} bytes, over the limit of {limit} bytes"
