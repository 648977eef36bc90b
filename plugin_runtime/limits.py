"""Size limits on what a plugin writes to the platform: the applier's policy
(``plugin_runtime.applier.policy``), importable from here, its home before the applier.

The applier refuses an action over them (the run's other actions still apply), and the
dry-run reports the same action refused with the same reason: a plugin whose dry-run is clean
is not refused for size by the service.
"""

from __future__ import annotations

from plugin_runtime.applier.policy import MAX_JSON_RESPONSE_BYTES, MAX_METADATA_BYTES, size_refusal, stored_size

__all__ = ["MAX_JSON_RESPONSE_BYTES", "MAX_METADATA_BYTES", "size_refusal", "stored_size"]
